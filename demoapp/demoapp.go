// Package demoapp is the quick start's sample "legacy app": a web app with no
// sign-in of its own that trusts the identity headers the gateway sets. Its
// page shows what it received (X-Remote-User, -Email, -Name, -Groups, -Role,
// and whether an X-Remote-Assertion came along), /whoami.json says the same
// as JSON, and the page links to the gateway's sign-out.
//
// It is for local trial and tests only: an app like it must only ever be
// reachable through the gateway, which strips any identity header a client
// sends, or anyone could claim to be anyone.
package demoapp

import (
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/authz"
)

// The headers the app reads: the gateway's default names.
const (
	HeaderUser      = authz.DefaultHeaderPrefix + "User"
	HeaderEmail     = authz.DefaultHeaderPrefix + "Email"
	HeaderName      = authz.DefaultHeaderPrefix + "Name"
	HeaderGroups    = authz.DefaultHeaderPrefix + "Groups"
	HeaderRole      = authz.DefaultHeaderPrefix + "Role"
	HeaderAssertion = authz.DefaultHeaderPrefix + "Assertion"
)

// DefaultSignOutPath is the gateway's sign-out under the quick start's
// `handle /sso/*`.
const DefaultSignOutPath = "/sso/logout"

// Config configures the app.
type Config struct {
	// SignOutPath is where the page's sign-out button posts
	// (DefaultSignOutPath when empty).
	SignOutPath string
}

// Whoami is what the app learnt from one request's headers; /whoami.json
// answers it.
type Whoami struct {
	// SignedIn says whether the gateway named a user.
	SignedIn bool     `json:"signedIn"`
	User     string   `json:"user,omitempty"`
	Email    string   `json:"email,omitempty"`
	Name     string   `json:"name,omitempty"`
	Groups   []string `json:"groups"`
	// GroupsError is set when X-Remote-Groups could not be decoded; Groups
	// is then empty and the raw value is in Headers.
	GroupsError string `json:"groupsError,omitempty"`
	Role        string `json:"role,omitempty"`
	// Assertion says whether a signed X-Remote-Assertion came along (the
	// app does not verify it; a real one would, against the gateway's JWKS).
	Assertion bool `json:"assertion"`
	// Headers holds every X-Remote-* header received, as sent, except the
	// assertion, which is only reported as present.
	Headers map[string]string `json:"headers"`
	Path    string            `json:"path"`
}

// FromRequest reads the identity headers of r.
func FromRequest(r *http.Request) Whoami {
	w := Whoami{
		User:      r.Header.Get(HeaderUser),
		Email:     r.Header.Get(HeaderEmail),
		Name:      r.Header.Get(HeaderName),
		Role:      r.Header.Get(HeaderRole),
		Assertion: r.Header.Get(HeaderAssertion) != "",
		Groups:    []string{},
		Headers:   map[string]string{},
		Path:      r.URL.RequestURI(),
	}
	w.SignedIn = w.User != ""
	if groups, err := authz.DecodeGroups(r.Header.Get(HeaderGroups)); err != nil {
		w.GroupsError = err.Error()
	} else if groups != nil {
		w.Groups = groups
	}
	for name, values := range r.Header {
		if !strings.HasPrefix(strings.ToLower(name), strings.ToLower(authz.DefaultHeaderPrefix)) {
			continue
		}
		if http.CanonicalHeaderKey(name) == HeaderAssertion {
			w.Headers[name] = "(present, " + strconv.Itoa(len(strings.Join(values, ""))) + " bytes)"
			continue
		}
		w.Headers[name] = strings.Join(values, ", ")
	}
	return w
}

// New returns the app's handler: /whoami.json answers JSON, every other GET
// or HEAD path the HTML page.
func New(cfg Config) http.Handler {
	if cfg.SignOutPath == "" {
		cfg.SignOutPath = DefaultSignOutPath
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami.json", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(FromRequest(r))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		who := FromRequest(r)
		names := make([]string, 0, len(who.Headers))
		for n := range who.Headers {
			names = append(names, n)
		}
		sort.Strings(names)
		_ = pageTemplate.Execute(w, page{Whoami: who, HeaderNames: names, SignOutPath: cfg.SignOutPath})
	})
	return mux
}

// noStore keeps browsers from showing yesterday's role: the page is only
// ever what the gateway says now.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

type page struct {
	Whoami
	HeaderNames []string
	SignOutPath string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legacy app · Portcullis demo</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
header{background:#24292f;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center}
header form{margin:0}
header button{background:none;border:1px solid #fff;color:#fff;border-radius:6px;padding:.3rem .8rem;cursor:pointer;font-size:.95rem}
main{max-width:44rem;margin:1.5rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.5rem;margin-bottom:1rem}
.role{display:inline-block;font-size:1.6rem;font-weight:700;padding:.2rem .8rem;border-radius:6px;background:#ddf4ff;color:#0550ae}
th{text-align:left;padding-right:1.5rem;vertical-align:top;white-space:nowrap}
td,th{padding-top:.3rem;padding-bottom:.3rem}
code{background:#eaeef2;padding:.05rem .3rem;border-radius:4px}
.muted{color:#57606a;font-size:.9rem}
.warn{color:#9a6700}
</style></head><body>
<header><strong>Legacy app</strong>
{{if .SignedIn}}<form method="post" action="{{.SignOutPath}}"><button type="submit" id="sign-out">Sign out</button></form>{{end}}
</header>
<main>
{{if .SignedIn}}
<div class="card">
<p>Hello, <strong id="name">{{if .Name}}{{.Name}}{{else}}{{.User}}{{end}}</strong>. Your role here:</p>
<p><span class="role" id="role">{{if .Role}}{{.Role}}{{else}}(none){{end}}</span></p>
<p class="muted">This app has no sign-in and no user database of its own. Everything on this page comes from the headers the gateway added to the request.</p>
</div>
<div class="card">
<h2>What the gateway told this app</h2>
<table>
<tr><th><code>X-Remote-User</code></th><td id="user">{{.User}}</td></tr>
<tr><th><code>X-Remote-Email</code></th><td id="email">{{.Email}}</td></tr>
<tr><th><code>X-Remote-Name</code></th><td>{{.Name}}</td></tr>
<tr><th><code>X-Remote-Groups</code></th><td id="groups">{{if .GroupsError}}<span class="warn">undecodable: {{.GroupsError}}</span>{{else}}{{range $i, $g := .Groups}}{{if $i}}<br>{{end}}{{$g}}{{else}}<span class="muted">(none)</span>{{end}}{{end}}</td></tr>
<tr><th><code>X-Remote-Role</code></th><td>{{.Role}}</td></tr>
<tr><th><code>X-Remote-Assertion</code></th><td id="assertion">{{if .Assertion}}present (a signed JWT the app could verify){{else}}not sent{{end}}</td></tr>
</table>
</div>
{{else}}
<div class="card">
<h2>No identity headers</h2>
<p>This request carries no <code>X-Remote-User</code>: it did not come through the gateway, or it reached a public route without a session.</p>
<p>Open the app through the gateway, e.g. <a href="http://localhost:8080/">http://localhost:8080/</a>.</p>
</div>
{{end}}
<div class="card">
<h2>Raw headers</h2>
{{if .HeaderNames}}<table>{{range .HeaderNames}}<tr><th><code>{{.}}</code></th><td><code>{{index $.Headers .}}</code></td></tr>{{end}}</table>
{{else}}<p class="muted">No <code>X-Remote-*</code> headers.</p>{{end}}
<p class="muted">Path <code>{{.Path}}</code> · the same as JSON: <a href="/whoami.json">/whoami.json</a></p>
</div>
</main></body></html>`))
