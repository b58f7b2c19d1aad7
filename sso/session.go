package sso

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/internal/cookieheader"
	"github.com/portcullis/portcullis/storage"
)

// Lookup answers.
var (
	// ErrNoSession: no session cookie, an unknown or expired session, or a
	// session whose user is gone. The caller starts a sign-in.
	ErrNoSession = errors.New("sso: no valid session")
	// ErrUserInactive: the session is valid but its user is deactivated.
	// Lookup returns the session and user with it, so the caller can say so.
	ErrUserInactive = errors.New("sso: user is deactivated")
)

// lastSeenGranularity: Lookup writes LastSeen at most this often per
// session, so a busy page does not turn every request into a disk write. The
// idle timeout is therefore exact to within this much.
const lastSeenGranularity = time.Minute

// maxCookieLen bounds what Lookup hashes and looks up.
const maxCookieLen = 128

// CookieName is the configured name of this tenant's session cookie.
// On HTTPS the cookie carries the __Host- prefix in front of it (see
// cookies.go).
func (s *Service) CookieName() string { return s.cfg.Session.CookieName }

// sessionCookie is the session id r carries. A request that carries
// several different cookies of that name carries none: one of them was
// planted (for a longer path, or for a parent domain) and browsers send the
// longer-path cookie first, so taking any of them could let an attacker's
// session stand in for the user's own (session fixation).
func (s *Service) sessionCookie(r *http.Request) (string, bool) {
	// Scanned without parsing every cookie (cookieheader reads them as
	// net/http does): this runs on every proxied request.
	value, n := cookieheader.Value(r.Header, s.sessionCookieName(r))
	if n != 1 || value == "" || len(value) > maxCookieLen {
		return "", false
	}
	return value, true
}

// maxStrayCookiePaths bounds the Set-Cookie headers ExpireStrayCookies writes.
const maxStrayCookiePaths = 16

// ExpireStrayCookies, when r carries several session cookies (see
// sessionCookie), tells the browser to drop those set for the paths leading
// to r's path; the one for "/" is replaced by the next sign-in. The
// protecting handler calls it when it sends such a request to sign in, so
// the sign-in is not undone by the planted cookie on the way back.
func (s *Service) ExpireStrayCookies(w http.ResponseWriter, r *http.Request) {
	name := s.sessionCookieName(r)
	if len(r.CookiesNamed(name)) < 2 {
		return
	}
	p := r.URL.Path
	seen := map[string]bool{"/": true}
	for i := 1; i <= len(p) && len(seen) <= maxStrayCookiePaths; i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		for _, path := range []string{p[:i], strings.TrimSuffix(p[:i], "/") + "/"} {
			if seen[path] {
				continue
			}
			seen[path] = true
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: s.secure(r)})
		}
	}
}

// Lookup finds the signed-in session of r: cookie, its SHA-256, the stored
// session, the expiry rule (storage.Session.Expired with the idle and
// absolute timeouts), then the user. It refreshes LastSeen at most once a
// minute. Expired sessions are deleted. Errors other than ErrNoSession and
// ErrUserInactive are store failures.
func (s *Service) Lookup(r *http.Request) (*storage.Session, *storage.User, error) {
	value, ok := s.sessionCookie(r)
	if !ok {
		return nil, nil, ErrNoSession
	}
	hash := storage.HashSecret(value)
	var err error
	now := s.now()
	var sess *storage.Session
	var user *storage.User
	err = s.store.View(r.Context(), s.cfg.Tenant, func(tx storage.ReadTx) error {
		var err error
		sess, err = tx.GetSession(hash)
		if err != nil {
			return err
		}
		if sess.Expired(now, s.cfg.Session.IdleTimeout) {
			return nil
		}
		user, err = tx.GetUser(sess.UserID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		if sess != nil {
			// The user is gone; so is the session.
			s.deleteSession(r, hash)
		}
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sso: look up session: %w", err)
	}
	if user == nil {
		s.deleteSession(r, hash)
		return nil, nil, ErrNoSession
	}
	if now.Sub(sess.LastSeen) >= lastSeenGranularity {
		if err := s.touchSession(r, hash, now); err != nil {
			return nil, nil, err
		}
		sess.LastSeen = now
	}
	if !user.Active {
		return sess, user, ErrUserInactive
	}
	return sess, user, nil
}

// touchSession moves LastSeen forward, unless the session was ended or
// touched meanwhile.
func (s *Service) touchSession(r *http.Request, hash [32]byte, now time.Time) error {
	err := s.store.Update(r.Context(), s.cfg.Tenant, func(tx storage.Tx) error {
		cur, err := tx.GetSession(hash)
		if err != nil {
			return err
		}
		if !now.After(cur.LastSeen) {
			return nil
		}
		cur.LastSeen = now
		// PutSession never bumps the store's Generation, so identity
		// caches need not reload for this bookkeeping.
		return tx.PutSession(cur)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoSession
	}
	if err != nil {
		return fmt.Errorf("sso: refresh session: %w", err)
	}
	return nil
}

// deleteSession removes an expired or orphaned session; failures are only
// logged, because the session is refused either way.
func (s *Service) deleteSession(r *http.Request, hash [32]byte) {
	err := s.store.Update(r.Context(), s.cfg.Tenant, func(tx storage.Tx) error {
		err := tx.DeleteSession(hash)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		s.log.Warn("cannot delete expired session", zap.Error(err))
	}
}

// setSessionCookie gives the browser its session id: host-only (no Domain),
// HttpOnly, Secure on HTTPS, SameSite=Lax, and a session cookie (no
// Max-Age), because the server decides when the session ends.
func (s *Service) setSessionCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.sessionCookieName(r),
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.sessionCookieName(r),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// currentSessionHash is the hash of the session cookie r carries, if any.
func (s *Service) currentSessionHash(r *http.Request) ([32]byte, bool) {
	value, ok := s.sessionCookie(r)
	if !ok {
		return [32]byte{}, false
	}
	return storage.HashSecret(value), true
}

// SessionKey returns storage.HashSecret of the session id r's cookie
// carries, without reading the store; ok is false when r carries none. It
// is the key callers cache a Lookup answer under (authz.SessionResolver).
func (s *Service) SessionKey(r *http.Request) (idHash [32]byte, ok bool) {
	return s.currentSessionHash(r)
}

// IdleTimeout is the idle limit Lookup applies (storage.Session.Expired),
// 0 when sessions have none, so a cache of Lookup answers can apply the
// same rule.
func (s *Service) IdleTimeout() time.Duration {
	return max(s.cfg.Session.IdleTimeout, 0)
}
