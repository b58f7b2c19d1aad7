package scimhandler

import (
	"context"
	"crypto/subtle"
	"errors"
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
// logged or stored: only its SHA-256, compared in constant time.
func (h *Handler) authenticate(r *http.Request) (string, error) {
	presented, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		h.noteRejection(r, "no bearer token")
		return "", errUnauthorized("a bearer token is required")
	}
	rec, err := h.currentToken(r.Context())
	if err != nil {
		return "", err
	}
	if rec == nil {
		h.noteRejection(r, "SCIM is disabled for the tenant (no token)")
		return "", errUnauthorized("invalid bearer token")
	}
	sum := storage.HashSecret(presented)
	if subtle.ConstantTimeCompare(sum[:], rec.Hash[:]) != 1 {
		h.noteRejection(r, "bearer token does not match")
		return "", errUnauthorized("invalid bearer token")
	}
	return rec.ID, nil
}

// rejectionLimiter lets through one rejected-token report per interval:
// an admin troubleshooting "401 on Test Connection" sees it in the audit
// log, and a flood of bad requests cannot flood the store.
type rejectionLimiter struct {
	mu   sync.Mutex
	last time.Time
}

const rejectionReportInterval = time.Minute

func (l *rejectionLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < rejectionReportInterval {
		return false
	}
	l.last = now
	return true
}

func (h *Handler) noteRejection(r *http.Request, reason string) {
	h.logger.Debug("scim request rejected", zap.String("reason", reason), zap.String("remote", r.RemoteAddr))
	if !h.rejections.allow(time.Now()) {
		return
	}
	h.logger.Info("scim request rejected", zap.String("reason", reason), zap.String("remote", r.RemoteAddr))
	err := h.store.Update(r.Context(), h.tenant, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{
			Type:   storage.EventTokenRejected,
			Actor:  "anonymous",
			Reason: reason + " (from " + r.RemoteAddr + "; further rejections within a minute are not recorded)",
		})
	})
	if err != nil {
		h.logger.Warn("could not record rejected SCIM request", zap.Error(err))
	}
}
