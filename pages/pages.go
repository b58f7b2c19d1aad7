// Package pages renders the pages a person sees from the gateway: signed
// out, access denied, a refused sign-in, an unreachable identity provider
// and the rest (see Kinds). Every page says what happened in plain words,
// who the person is signed in as where that is known, the next steps as
// links, and the audit event id as a reference for the helpdesk.
//
// The built-in pages share one self-contained stylesheet (no external
// resources; the Content-Security-Policy allows exactly that stylesheet by
// its hash). An operator replaces any of them with html/template files in a
// directory (Load), as oauth2-proxy's custom templates do.
//
// The package speaks plain net/http; authz and sso render through it.
package pages

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
)

//go:embed style.css
var styleCSS string

//go:embed page.html
var pageHTML string

// Data is what a page shows; an operator's template gets it as its dot.
// Empty fields are not shown by the built-in page.
type Data struct {
	Kind   Kind
	Status int // the HTTP status the page is sent with
	// Code is the machine-readable reason, as in the gateway's JSON
	// answers ("forbidden", "account_inactive", "bad_path", ...); default
	// the Kind.
	Code string
	// Title, Message (what happened) and Hint (what to do); default the
	// Kind's words.
	Title, Message, Hint string

	// User is who the person is, where known: the signed-in user, or the
	// identity the IdP vouched for when a sign-in was refused. SignedIn
	// says which.
	User     *User
	SignedIn bool

	// An access denial: the role the route requires and the user's, or
	// the groups it lets in.
	RequiredRole  string
	Role          string
	AllowedGroups []string

	// Reference is the id of the audit event that records what happened
	// ("" when none was written for this request).
	Reference string

	// The next steps; each is a local URL, empty when not offered.
	AppURL        string // back to the application
	SignInURL     string // sign in (again)
	SignInLabel   string // the sign-in link's words; default "Sign in"
	SwitchUserURL string // sign in as someone else (signs out first)
	SignOutURL    string // sign out
	SignOutForm   string // the action of a sign-out form (POST)

	// RetryAfter, when positive, is sent as the Retry-After header (in
	// seconds).
	RetryAfter int

	// CSS is the built-in stylesheet, for a template that wants it:
	// <style>{{.CSS}}</style>.
	CSS template.CSS
}

// User is a person as a page names them.
type User struct {
	Name        string // userName
	Email       string
	DisplayName string
}

// Label is the best name to show: display name, else userName, else email.
func (u *User) Label() string {
	switch {
	case u.DisplayName != "":
		return u.DisplayName
	case u.Name != "":
		return u.Name
	}
	return u.Email
}

// Error says whether the page reports a failure (a 4xx or 5xx status).
func (d *Data) Error() bool { return d.Status >= 400 }

// withDefaults fills in the Kind's words and the defaults.
func (d Data) withDefaults() Data {
	t := texts[d.Kind]
	if d.Title == "" {
		d.Title = t.title
	}
	if d.Message == "" {
		d.Message = t.message
	}
	if d.Hint == "" {
		d.Hint = t.hint
	}
	if d.Code == "" {
		d.Code = string(d.Kind)
	}
	if d.Status == 0 {
		d.Status = http.StatusOK
	}
	if d.SignInLabel == "" {
		d.SignInLabel = "Sign in"
	}
	d.CSS = template.CSS(styleCSS)
	return d
}

// Complete returns d with the Kind's words and the defaults filled in, as
// a page would show it (for a caller that hands the page to someone else,
// e.g. Caddy's handle_errors).
func (d Data) Complete() Data { return d.withDefaults() }

// builtin is the default page of every kind.
var builtin = template.Must(template.New("page").Parse(pageHTML))

// builtinCSP allows the built-in stylesheet by its hash and nothing else.
var builtinCSP = func() string {
	sum := sha256.Sum256([]byte(styleCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// customCSP is sent with an operator's template: its own inline styles and
// same-origin stylesheets and images, but no script.
const customCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Set is the pages of a gateway or tenant: the built-in ones, some
// replaced by an operator's templates. The zero Set and a nil *Set are the
// built-in pages. Safe for concurrent use.
type Set struct {
	custom   map[Kind]*template.Template
	fallback *template.Template // the operator's page.html, for every kind without a file
	dir      string
}

// Default is the built-in pages.
func Default() *Set { return &Set{} }

// Dir is the directory the Set's templates came from ("" built-in only).
func (s *Set) Dir() string {
	if s == nil {
		return ""
	}
	return s.dir
}

// template returns the template for kind and whether it is the operator's.
func (s *Set) template(kind Kind) (*template.Template, bool) {
	if s != nil {
		if t := s.custom[kind]; t != nil {
			return t, true
		}
		if s.fallback != nil {
			return s.fallback, true
		}
	}
	return builtin, false
}

// Render returns the page's HTML and the Content-Security-Policy it needs.
// An operator's template that fails to execute falls back to the built-in
// page, so a template mistake never leaves a person without a page.
func (s *Set) Render(d Data) (html []byte, csp string) {
	d = d.withDefaults()
	t, custom := s.template(d.Kind)
	var b bytes.Buffer
	if custom {
		if err := t.Execute(&b, &d); err == nil {
			return b.Bytes(), customCSP
		}
		b.Reset()
	}
	if err := builtin.Execute(&b, &d); err != nil {
		// The built-in template executes with any Data (tested).
		panic("pages: built-in page: " + err.Error())
	}
	return b.Bytes(), builtinCSP
}

// Write answers with the page: its status, Retry-After when set, and
// headers that keep it out of caches, frames and other origins' reach.
func (s *Set) Write(w http.ResponseWriter, d Data) {
	d = d.withDefaults()
	body, csp := s.Render(d)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	h.Del("Content-Length")
	w.WriteHeader(d.Status)
	_, _ = w.Write(body)
}
