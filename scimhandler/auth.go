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

// tokenCache keeps the tenant's token record (and, once a request needed
// them, its retired tokens) until the store's generation moves on, so a
// request does not need a read transaction to authenticate. The generation
// is read before the records, so cached records are never older than the
// generation they are filed under. (Retiring a token always comes with
// PutSCIMToken or DeleteSCIMToken in the same transaction, which moves the
// generation.) Every create moves the generation too, so under a stream of
// SCIM writes the token is read again on most requests: that read is one
// key, and the retired tokens, which only a token that does not match
// needs, are not read with it.
type tokenCache struct {
	mu    sync.Mutex
	valid bool
	gen   uint64
	state tokenState
}

// tokenState is what authentication compares a presented token with.
type tokenState struct {
	rec *storage.SCIMToken // nil: the tenant has no token (SCIM disabled)
	// retired (newest first) is only loaded when retiredKnown.
	retired      []retiredToken
	retiredKnown bool
}

// currentToken is the tenant's token state, with its retired tokens if
// withRetired.
func (h *Handler) currentToken(ctx context.Context, withRetired bool) (tokenState, error) {
	gen := h.store.Generation(h.tenant)
	h.tokens.mu.Lock()
	if h.tokens.valid && h.tokens.gen == gen && (h.tokens.state.retiredKnown || !withRetired) {
		st := h.tokens.state
		h.tokens.mu.Unlock()
		return st, nil
	}
	h.tokens.mu.Unlock()
	var st tokenState
	err := h.view(ctx, func(tx storage.ReadTx) error {
		t, err := tx.GetSCIMToken()
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		st.rec = t
		if errors.Is(err, storage.ErrNotFound) {
			st.rec = nil
		}
		if !withRetired {
			return nil
		}
		st.retired, err = loadRetiredTokens(tx)
		st.retiredKnown = err == nil
		return err
	})
	if err != nil {
		return tokenState{}, err
	}
	h.tokens.mu.Lock()
	h.tokens.valid, h.tokens.gen, h.tokens.state = true, gen, st
	h.tokens.mu.Unlock()
	return st, nil
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
// token is always accepted. A token that was rotated away or disabled is
// answered 401 saying so, whatever the address's failure count: it was
// issued, so it is not a guess. Every other failure is counted per client
// address and answered 401, or 429 once the address is over its limit.
func (h *Handler) authenticate(r *http.Request) (string, error) {
	presented, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return "", h.rejected(r, RejectedMissing, "no bearer token", errUnauthorized("a bearer token is required"))
	}
	st, err := h.currentToken(r.Context(), false)
	if err != nil {
		return "", err
	}
	sum := storage.HashSecret(presented)
	if st.rec != nil && subtle.ConstantTimeCompare(sum[:], st.rec.Hash[:]) == 1 {
		return st.rec.ID, nil
	}
	// Not the live token: the retired ones say whether it is an old one
	// (read with the token again, in one snapshot, unless cached). A
	// client that hung up still gets its failure counted and recorded,
	// as when the state was cached: the read does not heed the hang-up.
	if st, err = h.currentToken(context.WithoutCancel(r.Context()), true); err != nil {
		return "", err
	}
	if st.rec != nil && subtle.ConstantTimeCompare(sum[:], st.rec.Hash[:]) == 1 {
		return st.rec.ID, nil
	}
	if old, ok := findRetired(st.retired, sum); ok {
		return "", h.retiredPresented(r, old, st.rec == nil)
	}
	if st.rec == nil {
		return "", h.rejected(r, RejectedDisabled, "SCIM is disabled for the tenant (no token)", errUnauthorized("invalid bearer token"))
	}
	return "", h.rejected(r, RejectedInvalid, "bearer token does not match", errUnauthorized("invalid bearer token"))
}

// retiredPresented answers a request bearing the retired token old: 401
// with a detail naming when and why it stopped working. It spends none of
// the address's failure budget, but takes part in the once-a-minute
// token.rejected record like any failure, so an operator sees which
// client still sends an old token.
func (h *Handler) retiredPresented(r *http.Request, old retiredToken, disabledNow bool) error {
	reason := fmt.Sprintf("token %s, %s on %s, was presented", old.ID, old.Why, old.Retired.UTC().Format(time.RFC3339))
	if disabledNow {
		reason += " (SCIM is disabled for the tenant)"
	}
	v := h.failures.retiredAttempt(h.clientAddr(r), h.now())
	if h.observer != nil {
		kind := RejectedInvalid
		if disabledNow {
			kind = RejectedDisabled
		}
		h.observer.TokenRejected(kind, false)
	}
	h.logger.Debug("scim request rejected", zap.String("reason", reason), zap.String("client", v.client))
	if v.report {
		ctx, cancel := writeContext(r.Context())
		h.recordRejection(ctx, reason, v, clientName(r))
		cancel()
	}
	return errUnauthorized(retiredDetail(old, disabledNow))
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

// rejected counts a failed attempt (kind is one of the Rejected* names,
// for the Observer) and returns its answer: unauthorized,
// or a 429 once the client's address is over its limit. One failure a
// minute (per tenant) is recorded as a token.rejected audit event, with
// the client's address and counts of what was not recorded.
func (h *Handler) rejected(r *http.Request, kind, reason string, unauthorized error) error {
	v := h.failures.failure(h.clientAddr(r), h.now())
	if h.observer != nil {
		h.observer.TokenRejected(kind, v.limited)
	}
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
	if v.retired {
		msg = fmt.Sprintf("%s; client %s, answered 401 (a retired token is not counted as a guess)", reason, v.client)
	}
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
