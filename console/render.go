package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
)

// style.css follows the look of the gateway's pages (pages/style.css):
// the same colours, type and buttons, so the product looks like one thing.
//
//go:embed style.css
var styleCSS string

// copy.js is the only script: the token page's copy button.
//
//go:embed copy.js
var copyJS string

//go:embed templates/*.html
var templateFS embed.FS

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// consoleCSP allows the embedded stylesheet and the copy script by their
// hashes, forms to this origin, and nothing else: no other script, no
// frames, no connections, no images.
var consoleCSP = "default-src 'none'; style-src " + hashSource(styleCSS) +
	"; script-src " + hashSource(copyJS) +
	"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setSecurityHeaders is sent with every console answer.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

var funcs = template.FuncMap{
	"iso": func(v any) string {
		t, ok := timeOf(v)
		if !ok {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"stamp": func(v any) string {
		t, ok := timeOf(v)
		if !ok {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"ago": func(v any) string {
		t, ok := timeOf(v)
		if !ok {
			return "never"
		}
		return ago(time.Since(t))
	},
	"sourceLabel": sourceLabel,
	"health":      health,
	"evtClass":    func(typ string) string { kind, _, _ := strings.Cut(typ, "."); return kind },
}

// timeOf reads a time or a *time.Time; a zero or nil time is not one.
func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

// ago says how long ago, in the words a person uses.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// sourceLabel names who manages a user or a group.
func sourceLabel(source string) string {
	switch source {
	case "scim":
		return "SCIM"
	case "google":
		return "Google"
	case "jit":
		return "IdP sign-in"
	case "manual":
		return "Manual"
	case "config":
		return "config"
	case "directory":
		return "Directory"
	}
	return source
}

// health answers "did my IdP reach us?" in a sentence.
func health(t *operator.TokenStatus) string {
	if t == nil {
		return "No SCIM token was ever made."
	}
	if t.Status != "active" {
		return "SCIM is disabled: the IdP's pushes are refused with 401 until a new token is generated."
	}
	if t.LastUsed == nil {
		return "The token has not been used yet: no SCIM request has reached the gateway with it. Run your IdP's Test Connection and reload this page."
	}
	who := "a SCIM client"
	if t.LastUsed.Client != "" {
		who = t.LastUsed.Client
	}
	s := fmt.Sprintf("Yes: %s reached the gateway %s from %s.", who, ago(time.Since(t.LastUsed.Time)), t.LastUsed.ClientAddr)
	if t.Failures24h > 0 {
		s += fmt.Sprintf(" %d request%s with a wrong or old token were refused in the last 24 hours.", t.Failures24h, map[bool]string{true: "", false: "s"}[t.Failures24h == 1])
	}
	return s
}

// templates holds each page, parsed with the layout.
var templates = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"error", "home", "tenant", "users", "user", "groups", "token", "token_shown", "confirm", "events"} {
		t := template.Must(base.Clone())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}()

// view is what the layout shows around a page; Data is the page's own.
type view struct {
	Title    string
	Section  string // the tenant tab that is current
	Prefix   string
	Tenants  []string
	Tenant   *Tenant
	Operator string
	Logout   string // the operator's sign-out link
	CSRF     string
	Flash    string
	Status   int
	Error    string
	CSS      template.CSS
	Script   template.JS
	Data     any
}

// render writes page with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	id, _ := authz.IdentityFromContext(r.Context())
	if id != nil {
		v.Operator = id.UserName
		v.CSRF = h.csrf.token(w, r, id.UserName)
	}
	v.Prefix = h.prefix
	v.Logout = h.logout
	v.Tenants = h.order
	v.CSS = template.CSS(styleCSS)
	v.Status = status
	if v.Flash == "" {
		v.Flash = flashText(r.URL.Query().Get("done"))
	}
	var b bytes.Buffer
	if err := templates[page].ExecuteTemplate(&b, "layout", &v); err != nil {
		h.logger.Error("console: rendering a page", zap.String("page", page), zap.Error(err))
		http.Error(w, "500 the console could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail shows an error page (inside the tenant's tabs when t is set).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, t *Tenant, status int, msg string) {
	title := map[int]string{
		http.StatusBadRequest:         "That did not work",
		http.StatusForbidden:          "Refused",
		http.StatusNotFound:           "Not found",
		http.StatusConflict:           "That cannot be changed here",
		http.StatusServiceUnavailable: "Unavailable",
	}[status]
	if title == "" {
		title = "Something went wrong"
	}
	h.render(w, r, status, "error", view{Title: title, Tenant: t, Error: msg})
}

// flashes are the messages shown after a change (the done parameter of
// the page a form redirects to); fixed words, so a link cannot put its
// own text on the console.
var flashes = map[string]string{
	"mapping":     "Mapping saved. It applies on each member's next request.",
	"unmapped":    "Mapping removed: the group now grants the default level, from each member's next request.",
	"declared":    "Group declared. Map it below; its members get that level from their first sign-in.",
	"session":     "Session ended. That browser has to sign in again.",
	"user":        "User changed. It applies on their next request.",
	"sessions":    "All of this user's sessions were ended.",
	"disabled":    "SCIM is disabled: the IdP's pushes now get 401.",
	"created":     "User created. They sign in through the tenant's IdP and get the role set here.",
	"deleted":     "User deleted. Their sessions ended.",
	"signedout":   "Every session of this tenant was ended: everyone has to sign in again.",
	"syncstarted": "A sync with the directory has started; this page shows its result when it ends.",
	"disconnect":  "The identity provider is disconnected. Its users are now managed here, with the roles they had.",
}

func flashText(code string) string { return flashes[code] }

// redirectDone sends the browser to a page that shows a flash message
// (303: the page is fetched with GET).
func redirectDone(w http.ResponseWriter, r *http.Request, url, done string) {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	http.Redirect(w, r, url+sep+"done="+done, http.StatusSeeOther)
}

// copyScript is the copy button's script, allowed by its hash.
var copyScript = template.JS(copyJS)
