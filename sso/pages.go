package sso

import (
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// pageKind selects what a person sees when a sign-in does not go through.
type pageKind int

const (
	pageFailed         pageKind = iota // the IdP's answer could not be verified
	pageInactive                       // provisioned, but deactivated
	pageDomain                         // email domain not allowed
	pageNotProvisioned                 // no account, and no JIT
	pageIdPError                       // the IdP answered with an error
	pageSignedOut
	pageConfirmSignOut
	pageServerError
	pageTooMany // too many refused sign-ins from this address
	pageIdPUnreachable
)

type pageText struct {
	title, message string
}

var pageTexts = map[pageKind]pageText{
	pageFailed: {"Sign-in failed",
		"The answer from your identity provider could not be verified, or this sign-in link was already used or has expired. Start again from the application."},
	pageInactive: {"Your account is deactivated",
		"Your account has been deactivated in your organisation's directory, so you cannot sign in to this application. If you think this is a mistake, contact your administrator."},
	pageDomain: {"Your account is not allowed here",
		"Only accounts from the organisation's allowed email domains can sign in to this application. Sign in with your work account, or contact your administrator."},
	pageNotProvisioned: {"You do not have access",
		"You signed in at your identity provider, but no account for you is set up in this application. Ask your administrator to give you access."},
	pageIdPError: {"Sign-in was not completed",
		"Your identity provider did not complete the sign-in. Start again from the application."},
	pageSignedOut: {"You are signed out",
		"You have been signed out of this application."},
	pageConfirmSignOut: {"Sign out?",
		"Do you want to sign out of this application?"},
	pageTooMany: {"Too many sign-in attempts",
		"Too many sign-in attempts from your network failed. Wait a minute, then start again from the application."},
	pageIdPUnreachable: {"Sign-in is unavailable right now",
		"The gateway cannot reach your organisation's identity provider at the moment, so you cannot sign in. If you are already signed in, the application keeps working. Try again in a minute."},
	pageServerError: {"Something went wrong",
		"The sign-in service could not finish your request. Try again in a moment."},
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .FormAction}}<form method="post" action="{{.FormAction}}"><button type="submit">Sign out</button></form>{{end}}
{{if .LinkURL}}<p><a href="{{.LinkURL}}">{{.LinkText}}</a></p>{{end}}
</main></body></html>
`))

type pageData struct {
	Title, Message    string
	FormAction        string
	LinkURL, LinkText string
}

// writePage answers with one of the fixed pages. Nothing the client sent is
// echoed, except through html/template's escaping.
func writePage(w http.ResponseWriter, status int, kind pageKind, extra pageData) {
	t := pageTexts[kind]
	extra.Title, extra.Message = t.title, t.message
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, extra)
}

// writeUnavailable answers 503 with the "IdP unreachable" page and a
// Retry-After of retry (whole seconds, at least one).
func writeUnavailable(w http.ResponseWriter, retry time.Duration) {
	secs := int((retry + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writePage(w, http.StatusServiceUnavailable, pageIdPUnreachable, pageData{})
}
