package attacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// boundaryCaddyfile is the gateway of the trust-boundary attacks (upgrades,
// streams, paths, cookies, placeholders). It is separate from
// gatewayCaddyfile so those tests stay as they are. Three tenants, each on
// its own site:
//   - acme (OIDC, jit): h2c, WebSocket, raw-bytes and servlet routes, each
//     protected, public, and (for the controls) without identity;
//   - initech (OIDC, provisioned by SCIM): WebSocket and SSE routes for any
//     user, for role admin and for group Ops, and a route whose
//     reverse_proxy sends the identity placeholders;
//   - globex (SAML, jit): WebSocket and SSE routes, for sessions the IdP
//     ends within seconds (SessionNotOnOrAfter).
const boundaryCaddyfile = `{
	admin @ADMIN@
	persist_config off
	default_bind 127.0.0.1
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
			}
			provisioning jit
			external_url @ACME@
			roles viewer editor admin
			map_group "Admins" admin
		}
		tenant initech {
			oidc {
				issuer @ISSUER@
				client_id portcullis-initech
				client_secret @SECRET@
			}
			provisioning scim
			external_url @INITECH@
			roles viewer editor admin
			map_group "Admins" admin
		}
		tenant globex {
			saml {
				idp_metadata_url @SAMLMETADATA@
				entity_id @GLOBEX@/sso/saml/metadata
			}
			provisioning jit
			external_url @GLOBEX@
		}
	}
}

:@ACMEPORT@ {
	handle /sso/* {
		sso acme
	}
	handle /h2c/* {
		identity acme
		reverse_proxy @H2C@
	}
	handle /h2c-public/* {
		identity acme {
			public
		}
		reverse_proxy @H2C@
	}
	handle /h2c-open/* {
		reverse_proxy @H2C@
	}
	handle /ws/* {
		identity acme
		reverse_proxy @WS@
	}
	handle /ws-public/* {
		identity acme {
			public
		}
		reverse_proxy @WS@
	}
	handle /raw/* {
		identity acme
		reverse_proxy @RAW@
	}
	handle /raw-public/* {
		identity acme {
			public
		}
		reverse_proxy @RAW@
	}
	handle /raw-open/* {
		reverse_proxy @RAW@
	}
	handle /pub/* {
		identity acme {
			public
		}
		reverse_proxy @SERVLET@
	}
	handle /j/admin/* {
		identity acme {
			require admin
		}
		reverse_proxy @SERVLET@
	}
	handle {
		identity acme
		reverse_proxy @SERVLET@
	}
}

:@INITECHPORT@ {
	handle /scim/v2/initech/* {
		scim initech
	}
	handle /sso/* {
		sso initech
	}
	handle /ws/* {
		identity initech
		reverse_proxy @WS@
	}
	handle /sse/* {
		identity initech
		reverse_proxy @SSE@
	}
	handle /admin/ws/* {
		identity initech {
			require admin
		}
		reverse_proxy @WS@
	}
	handle /admin/sse/* {
		identity initech {
			require admin
		}
		reverse_proxy @SSE@
	}
	handle /ops/ws/* {
		identity initech {
			allow_groups Ops
		}
		reverse_proxy @WS@
	}
	handle /ops/sse/* {
		identity initech {
			allow_groups Ops
		}
		reverse_proxy @SSE@
	}
	handle /names/* {
		identity initech
		reverse_proxy @ECHO@ {
			header_up X-Forwarded-User {http.auth.user.id}
			header_up X-Portcullis-Tenant {portcullis.tenant}
			header_up X-Portcullis-Id {portcullis.user.id}
			header_up X-Portcullis-Username {portcullis.user.name}
			header_up X-Portcullis-Email {portcullis.user.email}
			header_up X-Portcullis-Name {portcullis.user.display_name}
			header_up X-Portcullis-Groups {portcullis.user.groups}
			header_up X-Portcullis-Role {portcullis.user.role}
		}
	}
	handle {
		identity initech
		reverse_proxy @ECHO@
	}
}

:@GLOBEXPORT@ {
	handle /sso/* {
		sso globex
	}
	handle /ws/* {
		identity globex
		reverse_proxy @WS@
	}
	handle /sse/* {
		identity globex
		reverse_proxy @SSE@
	}
	handle {
		identity globex
		reverse_proxy @ECHO@
	}
}
`

// People of the boundary attacks. acme's and initech's come from devidp
// (initech's are provisioned by SCIM too: provisionInitech), globex's from
// samlidp.
var initechPeople = []string{"bystander", "victim1", "victim2", "victim3", "victim4", "victim5", "victim6", "clean", "ctl"}

const (
	globexUser = "gil"
	globexPass = "gil-pw"
	globexPeer = "pam" // the unaffected globex user
	globexPW2  = "pam-pw"
)

// initechEmail is the email (and, except for ctl, the userName) of an
// initech person.
func initechEmail(name string) string { return name + "@initech.example" }

// boundaryGateway is boundaryCaddyfile running, with its backends.
type boundaryGateway struct {
	admin, acme, initech, globex string
	oidc                         *devidp.Provider
	saml                         *gatewaytest.SAMLIdP
	h2c                          *gatewaytest.H2CBackend
	ws                           *gatewaytest.WebSocketBackend
	sse                          *gatewaytest.SSEBackend
	raw                          *gatewaytest.RawBackend
	servlet                      *gatewaytest.ServletBackend
	echo                         *recorder
	scimToken                    string
}

// boundaryBackends are the backends of a boundary gateway, started before
// it.
func startBoundaryBackends(t *testing.T, g *boundaryGateway) {
	g.h2c = gatewaytest.StartH2CBackend(t)
	g.ws = gatewaytest.StartWebSocketBackend(t)
	g.sse = gatewaytest.StartSSEBackend(t)
	g.raw = gatewaytest.StartRawBackend(t)
	g.servlet = gatewaytest.StartServletBackend(t)
	g.echo = startRecorder(t)
}

// startBoundaryGateway runs boundaryCaddyfile (changed by edit, when not
// nil, before it is loaded: the placeholders are filled and the backends
// run) until the test ends.
func startBoundaryGateway(t *testing.T, edit func(caddyfile string, g *boundaryGateway) string) *boundaryGateway {
	t.Helper()
	g := &boundaryGateway{}
	acmePort, initechPort, globexPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g.acme = fmt.Sprintf("http://127.0.0.1:%d", acmePort)
	g.initech = fmt.Sprintf("http://127.0.0.1:%d", initechPort)
	g.globex = fmt.Sprintf("http://127.0.0.1:%d", globexPort)
	g.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))

	users := []devidp.User{
		{Subject: "root", PreferredUsername: rootName, Email: rootName, EmailVerified: true, Name: "Root Admin", Groups: []string{"Admins"}},
		{Subject: "eve", PreferredUsername: eveName, Email: eveName, EmailVerified: true, Name: "Eve Attacker"},
	}
	for _, p := range initechPeople {
		users = append(users, devidp.User{Subject: p, PreferredUsername: initechEmail(p), Email: initechEmail(p), EmailVerified: true, Name: p})
	}
	var err error
	g.oidc, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.oidc.Close)
	secret := "boundary-secret-" + fmt.Sprint(time.Now().UnixNano())
	g.oidc.AddClient("portcullis-acme", secret, []string{g.acme + "/sso/oidc/callback"}, nil)
	g.oidc.AddClient("portcullis-initech", secret, []string{g.initech + "/sso/oidc/callback"}, nil)

	g.saml = gatewaytest.StartSAMLIdP(t)
	g.saml.AddUser(globexUser, globexPass, globexUser+"@globex.example", "Gil", []string{"staff"})
	g.saml.AddUser(globexPeer, globexPW2, globexPeer+"@globex.example", "Pam", []string{"staff"})

	startBoundaryBackends(t, g)
	cf := strings.NewReplacer(
		"@ADMIN@", g.admin,
		"@STORE@", filepath.Join(t.TempDir(), "store"),
		"@ISSUER@", g.oidc.Issuer,
		"@SECRET@", secret,
		"@SAMLMETADATA@", g.saml.MetadataURL(),
		"@ACMEPORT@", fmt.Sprint(acmePort),
		"@INITECHPORT@", fmt.Sprint(initechPort),
		"@GLOBEXPORT@", fmt.Sprint(globexPort),
		"@ACME@", g.acme,
		"@INITECH@", g.initech,
		"@GLOBEX@", g.globex,
		"@H2C@", g.h2c.Addr,
		"@WS@", g.ws.Addr,
		"@SSE@", g.sse.Addr,
		"@RAW@", g.raw.Addr,
		"@SERVLET@", g.servlet.Addr,
		"@ECHO@", g.echo.Addr,
	).Replace(boundaryCaddyfile)
	if edit != nil {
		cf = edit(cf, g)
	}
	gatewaytest.Load(t, cf)
	g.saml.RegisterSP("globex", g.globex+"/sso/saml/metadata")
	g.scimToken = (&gateway{admin: g.admin}).issueSCIMToken(t, "initech")
	return g
}

// signIn signs an OIDC subject in to the tenant at site (acme or initech)
// in a new browser and returns it with the session cookie's value.
func (g *boundaryGateway) signIn(t *testing.T, site, subject string) (*gatewaytest.Browser, string) {
	t.Helper()
	g.oidc.AutoLogin(subject)
	b := gatewaytest.NewBrowser(t)
	p := b.Get(site + "/home")
	if p.Status != http.StatusOK || p.URL.String() != site+"/home" {
		t.Fatalf("signing %s in to %s: landed on %s (%d):\n%.500s", subject, site, p.URL, p.Status, p.Body)
	}
	session := b.Cookie(site, sessionCookie)
	if session == "" {
		t.Fatalf("signing %s in to %s: no session cookie", subject, site)
	}
	return b, session
}

// signInGlobex signs a samlidp user in to globex in a new browser and
// returns the session cookie's value.
func (g *boundaryGateway) signInGlobex(t *testing.T, user, password string) string {
	t.Helper()
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.globex + "/home")
	if !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("expected the IdP's login form, got %s (%d):\n%.500s", p.URL, p.Status, p.Body)
	}
	p = b.SubmitForm(p, map[string]string{"user": user, "password": password})
	f, ok := gatewaytest.FirstForm(p.Body)
	if !ok || f.Values.Get("SAMLResponse") == "" {
		t.Fatalf("expected the IdP's auto-post form, got %d:\n%.500s", p.Status, p.Body)
	}
	acs, err := p.URL.Parse(f.Action)
	if err != nil {
		t.Fatal(err)
	}
	p = b.PostForm(acs.String(), f.Values)
	if p.Status != http.StatusOK || p.URL.String() != g.globex+"/home" {
		t.Fatalf("signing %s in to globex: landed on %s (%d):\n%.500s", user, p.URL, p.Status, p.Body)
	}
	session := b.Cookie(g.globex, sessionCookie)
	if session == "" {
		t.Fatalf("signing %s in to globex: no session cookie", user)
	}
	return session
}

// scim makes one SCIM call on initech and returns status and body.
func (g *boundaryGateway) scim(t *testing.T, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, g.initech+"/scim/v2/initech"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	a := do(t, req)
	return a.status, a.body
}

// scimCreate POSTs a resource and returns its id.
func (g *boundaryGateway) scimCreate(t *testing.T, path string, body any) string {
	t.Helper()
	status, resp := g.scim(t, http.MethodPost, path, body)
	var res struct {
		ID string `json:"id"`
	}
	if status != http.StatusCreated || json.Unmarshal([]byte(resp), &res) != nil || res.ID == "" {
		t.Fatalf("SCIM POST %s: %d %s", path, status, resp)
	}
	return res.ID
}

// scimUser provisions an initech user and returns the id.
func (g *boundaryGateway) scimUser(t *testing.T, userName, displayName, email string) string {
	t.Helper()
	return g.scimCreate(t, "/Users", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"displayName": displayName,
		"emails":      []map[string]any{{"value": email, "primary": true, "type": "work"}},
		"active":      true,
	})
}

// scimGroup provisions an initech group with members and returns its id.
func (g *boundaryGateway) scimGroup(t *testing.T, name string, members ...string) string {
	t.Helper()
	var ms []map[string]any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return g.scimCreate(t, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
		"members":     ms,
	})
}

// scimPatch PATCHes path with operations and fails unless it succeeds.
func (g *boundaryGateway) scimPatch(t *testing.T, path string, ops ...map[string]any) {
	t.Helper()
	status, resp := g.scim(t, http.MethodPatch, path, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": ops,
	})
	if status/100 != 2 {
		t.Fatalf("SCIM PATCH %s: %d %s", path, status, resp)
	}
}
