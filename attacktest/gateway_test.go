package attacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
)

// gatewayCaddyfile is the gateway every attack runs against: two tenants
// with the same session cookie name (the default), acme signing in with
// OIDC and globex with SAML, each on its own site, and on acme's site a
// public route, a route with its own header prefix and a route of globex.
// @NAME@ markers are filled in by startGateway.
const gatewayCaddyfile = `{
	admin @ADMIN@
	persist_config off
	default_bind 127.0.0.1
	# Only errors: a failing attack's output stays readable.
	log {
		level ERROR
	}
	portcullis {
		storage badger "@STORE@"
		tenant acme {
			oidc {
				issuer @ISSUER@
				client_id portcullis-acme
				client_secret @SECRET@
				post_logout_redirect @ACME@/signed-out
			}
			provisioning jit
			external_url @ACME@
			roles viewer editor admin
			map_group "Engineering" editor
			map_group "Admins" admin
		}
		tenant globex {
			saml {
				idp_metadata_url @SAMLMETADATA@
				entity_id @GLOBEX@/sso/saml/metadata
			}
			provisioning jit
			external_url @GLOBEX@
			roles reader writer admin
			map_group "writers" writer
			map_group "admins" admin
		}
	}
}

:@ACMEPORT@ {
	handle /scim/v2/acme/* {
		scim acme
	}
	handle /sso/* {
		sso acme
	}
	handle /.well-known/portcullis/acme/jwks.json {
		identity_jwks acme
	}
	handle /public/* {
		identity acme {
			public
		}
		reverse_proxy @BACKEND@
	}
	handle /custom/* {
		identity acme {
			header_prefix X-Auth-
		}
		reverse_proxy @BACKEND@
	}
	handle /globex-sso/* {
		sso globex /globex-sso
	}
	handle /globex/* {
		identity globex {
			login_prefix /globex-sso
		}
		reverse_proxy @BACKEND@
	}
	handle {
		identity acme {
			assertion_audience legacy-app
		}
		reverse_proxy @BACKEND@
	}
}

:@GLOBEXPORT@ {
	handle /sso/* {
		sso globex
	}
	handle {
		identity globex
		reverse_proxy @BACKEND@
	}
}
`

// The session cookie both tenants use: neither names its own.
const sessionCookie = "portcullis_session"

// People of the attacks. acme's come from devidp, globex's from samlidp.
const (
	aliceName  = "alice@acme.example" // acme, Engineering: editor
	eveName    = "eve@acme.example"   // acme, the attacker's own account
	rootName   = "root@acme.example"  // acme, Admins: admin
	ginaUser   = "gina"               // globex, writers
	ginaPass   = "gina-pw"
	ginaEmail  = "gina@globex.example"
	malloryUID = "mallory" // globex, whose email extends root's
	malloryPW  = "mallory-pw"
	// The globex admin an attacker wants to be (user B of the SAML
	// attacks). The IdP does not know them.
	globexRootUID   = "root"
	globexRootEmail = "root@globex.example"
)

// gateway is the running gateway and everything around it.
type gateway struct {
	admin   string // host:port of the admin API
	acme    string // http://127.0.0.1:port, tenant acme's site
	globex  string // tenant globex's site
	oidc    *devidp.Provider
	saml    *gatewaytest.SAMLIdP
	backend *recorder
}

// startGateway runs the gateway, its two IdPs and the backend until the
// test ends.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{}
	acmePort, globexPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g.acme = fmt.Sprintf("http://127.0.0.1:%d", acmePort)
	g.globex = fmt.Sprintf("http://127.0.0.1:%d", globexPort)
	g.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))

	var err error
	g.oidc, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: aliceName, Email: aliceName, EmailVerified: true, Name: "Alice Liddell", Groups: []string{"Engineering"}},
		{Subject: "eve", PreferredUsername: eveName, Email: eveName, EmailVerified: true, Name: "Eve Attacker"},
		{Subject: "root", PreferredUsername: rootName, Email: rootName, EmailVerified: true, Name: "Root Admin", Groups: []string{"Admins"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.oidc.Close)
	secret := "attack-secret-" + fmt.Sprint(time.Now().UnixNano())
	g.oidc.AddClient("portcullis-acme", secret, []string{g.acme + "/sso/oidc/callback"}, []string{g.acme + "/signed-out"})

	g.saml = gatewaytest.StartSAMLIdP(t)
	g.saml.AddUser(ginaUser, ginaPass, ginaEmail, "Gina Writer", []string{"writers"})
	g.saml.AddUser(malloryUID, malloryPW, globexRootEmail+".evil.test", "Mallory", []string{"outsiders"})

	g.backend = startRecorder(t)

	cf := strings.NewReplacer(
		"@ADMIN@", g.admin,
		"@STORE@", filepath.Join(t.TempDir(), "store"),
		"@ISSUER@", g.oidc.Issuer,
		"@SECRET@", secret,
		"@SAMLMETADATA@", g.saml.MetadataURL(),
		"@ACMEPORT@", fmt.Sprint(acmePort),
		"@GLOBEXPORT@", fmt.Sprint(globexPort),
		"@ACME@", g.acme,
		"@GLOBEX@", g.globex,
		"@BACKEND@", g.backend.Addr,
	).Replace(gatewayCaddyfile)
	gatewaytest.Load(t, cf)
	g.saml.RegisterSP("globex", g.globex+"/sso/saml/metadata")
	return g
}

// recorder is the legacy app: it answers with what it received (a
// gatewaytest echo) and remembers every request, trailers included, so a
// test sees everything the gateway ever passed on.
type recorder struct {
	*gatewaytest.Backend
	mu   sync.Mutex
	seen []received
}

// received is one request as the backend got it.
type received struct {
	URI     string
	Header  http.Header
	Trailer http.Header
}

func startRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.Backend = gatewaytest.StartBackend(t, func(r *http.Request) any {
		// Trailers arrive after the body.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		rec.mu.Lock()
		rec.seen = append(rec.seen, received{URI: r.RequestURI, Header: r.Header.Clone(), Trailer: r.Trailer.Clone()})
		rec.mu.Unlock()
		return nil
	})
	return rec
}

// take returns the requests received since the last take.
func (rec *recorder) take() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := rec.seen
	rec.seen = nil
	return s
}

// client makes single requests and never follows redirects, so a test sees
// every answer of the gateway.
var client = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends req with client and reads the answer.
func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// get requests u with only the session cookie given (none when empty), as
// a script rather than a browser (no Accept: text/html).
func get(t *testing.T, u, session string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	}
	return do(t, req)
}

// signInOIDC signs subject in to acme in a new browser (devidp signs them in
// without a form) and returns the browser.
func (g *gateway) signInOIDC(t *testing.T, subject string) *gatewaytest.Browser {
	t.Helper()
	g.oidc.AutoLogin(subject)
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.acme + "/home")
	if p.Status != http.StatusOK || p.URL.String() != g.acme+"/home" {
		t.Fatalf("signing %s in: landed on %s (%d):\n%s", subject, p.URL, p.Status, p.Body)
	}
	gatewaytest.ParseEcho(t, p.Body)
	if b.Cookie(g.acme, sessionCookie) == "" {
		t.Fatalf("signing %s in: no session cookie", subject)
	}
	return b
}

// samlResponseForm starts a SAML sign-in to globex in b, signs user in at
// the IdP's form and returns the IdP's auto-post form (SAMLResponse,
// RelayState) without submitting it, and the ACS URL it posts to.
func (g *gateway) samlResponseForm(t *testing.T, b *gatewaytest.Browser, path, user, password string) (gatewaytest.Form, string) {
	t.Helper()
	p := b.Get(g.globex + path)
	if !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("expected the IdP's login form, got %s (%d):\n%s", p.URL, p.Status, p.Body)
	}
	p = b.SubmitForm(p, map[string]string{"user": user, "password": password})
	f, ok := gatewaytest.FirstForm(p.Body)
	if !ok || f.Values.Get("SAMLResponse") == "" || f.Values.Get("RelayState") == "" {
		t.Fatalf("expected the IdP's auto-post form, got %d:\n%s", p.Status, p.Body)
	}
	acs, err := p.URL.Parse(f.Action)
	if err != nil {
		t.Fatal(err)
	}
	if acs.String() != g.globex+"/sso/saml/acs" {
		t.Fatalf("the IdP posts to %s", acs)
	}
	return f, acs.String()
}

// signInSAML signs user in to globex in a new browser.
func (g *gateway) signInSAML(t *testing.T, user, password string) *gatewaytest.Browser {
	t.Helper()
	b := gatewaytest.NewBrowser(t)
	f, acs := g.samlResponseForm(t, b, "/home", user, password)
	p := b.PostForm(acs, f.Values)
	if p.Status != http.StatusOK || p.URL.String() != g.globex+"/home" {
		t.Fatalf("signing %s in: landed on %s (%d):\n%s", user, p.URL, p.Status, p.Body)
	}
	if b.Cookie(g.globex, sessionCookie) == "" {
		t.Fatalf("signing %s in: no session cookie", user)
	}
	return b
}

// issueSCIMToken makes a tenant's SCIM token through the admin API.
func (g *gateway) issueSCIMToken(t *testing.T, tenant string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+g.admin+"/portcullis/tenants/"+tenant+"/scim-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := do(t, req)
	if a.status != http.StatusCreated {
		t.Fatalf("issuing the SCIM token: %d %s", a.status, a.body)
	}
	var resp struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(a.body), &resp); err != nil || len(resp.Token) < 32 {
		t.Fatalf("issuing the SCIM token: %v %s", err, a.body)
	}
	return resp.Token
}

// events lists a tenant's audit events of the given types (all when
// empty) through the admin API, and returns them with the raw answer.
func (g *gateway) events(t *testing.T, tenant string, types ...string) ([]storage.Event, string) {
	t.Helper()
	u := "http://" + g.admin + "/portcullis/tenants/" + tenant + "/events?limit=500"
	if len(types) > 0 {
		u += "&type=" + url.QueryEscape(strings.Join(types, ","))
	}
	a := get(t, u, "")
	if a.status != http.StatusOK {
		t.Fatalf("listing events: %d %s", a.status, a.body)
	}
	var page struct {
		Events []storage.Event `json:"events"`
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(a.body))).Decode(&page); err != nil {
		t.Fatalf("decoding events: %v\n%s", err, a.body)
	}
	return page.Events, a.body
}
