package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// csrfCookie holds a random value the console's CSRF tokens are bound to.
// The gate strips only the gateway's session and sign-in cookies, so this
// one reaches the console.
const csrfCookie = "portcullis_console"

// csrfField is the form field of the token.
const csrfField = "csrf"

// csrfGuard protects the console's forms with a signed double-submit
// token: every form carries HMAC(key, cookie value, userName), so a post
// is accepted only from a page the console rendered for this browser
// (which holds the cookie) and this signed-in user. The cookie is
// SameSite=Strict and HttpOnly. On top, a post must come from the
// console's own origin: a foreign Origin, or a Sec-Fetch-Site other than
// same-origin, is refused before the token is looked at.
type csrfGuard struct {
	key        []byte
	cookiePath string
}

// token returns the form token for this browser and user, setting the
// cookie when the browser has none yet.
func (g *csrfGuard) token(w http.ResponseWriter, r *http.Request, user string) string {
	value := ""
	if c, err := r.Cookie(csrfCookie); err == nil && validCookieValue(c.Value) {
		value = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		value = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{
			Name:     csrfCookie,
			Value:    value,
			Path:     g.cookiePath,
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
		// The same request may render more than one form.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: value})
	}
	return g.sign(value, user)
}

func (g *csrfGuard) sign(cookie, user string) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte("portcullis console csrf\x00"))
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// Reasons a post is refused (shown to the person, logged).
var (
	errCrossOrigin = errors.New("it was sent from another site")
	errNoCookie    = errors.New("the console's cookie is missing")
	errBadToken    = errors.New("its security token is missing or stale")
)

// check accepts a form post from the console's own pages.
func (g *csrfGuard) check(r *http.Request, user string) error {
	if !sameOrigin(r) {
		return errCrossOrigin
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validCookieValue(c.Value) {
		return errNoCookie
	}
	// Forms are small; bound what is read before parsing.
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errBadToken
	}
	got := r.PostForm.Get(csrfField)
	want := g.sign(c.Value, user)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errBadToken
	}
	return nil
}

// sameOrigin says whether the request comes from a page of this host.
// Browsers send Origin on every POST; Sec-Fetch-Site where they support
// it. A request with neither (not a browser) still needs the token.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (a sandboxed frame, a redirect across sites) included
	}
	return strings.EqualFold(u.Host, r.Host)
}
