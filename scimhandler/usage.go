package scimhandler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Token health: "did my IdP's Test Connection reach us?" is answered from
// the last accepted request (time, client address, User-Agent) and the
// requests and refused tokens of the last 24 hours. Counting must not cost
// a store write per request, so the counts live in memory, in hourly
// buckets (they restart from zero with the process), and only the last use
// is persisted, at most once a minute, as a record (lastUseKind), so that
// it survives a restart. The token itself is never kept.

const (
	usageBuckets  = 24
	usageBucket   = time.Hour
	lastUseKind   = "scim.lastuse"
	lastUseKey    = "token"
	lastUseWrites = time.Minute // at most one persisted last use per this
)

// TokenUse is one accepted use of the SCIM token.
type TokenUse struct {
	Time       time.Time `json:"time"`
	ClientAddr string    `json:"clientAddress"`
	UserAgent  string    `json:"userAgent"`
	TokenID    string    `json:"tokenId,omitempty"` // the token record's public id, never the token
}

// TokenUsage is what the tracker knows of a tenant's token use.
type TokenUsage struct {
	// LastUsed is the last accepted request (nil: none known).
	LastUsed *TokenUse
	// Requests24h counts every request that reached the endpoint in the
	// last 24 hours (since the process started, if later); Failures24h
	// those refused for their token (missing, wrong, retired, disabled).
	Requests24h int
	Failures24h int
}

// UsageTracker counts one tenant's SCIM requests. A Handler makes its own
// unless Config.Usage gives one, which lets the operator's side read it
// (Handler.Usage returns it either way). Safe for concurrent use.
type UsageTracker struct {
	mu       sync.Mutex
	buckets  [usageBuckets]usageBucketCounts
	last     *TokenUse
	lastSave time.Time // when last was last persisted
}

type usageBucketCounts struct {
	hour     int64 // unix hour of the bucket
	requests int
	failures int
}

// NewUsageTracker returns an empty tracker.
func NewUsageTracker() *UsageTracker { return &UsageTracker{} }

func (u *UsageTracker) bucket(now time.Time) *usageBucketCounts {
	hour := now.Unix() / int64(usageBucket/time.Second)
	b := &u.buckets[hour%usageBuckets]
	if b.hour != hour {
		*b = usageBucketCounts{hour: hour}
	}
	return b
}

// count records one request; failed says its token was refused.
func (u *UsageTracker) count(now time.Time, failed bool) {
	u.mu.Lock()
	b := u.bucket(now)
	b.requests++
	if failed {
		b.failures++
	}
	u.mu.Unlock()
}

// used records an accepted request and says whether it is time to persist
// the last use (at most once per lastUseWrites).
func (u *UsageTracker) used(use TokenUse) (persist bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = &use
	if use.Time.Sub(u.lastSave) >= lastUseWrites || use.Time.Before(u.lastSave) {
		u.lastSave = use.Time
		return true
	}
	return false
}

// Usage reads the tracker at now. LastUsed is the in-memory one; see
// LastTokenUse for the persisted one after a restart.
func (u *UsageTracker) Usage(now time.Time) TokenUsage {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out TokenUsage
	hour := now.Unix() / int64(usageBucket/time.Second)
	for _, b := range u.buckets {
		// The current hour and the 23 before it: the window is 24 h to
		// within the current hour's start.
		if b.hour > hour-usageBuckets && b.hour <= hour {
			out.Requests24h += b.requests
			out.Failures24h += b.failures
		}
	}
	if u.last != nil {
		last := *u.last
		out.LastUsed = &last
	}
	return out
}

// Usage is the handler's usage tracker.
func (h *Handler) Usage() *UsageTracker { return h.usage }

// LastTokenUse reads the persisted last use of the tenant's token (nil
// when none was recorded).
func LastTokenUse(tx storage.ReadTx) (*TokenUse, error) {
	b, err := tx.GetRecord(lastUseKind, lastUseKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var use TokenUse
	if json.Unmarshal(b, &use) != nil {
		return nil, nil // only informative: a bad record reads as none
	}
	return &use, nil
}

// recordUse counts an accepted request and persists its use at most once
// a minute. The write is a record (it moves no Generation) and is done
// only for requests that presented the valid token, never for anonymous
// traffic.
func (h *Handler) recordUse(ctx context.Context, use TokenUse) {
	h.usage.count(use.Time, false)
	if !h.usage.used(use) {
		return
	}
	b, err := json.Marshal(use)
	if err != nil {
		return
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	if err := h.store.Update(ctx, h.tenant, func(tx storage.Tx) error {
		return tx.PutRecord(lastUseKind, lastUseKey, b, 0)
	}); err != nil {
		h.logger.Warn("could not record the SCIM token's last use", zap.Error(err))
	}
}

// KnownClient names the IdP a SCIM User-Agent comes from, "" when it is
// not recognisable. Entra ID sends "Microsoft Azure AD SCIM provisioning
// <version>" (older: "Microsoft.Azure.ActiveDirectory..."), Okta "Okta SCIM
// Client <version>".
func KnownClient(userAgent string) string {
	ua := strings.ToLower(userAgent)
	switch {
	case strings.Contains(ua, "azure ad scim") || strings.Contains(ua, "azure active directory") ||
		strings.Contains(ua, "microsoft.azure") || strings.Contains(ua, "microsoft entra") ||
		strings.HasPrefix(ua, "microsoft azure ad"):
		return "Microsoft Entra ID"
	case strings.Contains(ua, "okta"):
		return "Okta"
	case strings.Contains(ua, "onelogin"):
		return "OneLogin"
	case strings.Contains(ua, "jumpcloud"):
		return "JumpCloud"
	case strings.Contains(ua, "google"):
		return "Google"
	case strings.Contains(ua, "pingidentity") || strings.Contains(ua, "pingfederate") || strings.Contains(ua, "pingone"):
		return "Ping Identity"
	}
	return ""
}

// clip cuts s to at most n bytes (on a rune boundary).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
