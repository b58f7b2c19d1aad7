package devidp

import (
	"context"
	"crypto/subtle"
	"html/template"
	"net/http"
	"strings"
)

// maxFormBytes bounds the login form's body.
const maxFormBytes = 16 << 10

// login is the provider's own sign-in step: it decides who the auth request
// is for and hands back to the op package's callback.
func (p *Provider) login(w http.ResponseWriter, r *http.Request, callback func(context.Context, string) string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.renderLogin(w, http.StatusBadRequest, loginPage{Error: "The form could not be read."})
		return
	}
	id := r.Form.Get("authRequestID")
	if !p.st.hasRequest(id) {
		// Someone opened /login by hand, or the request expired with a
		// restart: sign-in starts at the application.
		p.renderLogin(w, http.StatusBadRequest, loginPage{Error: "This sign-in request is unknown or has expired. Start again from the application you were signing in to."})
		return
	}
	subject := ""
	switch r.Method {
	case http.MethodGet:
		p.st.mu.Lock()
		subject = p.st.autoLogin
		p.st.mu.Unlock()
		if subject == "" {
			p.renderLogin(w, http.StatusOK, loginPage{ID: id})
			return
		}
	case http.MethodPost:
		name := r.PostForm.Get("username")
		u, ok := p.st.userByName(name)
		given := r.PostForm.Get("password")
		if !ok || u.Password == "" || subtle.ConstantTimeCompare([]byte(u.Password), []byte(given)) != 1 {
			p.renderLogin(w, http.StatusUnauthorized, loginPage{ID: id, Username: name, Error: "Wrong username or password."})
			return
		}
		subject = u.Subject
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := p.st.completeLogin(id, subject); err != nil {
		p.renderLogin(w, http.StatusBadRequest, loginPage{ID: id, Error: "Sign-in failed: " + err.Error() + "."})
		return
	}
	http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
}

// loginPage is what the login template shows.
type loginPage struct {
	ID       string // auth request; empty: no form, only the error
	Username string // typed before a failed attempt
	Error    string
	Issuer   string
	Users    []User // those with a password
	// SharedPassword is set when every listed user has the same password,
	// so the page says it once.
	SharedPassword string
}

func (p *Provider) renderLogin(w http.ResponseWriter, status int, page loginPage) {
	page.Issuer = p.Issuer
	for _, u := range p.st.listed() {
		if u.Password != "" {
			page.Users = append(page.Users, u)
		}
	}
	for i, u := range page.Users {
		if i == 0 {
			page.SharedPassword = u.Password
		} else if u.Password != page.SharedPassword {
			page.SharedPassword = ""
			break
		}
	}
	render(w, status, loginTemplate, page)
}

// home tells someone who opens the provider's address what it is.
func (p *Provider) home(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, homeTemplate, loginPage{Issuer: p.Issuer, Users: p.st.listed()})
}

// loggedOut is where end_session lands when the client named no
// post-logout redirect.
func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, loggedOutTemplate, loginPage{Issuer: p.Issuer})
}

func render(w http.ResponseWriter, status int, t *template.Template, data loginPage) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "page template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// The pages share a head and a banner that says what this provider is.
const pageHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{template "title" .}} · development identity provider</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
.banner{background:#fff3cd;border-bottom:1px solid #e0c36c;padding:.6rem 1rem;text-align:center;font-size:.95rem}
main{max-width:34rem;margin:2rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem 2rem}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #8c959f;border-radius:6px}
button{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem;border-radius:6px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;cursor:pointer}
button.quick{margin:0;padding:.25rem .7rem;font-size:.9rem;background:#fff;color:#1f6feb}
#error{color:#b42318;font-weight:600}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
td,th{text-align:left;padding:.35rem .4rem;border-bottom:1px solid #eaeef2;font-size:.92rem}
code{background:#eaeef2;padding:.05rem .3rem;border-radius:4px}
.muted{color:#57606a;font-size:.9rem}
</style></head><body>
<div class="banner" role="note"><strong>Development identity provider — for local trial only.</strong>
Not for production: it keeps users in memory and shows their passwords.</div>
<main>`

const pageFoot = `<p class="muted">Issuer <code>{{.Issuer}}</code></p></main></body></html>`

var loginTemplate = template.Must(template.New("login").Parse(pageHead + `
{{define "title"}}Sign in{{end}}
<h1>Sign in</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
{{if .ID}}
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username or email</label>
<input type="text" name="username" id="username" value="{{.Username}}" autocomplete="username" autofocus>
<label for="password">Password</label>
<input type="password" name="password" id="password" autocomplete="current-password">
<button type="submit" id="submit">Sign in</button>
</form>
{{if .Users}}
<h2>Sample users</h2>
{{if .SharedPassword}}<p>The password of every sample user is <code id="demo-password">{{.SharedPassword}}</code>.</p>{{end}}
<table>
<tr><th>Name</th><th>Username</th>{{if not .SharedPassword}}<th>Password</th>{{end}}<th></th></tr>
{{$id := .ID}}{{$shared := .SharedPassword}}
{{range .Users}}<tr><td>{{.Name}}</td><td><code>{{.PreferredUsername}}</code></td>{{if not $shared}}<td><code>{{.Password}}</code></td>{{end}}
<td><form method="post" action="/login"><input type="hidden" name="authRequestID" value="{{$id}}"><input type="hidden" name="username" value="{{.PreferredUsername}}"><input type="hidden" name="password" value="{{.Password}}"><button class="quick" type="submit">Sign in as {{.PreferredUsername}}</button></form></td></tr>
{{end}}</table>
<p class="muted">Which of them may enter the application, and with which role, is up to the gateway: a user it has not been told about (by SCIM) is refused there.</p>
{{end}}
{{end}}
` + pageFoot))

var homeTemplate = template.Must(template.New("home").Parse(pageHead + `
{{define "title"}}About{{end}}
<h1>Development identity provider</h1>
<p>An OpenID Connect provider for trying Portcullis on one machine. Sign-in starts at the application behind the gateway, which sends you here.</p>
<p>Discovery: <a href="/.well-known/openid-configuration"><code>/.well-known/openid-configuration</code></a></p>
{{if .Users}}<h2>Users</h2><table><tr><th>Name</th><th>Username</th><th>Groups claim</th></tr>
{{range .Users}}<tr><td>{{.Name}}</td><td><code>{{.PreferredUsername}}</code></td><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td></tr>
{{end}}</table>{{end}}
` + pageFoot))

var loggedOutTemplate = template.Must(template.New("loggedout").Parse(pageHead + `
{{define "title"}}Signed out{{end}}
<h1>Signed out</h1>
<p id="signed-out">You are signed out of the development identity provider.</p>
` + pageFoot))
