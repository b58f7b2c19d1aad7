package scimhandler

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// maxTokenLength bounds what is hashed from an Authorization header.
const maxTokenLength = 4096

// tokenCache keeps the tenant's token record until the store's generation
// moves on, so a request does not need a read transaction to authenticate.
// The generation is read before the record, so a cached record is never
// older than the generation it is filed under.
type tokenCache struct {
	mu    sync.Mutex
	valid bool
	gen   uint64
	rec   *storage.SCIMToken // nil: the tenant has no token (SCIM disabled)
}

func (h *Handler) currentToken(ctx context.Context) (*storage.SCIMToken, error) {
	gen := h.store.Generation(h.tenant)
	h.tokens.mu.Lock()
	if h.tokens.valid && h.tokens.gen == gen {
		rec := h.tokens.rec
		h.tokens.mu.Unlock()
		return rec, nil
	}
	h.tokens.mu.Unlock()
	var rec *storage.SCIMToken
	err := h.view(ctx, func(tx storage.ReadTx) error {
		t, err := tx.GetSCIMToken()
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		rec = t
		return err
	})
	if err != nil {
		return nil, err
	}
	h.tokens.mu.Lock()
	h.tokens.valid, h.tokens.gen, h.tokens.rec = true, gen, rec
	h.tokens.mu.Unlock()
	return rec, nil
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 7235 §2.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLength {
		return "", false
	}
	return token, true
}

func errUnauthorized(detail string) error {
	return &scimError{status: http.StatusUnauthorized, detail: detail}
}

// authenticate checks the bearer token and returns the token record's id,
// the audit actor of the request's changes. The token itself is never
// logged or stored: only its SHA-256, compared in constant time. A correct
// token is always accepted; failed attempts are counted per client address
// and answered 401, or 429 once the address is over its limit.
func (h *Handler) authenticate(r *http.Request) (string, error) {
	presented, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return "", h.rejected(r, "no bearer token", errUnauthorized("a bearer token is required"))
	}
	rec, err := h.currentToken(r.Context())
	if err != nil {
		return "", err
	}
	if rec == nil {
		return "", h.rejected(r, "SCIM is disabled for the tenant (no token)", errUnauthorized("invalid bearer token"))
	}
	sum := storage.HashSecret(presented)
	if subtle.ConstantTimeCompare(sum[:], rec.Hash[:]) != 1 {
		return "", h.rejected(r, "bearer token does not match", errUnauthorized("invalid bearer token"))
	}
	return rec.ID, nil
}

// clientAddr is the address r's failures are counted under.
func (h *Handler) clientAddr(r *http.Request) string {
	if h.clientIP != nil {
		if ip := h.clientIP(r); ip != "" {
			return ip
		}
	}
	return r.RemoteAddr
}

// rejected counts a failed attempt and returns its answer: unauthorized,
// or a 429 once the client's address is over its limit. One failure a
// minute (per tenant) is recorded as a token.rejected audit event, with
// the client's address and counts of what was not recorded.
func (h *Handler) rejected(r *http.Request, reason string, unauthorized error) error {
	v := h.failures.failure(h.clientAddr(r), h.now())
	h.logger.Debug("scim request rejected", zap.String("reason", reason), zap.String("client", v.client),
		zap.Int("failures_in_window", v.inWindow), zap.Bool("limited", v.limited))
	if v.report {
		// The client hanging up must not cancel the minute's record.
		ctx, cancel := writeContext(r.Context())
		h.recordRejection(ctx, reason, v, clientName(r))
		cancel()
	}
	if !v.limited {
		return unauthorized
	}
	wait := int((v.retryAfter + time.Second - 1) / time.Second)
	if wait < 1 {
		wait = 1
	}
	return &scimError{status: http.StatusTooManyRequests, retryAfter: wait,
		detail: fmt.Sprintf("too many failed authentication attempts from this address; retry in %d seconds with a valid token", wait)}
}

// recordRejection writes the token.rejected audit event of a failure.
func (h *Handler) recordRejection(ctx context.Context, reason string, v failureVerdict, client string) {
	outcome := "answered 401"
	if v.limited {
		outcome = "answered 429 (over the limit)"
	}
	msg := fmt.Sprintf("%s; client %s, %s; %d failed attempts from this client within a minute (the first %d, then one per %s, are answered 401)",
		reason, v.client, outcome, v.inWindow, failureBurst, failureRefill)
	if v.unreported > 0 {
		msg += fmt.Sprintf("; since the previous token.rejected event, %d failed attempts from %d clients (%d of them answered 429) were not recorded",
			v.unreported, v.unreportedClients, v.unreportedLimited)
	}
	msg += "; further failed attempts within a minute are counted, not recorded"
	h.logger.Info("scim request rejected", zap.String("reason", reason), zap.String("client", v.client),
		zap.Int("failures_in_window", v.inWindow), zap.Bool("limited", v.limited),
		zap.Int("unrecorded_failures", v.unreported), zap.Int("unrecorded_clients", v.unreportedClients))
	err := h.store.Update(ctx, h.tenant, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{
			Type:      storage.EventTokenRejected,
			Actor:     "anonymous",
			ActorName: client,
			Reason:    msg,
		})
	})
	if err != nil {
		h.logger.Warn("could not record rejected SCIM request", zap.Error(err))
	}
}
