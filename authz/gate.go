package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/internal/clientaddr"
	"github.com/portcullis/portcullis/pages"

	"github.com/portcullis/portcullis/storage"
)

// Policy is what one route asks of a caller. The zero Policy lets in any
// signed-in user whose account is allowed in the tenant.
type Policy struct {
	// Public routes never require a session; identity headers are set
	// when the request carries a live one.
	Public bool
	// Require is the minimum role (`require editor`): that level or a
	// higher one.
	Require string
	// AllowGroups lets in members of any of these groups (`allow_groups
	// a b`), referenced like map_group (see GroupRef). With Require too,
	// the caller must satisfy both.
	AllowGroups []string
}

func (p Policy) String() string {
	var parts []string
	if p.Public {
		parts = append(parts, "public")
	}
	if p.Require != "" {
		parts = append(parts, "require "+p.Require)
	}
	if len(p.AllowGroups) > 0 {
		parts = append(parts, "allow_groups "+strings.Join(p.AllowGroups, " "))
	}
	if len(parts) == 0 {
		return "signed-in"
	}
	return strings.Join(parts, "; ")
}

// GateConfig configures the gate of one route.
type GateConfig struct {
	// Identities is the tenant's shared resolver.
	Identities *Identities
	Policy     Policy
	Headers    HeaderNames
	// LoginURL returns where a browser goes to sign in and come back to
	// returnPath (a local path with its query). nil: no redirect, every
	// unauthenticated request gets 401.
	LoginURL func(returnPath string) string
	// ReturnPath gives the path and query to come back to after sign-in;
	// default r.URL.RequestURI(). The Caddy wiring passes the original
	// request's, before any rewrite. Whatever it returns, only a local
	// path ("/..." but not "//..." or "/\...") is used, so the return
	// path can never be an open redirect.
	ReturnPath func(r *http.Request) string
	// Assertions, with AssertionAudience, adds a signed assertion header.
	Assertions        *AssertionSigner
	AssertionAudience string
	// Route names the route in audit events and logs (e.g. the site and
	// path matcher); default the policy.
	Route string
	// AllowPathParams names the path parameters (";name=value") the route
	// lets through on the last path segment, for servlet apps that keep
	// their session in the URL (";jsessionid=..."). Any other path
	// parameter is refused (see requestpath.go). Empty: none.
	AllowPathParams []string
	// ClientAddr is the client's address for the audit of refused
	// requests (the Caddy wiring passes the client IP it trusts); default
	// r.RemoteAddr.
	ClientAddr func(r *http.Request) string
	// LogoutURL is the local URL that signs the caller out (the sso
	// handler's <prefix>/logout); refusal pages link to it. Empty: no
	// sign-out link.
	LogoutURL string
	// Pages renders the pages browsers get (nil: the built-in ones).
	Pages *pages.Set
	// OnRefusal, when set, is offered every refusal Serve answers (400,
	// 401, 403, 5xx; a redirect to sign in is not a refusal) before the
	// gate writes its page or JSON. A non-nil error means the caller
	// answers instead: the gate writes nothing but headers (Cache-Control,
	// Vary, Retry-After, expired cookies) and Serve returns the error. The
	// Caddy wiring uses it to hand refusals to handle_errors. The Data is
	// complete (words and defaults filled in). Authorize does not offer
	// it.
	OnRefusal func(r *http.Request, page *pages.Data) error
	Logger    *zap.Logger
	// ObserveDecision, when set, is called with every request's decision
	// (for metrics). It runs on the request path: keep it quick.
	ObserveDecision func(Decision)
}

// Gate protects one route: it strips forged identity headers, resolves the
// caller, applies the policy, and sets the identity headers.
type Gate struct {
	ids        *Identities
	policy     Policy
	required   int   // minimum level, -1 none
	allowRefs  []int // ref indexes of AllowGroups
	headers    *headerSet
	loginURL   func(string) string
	returnPath func(*http.Request) string
	signer     *AssertionSigner
	audience   string
	route      string
	paths      pathRules
	clientAddr func(*http.Request) string
	ownsCookie func(name string) bool // nil: the resolver owns no cookie
	logoutURL  string
	pages      *pages.Set
	onRefusal  func(*http.Request, *pages.Data) error
	logger     *zap.Logger
	observe    func(Decision) // nil: decisions are not reported
}

// NewGate checks the configuration and builds the gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Identities == nil {
		return nil, errors.New("authz: a gate needs the tenant's Identities")
	}
	g := &Gate{
		ids:        cfg.Identities,
		policy:     cfg.Policy,
		required:   -1,
		loginURL:   cfg.LoginURL,
		returnPath: cfg.ReturnPath,
		signer:     cfg.Assertions,
		audience:   cfg.AssertionAudience,
		route:      cfg.Route,
		clientAddr: cfg.ClientAddr,
		logoutURL:  localPathOrEmpty(cfg.LogoutURL),
		pages:      cfg.Pages,
		onRefusal:  cfg.OnRefusal,
		logger:     cfg.Logger,
		observe:    cfg.ObserveDecision,
	}
	if g.clientAddr == nil {
		g.clientAddr = func(r *http.Request) string { return r.RemoteAddr }
	}
	if owner, ok := g.ids.sessions.(CookieOwner); ok {
		g.ownsCookie = owner.OwnsCookie
	}
	for _, p := range cfg.AllowPathParams {
		if p == "" || strings.ContainsAny(p, ";=/\\ ") {
			return nil, fmt.Errorf("authz: %q is not a path parameter name", p)
		}
		g.paths.params = append(g.paths.params, strings.ToLower(p))
	}
	if g.logger == nil {
		g.logger = zap.NewNop()
	}
	if g.returnPath == nil {
		g.returnPath = func(r *http.Request) string { return r.URL.RequestURI() }
	}
	if g.route == "" {
		g.route = cfg.Policy.String()
	}
	p := cfg.Policy
	if p.Public && (p.Require != "" || len(p.AllowGroups) > 0) {
		return nil, errors.New("authz: a public route cannot also require a role or groups")
	}
	if p.Require != "" {
		roles := g.ids.roles
		g.required = roles.level(p.Require)
		if g.required < 0 {
			return nil, fmt.Errorf("authz: require %q: not one of the roles %v", p.Require, roles.Levels)
		}
	}
	for _, ref := range p.AllowGroups {
		if strings.TrimSpace(ref) == "" {
			return nil, errors.New("authz: allow_groups has an empty group name")
		}
		g.allowRefs = append(g.allowRefs, g.ids.refIndexOf(ref))
	}
	if (g.signer == nil) != (g.audience == "") {
		return nil, errors.New("authz: a signed assertion needs both a signer and an audience")
	}
	hs, err := cfg.Headers.resolve()
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	g.headers = hs
	return g, nil
}

// HeaderNames returns the canonical names of the headers the gate sets.
func (g *Gate) HeaderNames() HeaderNames {
	n := g.headers.names
	return HeaderNames{User: n[slotUser], Email: n[slotEmail], Name: n[slotName], Groups: n[slotGroups], Role: n[slotRole], Assertion: n[slotAssertion]}
}

// Authorize runs the gate for one request. When proceed is true the
// request goes on to the upstream: its identity headers are set, and id is
// the caller (nil on a public route without a session). When proceed is
// false the gate has written the answer (redirect, 400, 401, 403 or an
// error) and the request must stop. The returned Identity is shared: read
// only. Authorize does not follow the request once it has gone on: Serve
// does, and ends it when the session loses access.
func (g *Gate) Authorize(w http.ResponseWriter, r *http.Request) (id *Identity, proceed bool) {
	// The identity headers' values need an array of their own per
	// request (see liveRequest.values); allocated only for a caller.
	var values *[slotCount]string
	e, proceed, _ := g.authorize(w, r, false, func() *[slotCount]string {
		values = new([slotCount]string)
		return values
	})
	if e == nil || !proceed {
		return nil, proceed
	}
	return &e.identity, proceed
}

// Serve runs the gate and, when it lets the request through, calls next
// with the writer and request to hand on and the caller (nil on a public
// route without a session). A caller's request is live until next
// returns: if the session loses access meanwhile (see liveRequests), its
// context is cancelled and an upgraded connection is closed, within a
// fraction of a second. The request next gets carries the caller in its
// context (IdentityFromContext). next's error is returned, or, for a
// refused request, the error OnRefusal returned (nil when the gate
// answered).
func (g *Gate) Serve(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request, *Identity) error) error {
	var lr *liveRequest
	e, proceed, err := g.authorize(w, r, true, func() *[slotCount]string {
		lr = new(liveRequest)
		return &lr.values
	})
	if !proceed {
		return err
	}
	if e == nil {
		return next(w, r, nil)
	}
	w, r = g.ids.track(g, w, r, lr, e)
	defer g.ids.untrack(lr)
	return next(w, r, &e.identity)
}

// authorize is Authorize, also returning, with hook, the error OnRefusal
// answered a refusal with. values gives the array the identity headers of
// a caller let through are set from.
func (g *Gate) authorize(w http.ResponseWriter, r *http.Request, hook bool, values func() *[slotCount]string) (e *entry, proceed bool, err error) {
	a := answer{g: g, w: w, r: r, hook: hook}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	scan := g.headers.stripAndScan(r.Header)
	if r.Trailer != nil {
		g.headers.strip(r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody {
		// Trailers arrive with the end of the body; strip them then too.
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r, headers: g.headers}
	}
	if filterScannedUpgrade(r, scan.upgrade) == tunnelRefused {
		return nil, false, g.refuseRequest(a, "unsupported_tunnel", "a CONNECT tunnel that is not a WebSocket",
			"This gateway does not open tunnels; only WebSocket connections may change the protocol.")
	}
	if why := g.paths.requestPathRefusal(r); why != pathOK {
		return nil, false, g.refuseRequest(a, "bad_path", string(why),
			"The address contains "+string(why)+", which the application behind this gateway could read as another page. Remove it and try again.")
	}

	e, out, err := g.ids.resolve(r)
	if err != nil {
		g.logger.Error("resolving the caller", zap.String("tenant", g.ids.tenant), zap.String("route", g.route), zap.Error(err))
		if g.policy.Public {
			g.stripCookies(r, scan.oddCookie)
			g.decided(DecisionAllowed)
			return nil, true, nil
		}
		return nil, false, g.writeStoreError(a, err)
	}
	if out != identified {
		if g.policy.Public {
			g.stripCookies(r, scan.oddCookie)
			g.decided(DecisionAllowed)
			return nil, true, nil
		}
		switch out {
		case inactive, unmapped:
			return nil, false, g.writeAccountRefusal(a, out, e)
		default:
			return nil, false, g.writeUnauthenticated(a)
		}
	}

	if !g.policy.Public && !g.allowed(e) {
		return nil, false, g.writeForbidden(a, e)
	}

	// One backing array for every value, and no slice shared between
	// requests: a later handler may edit values in place (Caddy's
	// `request_header` replace does), which must not reach the cache.
	vals := values()
	*vals = e.values
	if g.signer != nil {
		tok, err := e.assertion(g.signer, g.audience, g.ids.now())
		if err != nil {
			g.logger.Error("signing the identity assertion", zap.String("tenant", g.ids.tenant), zap.Error(err))
			return nil, false, g.writeStoreError(a, err)
		}
		vals[slotAssertion] = tok
	}
	for i, name := range g.headers.names {
		if vals[i] != "" {
			r.Header[name] = vals[i : i+1 : i+1]
		}
	}
	g.stripCookies(r, scan.oddCookie)
	g.decided(DecisionAllowed)
	return e, true, nil
}

// stripCookies removes the gateway's cookies from a request that goes on.
// Only then: a refused request keeps them, since the answer may need them
// (ExpireStrayCookies reads the session cookies a browser sent).
// oddCookie says whether a Cookie header may be under a non-canonical key
// (headerScan); without one only the canonical key is looked at.
func (g *Gate) stripCookies(r *http.Request, oddCookie bool) {
	if g.ownsCookie == nil {
		return
	}
	if oddCookie {
		stripGatewayCookies(r.Header, g.ownsCookie)
		return
	}
	stripGatewayCookieLines(r.Header, "Cookie", r.Header["Cookie"], g.ownsCookie)
}

// refuseRequest answers 400 for a request the gate will not pass on
// whoever sends it (a path a backend could read differently, a tunnel),
// and records it: an access.denied event at most once a minute per client
// address, counting the ones in between, so anonymous traffic costs no
// store write per request.
func (g *Gate) refuseRequest(a answer, code, reason, message string) error {
	g.decided(DecisionBadRequest)
	r := a.r
	addr := clientaddr.Key(g.clientAddr(r))
	eventID := g.ids.auditRefusedRequest(r.Context(), addr, g.route, reason+" in "+r.Method+" "+truncate(r.URL.EscapedPath(), 256))
	g.logger.Debug("request refused", zap.String("tenant", g.ids.tenant), zap.String("route", g.route),
		zap.String("client", addr), zap.String("reason", reason))
	return a.refuse(pages.Data{Kind: pages.BadRequest, Status: http.StatusBadRequest, Code: code,
		Message: message, Reference: eventID, AppURL: "/"})
}

// allowed applies the policy to a resolved caller.
func (g *Gate) allowed(e *entry) bool {
	if g.required >= 0 && e.identity.RoleLevel < g.required {
		return false
	}
	if len(g.allowRefs) == 0 {
		return true
	}
	for _, i := range g.allowRefs {
		if e.inRef[i] {
			return true
		}
	}
	return false
}

// Handler wraps next with the gate for plain net/http use; the identity is
// on the request context (IdentityFromContext).
func (g *Gate) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.Serve(w, r, func(w http.ResponseWriter, r *http.Request, id *Identity) error {
			// A caller's request carries the identity already (Serve).
			next.ServeHTTP(w, r)
			return nil
		})
	})
}

// wantsHTML says whether the request comes from a browser navigating: it
// accepts text/html.
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// localPath keeps p only if it is a path on this site, also once a backend
// or browser percent-decodes it (a few layers deep): "//host", "/\host"
// and control characters hidden as %2F%2F, %5C or %09 are refused too.
func localPath(p string) string {
	const maxLen = 2048
	if len(p) > maxLen {
		return "/"
	}
	layer := p
	for range 4 {
		if !strings.HasPrefix(layer, "/") || strings.HasPrefix(layer, "//") || strings.HasPrefix(layer, "/\\") {
			return "/"
		}
		for i := 0; i < len(layer); i++ {
			if c := layer[i]; c < 0x20 || c == 0x7F {
				return "/"
			}
		}
		next := decodeLeniently(layer)
		if next == layer {
			break
		}
		layer = next
	}
	return p
}

// localPathOrEmpty keeps a configured local URL, "" for anything else.
func localPathOrEmpty(p string) string {
	if p == "" || localPath(p) != p {
		return ""
	}
	return p
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	h.Add("Vary", "Cookie")
}

// answer is how the gate answers one refused request: through OnRefusal
// (hook) when that takes it, else with a page for a browser and JSON for
// anything else.
type answer struct {
	g    *Gate
	w    http.ResponseWriter
	r    *http.Request
	hook bool
}

// refuse answers with the refusal d; body is the JSON answer (nil: error
// and message from d). The error is OnRefusal's, when it took the answer.
func (a answer) refuse(d pages.Data, body ...any) error {
	noStore(a.w)
	d = d.Complete()
	if a.hook && a.g.onRefusal != nil {
		if err := a.g.onRefusal(a.r, &d); err != nil {
			if d.RetryAfter > 0 {
				a.w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			}
			return err
		}
	}
	if wantsHTML(a.r) {
		a.g.pages.Write(a.w, d)
		return nil
	}
	if d.RetryAfter > 0 {
		a.w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	if len(body) > 0 {
		writeJSON(a.w, d.Status, body[0])
		return nil
	}
	writeJSON(a.w, d.Status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{d.Code, d.Message})
	return nil
}

// pageUser is how a page names the caller.
func pageUser(id *Identity) *pages.User {
	return &pages.User{Name: id.UserName, Email: id.Email, DisplayName: id.Name}
}

func (g *Gate) writeUnauthenticated(a answer) error {
	g.decided(DecisionUnauthenticated)
	w, r := a.w, a.r
	if x, ok := g.ids.sessions.(StrayCookieExpirer); ok {
		x.ExpireStrayCookies(w, r)
	}
	login := ""
	if g.loginURL != nil {
		login = g.loginURL(localPath(g.returnPath(r)))
	}
	if login != "" && wantsHTML(r) {
		noStore(w)
		http.Redirect(w, r, login, http.StatusFound)
		return nil
	}
	return a.refuse(pages.Data{Kind: pages.SignInRequired, Status: http.StatusUnauthorized, Code: "unauthenticated",
		Message: "Sign in first.", SignInURL: login},
		struct {
			Error    string `json:"error"`
			Message  string `json:"message"`
			LoginURL string `json:"login_url,omitempty"`
		}{"unauthenticated", "Sign in first.", login})
}

// writeAccountRefusal answers a caller whose session was theirs but whose
// account no longer gets in (deactivated, or in no mapped group); e names
// them. Their sessions are ended already.
func (g *Gate) writeAccountRefusal(a answer, out outcome, e *entry) error {
	g.decided(DecisionDenied)
	// The page says what happened and, in its hint, what to do; the JSON
	// answer has no hint, so its message says both.
	d := pages.Data{Kind: pages.AccountInactive, Status: http.StatusForbidden, Code: "account_inactive"}
	message := "Your account has been deactivated. Ask your administrator if you need access."
	if out == unmapped {
		d.Kind, d.Code = pages.NoMappedGroup, "no_mapped_group"
		message = "You are in none of the groups that grant access here. Ask your administrator to add you to one."
	}
	if e != nil {
		d.User, d.Reference = pageUser(&e.identity), e.eventID
	}
	if g.loginURL != nil {
		d.SwitchUserURL = g.loginURL(localPath(g.returnPath(a.r)))
	}
	return a.refuse(d, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{d.Code, message})
}

func (g *Gate) writeForbidden(a answer, e *entry) error {
	g.decided(DecisionDenied)
	r := a.r
	id := &e.identity
	body := forbiddenBody{Error: "forbidden", Role: id.Role}
	var reason string
	if g.required >= 0 && id.RoleLevel < g.required {
		body.RequiredRole = g.ids.roles.Levels[g.required]
		reason = fmt.Sprintf("requires role %s, has %q", body.RequiredRole, id.Role)
	} else {
		body.AllowedGroups = g.policy.AllowGroups
		reason = fmt.Sprintf("requires membership in one of %q", g.policy.AllowGroups)
	}
	body.Message = "You do not have access to this page."
	eventID := g.ids.auditDenied(r.Context(), id, g.route, reason+" on "+r.Method+" "+r.URL.Path)
	g.logger.Info("access denied", zap.String("tenant", g.ids.tenant), zap.String("route", g.route),
		zap.String("user_id", id.UserID), zap.String("reason", reason))
	return a.refuse(pages.Data{Kind: pages.AccessDenied, Status: http.StatusForbidden, Code: "forbidden",
		User: pageUser(id), SignedIn: true, RequiredRole: body.RequiredRole, Role: id.Role, AllowedGroups: body.AllowedGroups,
		Reference: eventID, AppURL: "/", SwitchUserURL: g.logoutURL}, body)
}

type forbiddenBody struct {
	Error         string   `json:"error"`
	Message       string   `json:"message"`
	RequiredRole  string   `json:"required_role,omitempty"`
	AllowedGroups []string `json:"allowed_groups,omitempty"`
	Role          string   `json:"role,omitempty"`
}

func (g *Gate) writeStoreError(a answer, err error) error {
	g.decided(DecisionError)
	d := pages.Data{Kind: pages.ServerError, Status: http.StatusInternalServerError, Code: "internal_error",
		Message: "The gateway could not check your access. Try again in a moment."}
	switch {
	case errors.Is(err, storage.ErrConflict):
		d.Status, d.Code, d.RetryAfter = http.StatusServiceUnavailable, "busy", 1
	case errors.Is(err, storage.ErrUnavailable):
		d.Status, d.Code, d.RetryAfter = http.StatusServiceUnavailable, "unavailable", RetryAfterUnavailable
	}
	return a.refuse(d)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal_error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
