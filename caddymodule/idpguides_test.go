package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/googlefake"
)

// idpGuides is what each guide for IdP admins in docs/idp/ must hold: its
// ```caddyfile blocks, in order, each named by how its tenant signs in.
// Every block is a complete Caddyfile an admin can paste: it must adapt as
// written, and load with the IdP replaced by a local one.
var idpGuides = map[string][]string{
	"okta.md":             {"oidc", "saml"},
	"entra-id.md":         {"oidc", "saml"},
	"google-workspace.md": {"oidc", "saml"},
	"onelogin.md":         {"saml", "oidc"},
	"jumpcloud.md":        {"saml", "oidc"},
	"keycloak.md":         {"oidc", "saml"},
}

// caddyfileFence finds the ```caddyfile blocks of a Markdown file.
var caddyfileFence = regexp.MustCompile("(?ms)^```caddyfile\n(.*?)^```")

// guideBlocks returns the Caddyfile blocks of a guide.
func guideBlocks(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range caddyfileFence.FindAllStringSubmatch(string(raw), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestIdPGuides checks that every guide in docs/idp/ has Caddyfile blocks,
// that each adapts as written and configures the tenant the guide says, and
// that each loads in a real Caddy once the IdP's URLs point at local
// providers (devidp for OIDC, crewjam's samlidp for SAML) and the site at
// 127.0.0.1. Against the running gateway it checks the values the guide's
// tables tell the admin to paste: the OIDC redirect URI and scopes, the
// SAML entity id and ACS URL in the SP metadata, and what an IdP's SCIM
// "Test connection" gets back.
func TestIdPGuides(t *testing.T) {
	files, err := filepath.Glob("../docs/idp/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range files {
		if name := filepath.Base(f); name != "README.md" {
			found = append(found, name)
		}
	}
	var want []string
	for name := range idpGuides {
		want = append(want, name)
	}
	sort.Strings(want)
	if strings.Join(found, " ") != strings.Join(want, " ") {
		t.Fatalf("docs/idp holds the guides %v; this test knows %v: add the new guide to idpGuides", found, want)
	}
	index, err := os.ReadFile("../docs/idp/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if !strings.Contains(string(index), "("+name+")") {
			t.Errorf("docs/idp/README.md does not link %s", name)
		}
	}

	oidcIdP, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{guidePerson}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oidcIdP.Close)
	samlIdP := gatewaytest.StartSAMLIdP(t)
	samlMetadata := guideFetch(t, samlIdP.MetadataURL())

	for _, name := range want {
		blocks := guideBlocks(t, filepath.Join("../docs/idp", name))
		if len(blocks) == 0 {
			t.Errorf("%s has no ```caddyfile block", name)
			continue
		}
		if len(blocks) != len(idpGuides[name]) {
			t.Errorf("%s has %d caddyfile blocks, want %d (%v)", name, len(blocks), len(idpGuides[name]), idpGuides[name])
			continue
		}
		for i, block := range blocks {
			protocol := idpGuides[name][i]
			t.Run(fmt.Sprintf("%s/%d-%s", strings.TrimSuffix(name, ".md"), i+1, protocol), func(t *testing.T) {
				tenant := adaptGuideBlock(t, block, protocol)
				runGuideBlock(t, block, tenant, guideFakes{oidc: oidcIdP, samlMetadataURL: samlIdP.MetadataURL(), samlMetadata: samlMetadata})
			})
		}
	}
}

// adaptGuideBlock adapts a block exactly as the guide prints it and returns
// its one tenant, checked to sign in with protocol.
func adaptGuideBlock(t *testing.T, block, protocol string) *Tenant {
	t.Helper()
	apps, err := adaptedApps(t, block)
	if err != nil {
		t.Fatalf("the block does not adapt: %v\n%s", err, block)
	}
	if _, ok := apps["http"]; !ok {
		t.Fatal("the block has no site")
	}
	var app struct {
		Tenants []*Tenant `json:"tenants"`
	}
	if err := json.Unmarshal(apps["portcullis"], &app); err != nil {
		t.Fatalf("portcullis app: %v: %s", err, apps["portcullis"])
	}
	if len(app.Tenants) != 1 {
		t.Fatalf("the block configures %d tenants, want 1", len(app.Tenants))
	}
	tn := app.Tenants[0]
	switch {
	case protocol == "oidc" && (tn.OIDC == nil || tn.SAML != nil):
		t.Fatalf("tenant %s: want oidc sign-in: %s", tn.Name, apps["portcullis"])
	case protocol == "saml" && (tn.SAML == nil || tn.OIDC != nil):
		t.Fatalf("tenant %s: want saml sign-in: %s", tn.Name, apps["portcullis"])
	}
	if tn.ExternalURL == "" {
		t.Errorf("tenant %s: the guides set external_url, since the IdP's URLs are built from it", tn.Name)
	}
	return tn
}

// guideFakes are the local IdPs a guide's block is pointed at.
type guideFakes struct {
	oidc            *devidp.Provider
	samlMetadataURL string
	samlMetadata    []byte
}

var (
	globalOpen      = regexp.MustCompile(`(?m)\A\{\n`)
	adminLine       = regexp.MustCompile(`(?m)^\s*admin\s.*\n`)
	storageLine     = regexp.MustCompile(`(?m)^(\s*storage badger)(\s+\S+)?\s*$`)
	issuerLine      = regexp.MustCompile(`(?m)^(\s*issuer)\s+\S+\s*$`)
	metadataURL     = regexp.MustCompile(`(?m)^(\s*idp_metadata_url)\s+\S+\s*$`)
	metadataFile    = regexp.MustCompile(`(?m)^(\s*idp_metadata_file)\s+\S+\s*$`)
	siteAddress     = regexp.MustCompile(`(?m)^([^\s{#][^\s{]*) \{$`)
	envPlaceholder  = regexp.MustCompile(`\{env\.([A-Za-z0-9_]+)\}`)
	credentialsLine = regexp.MustCompile(`(?m)^(\s*)credentials_file\s+\S+\s*$`)
)

// runGuideBlock loads the block with what only a test changes (free ports of
// 127.0.0.1, a temp store, local IdPs) and checks the values the guide gives.
func runGuideBlock(t *testing.T, block string, tenant *Tenant, fakes guideFakes) {
	sites := siteAddress.FindAllStringSubmatch(block, -1)
	if len(sites) != 1 {
		t.Fatalf("the block has %d site addresses, want 1", len(sites))
	}
	external := strings.TrimSuffix(tenant.ExternalURL, "/")
	port := gatewaytest.FreePort(t)
	g := gateway{admin: fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)), site: fmt.Sprintf("http://127.0.0.1:%d", port)}

	cf := block
	cf = adminLine.ReplaceAllString(cf, "")
	if !globalOpen.MatchString(cf) {
		t.Fatal("the block does not start with the global options")
	}
	cf = globalOpen.ReplaceAllLiteralString(cf, "{\n\tadmin "+g.admin+"\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n")
	if !storageLine.MatchString(cf) {
		t.Fatal("the block names no storage")
	}
	cf = storageLine.ReplaceAllString(cf, fmt.Sprintf("${1} %q", filepath.Join(t.TempDir(), "store")))
	cf = siteAddress.ReplaceAllString(cf, fmt.Sprintf(":%d {", port))
	cf = strings.ReplaceAll(cf, external, g.site)
	app := gatewaytest.StartBackend(t, nil)
	cf = strings.ReplaceAll(cf, "reverse_proxy 127.0.0.1:9001", "reverse_proxy "+app.Addr)
	if tenant.Google != nil {
		cf = pointGuideAtGoogleFake(t, cf, tenant)
	}
	for _, m := range envPlaceholder.FindAllStringSubmatch(cf, -1) {
		t.Setenv(m[1], "guide-test-"+m[1])
	}
	if tenant.OIDC != nil {
		cf = issuerLine.ReplaceAllString(cf, "${1} "+fakes.oidc.Issuer)
		secret := tenant.OIDC.ClientSecret
		if m := envPlaceholder.FindStringSubmatch(secret); m != nil {
			secret = "guide-test-" + m[1]
		}
		fakes.oidc.AddClient(tenant.OIDC.ClientID, secret, []string{g.site + "/sso/oidc/callback"}, []string{g.site + "/"})
	}
	cf = metadataURL.ReplaceAllString(cf, "${1} "+fakes.samlMetadataURL)
	if metadataFile.MatchString(cf) {
		file := gatewaytest.WriteFile(t, t.TempDir(), "idp-metadata.xml", string(fakes.samlMetadata))
		cf = metadataFile.ReplaceAllString(cf, fmt.Sprintf("${1} %q", file))
	}
	gatewaytest.Load(t, cf)
	if tenant.Google != nil {
		waitGuideSync(t, g, tenant.Name)
	}

	var token string
	if strings.Contains(block, "scim "+tenant.Name) {
		token = checkGuideSCIM(t, g, tenant.Name)
	}
	if tenant.SAML != nil {
		checkGuideSAML(t, g, tenant, external)
	}
	if tenant.OIDC != nil {
		checkGuideOIDC(t, g, tenant, fakes.oidc.Issuer)
		checkGuideOIDCSignIn(t, g, tenant, token, fakes.oidc)
	}
}

// pointGuideAtGoogleFake runs a fake Google Workspace for a block with a
// google block, holding guidePerson in the group the block maps last, and
// points the block's credentials_file at the fake's service account key
// and its API at the fake (api_endpoint, the one line a test adds).
func pointGuideAtGoogleFake(t *testing.T, cf string, tenant *Tenant) string {
	t.Helper()
	if !credentialsLine.MatchString(cf) {
		t.Fatal("the google block names no credentials_file")
	}
	fake, err := googlefake.New(tenant.Google.Domain, tenant.Google.AdminEmail)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	person := fake.AddUser(googlefake.User{PrimaryEmail: guidePerson.Email, GivenName: "Alice", FamilyName: "Liddell"})
	if n := len(tenant.GroupMappings); n > 0 {
		group := fake.AddGroup(googlefake.Group{Email: "mapped-group@" + tenant.Google.Domain, Name: tenant.GroupMappings[n-1].Group})
		fake.AddUserMember(group, person)
	}
	key := gatewaytest.WriteFile(t, t.TempDir(), "google-sa.json", string(fake.Account.JSON))
	return credentialsLine.ReplaceAllString(cf, fmt.Sprintf("${1}credentials_file %q\n${1}api_endpoint %s", key, fake.URL()))
}

// waitGuideSync waits for the sync the gateway runs at start to succeed.
func waitGuideSync(t *testing.T, g gateway, tenant string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a := call(t, http.MethodGet, "http://"+g.admin+"/portcullis/tenants/"+tenant+"/sync", "", nil)
		expect(t, a, http.StatusOK, "sync status")
		var st directory.Status
		a.json(t, &st)
		switch {
		case st.Result == directory.ResultOK && !st.Running:
			return
		case st.Result == directory.ResultFailed:
			t.Fatalf("the sync at start failed: %s", st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the sync at start did not end within 30s")
}

// guidePerson is who signs in through each guide's OIDC block.
var guidePerson = devidp.User{
	Subject: "guide-alice", PreferredUsername: "alice@example.com",
	Email: "alice@example.com", EmailVerified: true, Name: "Alice Liddell",
}

// objectID is the shape of an Entra object id.
var objectID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkGuideOIDCSignIn signs a person in through the block and checks the
// role the app sees: the role the block maps to its last group, given to
// her by a SCIM push (a SCIM tenant: pushed user, matched by
// preferred_username) or by the token's groups claim (provisioning jit).
func checkGuideOIDCSignIn(t *testing.T, g gateway, tenant *Tenant, token string, idp *devidp.Provider) {
	t.Helper()
	group, role := "", tenant.DefaultRole
	if role == "" && len(tenant.Roles) > 0 {
		role = tenant.Roles[0]
	}
	if n := len(tenant.GroupMappings); n > 0 {
		group, role = tenant.GroupMappings[n-1].Group, tenant.GroupMappings[n-1].Role
	}
	switch {
	case tenant.Provisioning == provisioningJIT:
		var groups []string
		if group != "" {
			groups = []string{group}
		}
		idp.SetGroups(guidePerson.Subject, groups)
	case tenant.Google != nil:
		// The sync imported her and her group (pointGuideAtGoogleFake).
		idp.SetGroups(guidePerson.Subject, nil)
	case token != "":
		// The IdP pushes her and her group, as the guide's SCIM section sets up.
		idp.SetGroups(guidePerson.Subject, nil)
		a := call(t, http.MethodPost, g.scimBase(tenant.Name)+"/Users", token, scimUserBody(guidePerson.PreferredUsername, guidePerson.Name, true))
		expect(t, a, http.StatusCreated, "SCIM POST /Users")
		var u scimUser
		a.json(t, &u)
		if group != "" {
			body := map[string]any{
				"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"displayName": group,
				"members":     []map[string]any{{"value": u.ID}},
			}
			if objectID.MatchString(group) {
				// A mapping by object id: Entra pushes the object id as
				// the group's externalId, next to its name.
				body["displayName"], body["externalId"] = "Group with an object id", group
			}
			a = call(t, http.MethodPost, g.scimBase(tenant.Name)+"/Groups", token, body)
			expect(t, a, http.StatusCreated, "SCIM POST /Groups")
		}
	default:
		t.Fatal("the tenant neither receives SCIM nor creates users at sign-in: nobody can sign in")
	}
	idp.AutoLogin(guidePerson.Subject)
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.site + "/")
	if p.Status != http.StatusOK {
		t.Fatalf("sign-in: landed on %s (%d):\n%s", p.URL, p.Status, p.Body)
	}
	e := gatewaytest.ParseEcho(t, p.Body)
	if got := e.Header.Get("X-Remote-User"); got != guidePerson.PreferredUsername {
		t.Errorf("X-Remote-User %q, want %q", got, guidePerson.PreferredUsername)
	}
	if got := e.Header.Get("X-Remote-Role"); got != role {
		t.Errorf("X-Remote-Role %q, want %q (group %q)", got, role, group)
	}
}

// checkGuideOIDC starts a sign-in: the browser goes to the provider with
// the redirect URI and scopes the guide tells the admin to register.
func checkGuideOIDC(t *testing.T, g gateway, tenant *Tenant, issuer string) {
	t.Helper()
	loc := guideRedirect(t, g.site+"/sso/login?rd=/")
	if !strings.HasPrefix(loc.String(), issuer) {
		t.Fatalf("sign-in goes to %s, want the issuer %s", loc, issuer)
	}
	q := loc.Query()
	if got, want := q.Get("redirect_uri"), g.site+"/sso/oidc/callback"; got != want {
		t.Errorf("redirect_uri %q, want %q (<external_url>/sso/oidc/callback)", got, want)
	}
	if got := q.Get("client_id"); got != tenant.OIDC.ClientID {
		t.Errorf("client_id %q, want %q", got, tenant.OIDC.ClientID)
	}
	scopes := strings.Fields(q.Get("scope"))
	wantScopes := append([]string{"openid"}, tenant.OIDC.Scopes...)
	if len(tenant.OIDC.Scopes) == 0 {
		wantScopes = []string{"openid", "email", "profile"}
	}
	for _, s := range wantScopes {
		if !slices.Contains(scopes, s) {
			t.Errorf("scope %q not asked for: %q", s, q.Get("scope"))
		}
	}
	if q.Get("code_challenge_method") != "S256" {
		t.Errorf("no PKCE S256 challenge in %s", loc)
	}
}

// checkGuideSAML reads the SP metadata at the URL the guide gives and
// starts a sign-in at the IdP.
func checkGuideSAML(t *testing.T, g gateway, tenant *Tenant, external string) {
	t.Helper()
	md := string(guideFetch(t, g.site+"/sso/saml/metadata"))
	entityID := strings.ReplaceAll(tenant.SAML.EntityID, external, g.site)
	for _, want := range []string{
		`entityID="` + entityID + `"`,
		`Location="` + g.site + `/sso/saml/acs"`,
		`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("SP metadata lacks %s:\n%s", want, md)
		}
	}
	if tenant.SAML.SignAuthnRequests && !strings.Contains(md, `AuthnRequestsSigned="true"`) {
		t.Errorf("sign_authn_requests is on but the metadata does not say so:\n%s", md)
	}
	loc := guideRedirect(t, g.site+"/sso/login?rd=/")
	if loc.Query().Get("SAMLRequest") == "" || loc.Query().Get("RelayState") == "" {
		t.Errorf("sign-in redirect %s carries no SAMLRequest and RelayState", loc)
	}
}

// checkGuideSCIM sends what the IdPs' "Test connection" buttons send, with
// the token made as the guides say, and checks the answers the guides
// describe.
func checkGuideSCIM(t *testing.T, g gateway, tenant string) (token string) {
	t.Helper()
	token = issueToken(t, g, tenant)
	base := g.scimBase(tenant)
	for _, path := range []string{
		"/Users?startIndex=1&count=2", // Okta's credentials check
		"/Users?filter=" + url.QueryEscape(`userName eq "no-such-user@example.com"`) + "&startIndex=1&count=1",
		"/Users?filter=" + url.QueryEscape(`userName eq "5bc8e3e4-6d3a-4b0f-9a53-3f9d1e7c2a10"`), // Entra's
		"/Users?aadOptscim062020&filter=" + url.QueryEscape(`userName eq "5bc8e3e4-6d3a-4b0f-9a53-3f9d1e7c2a10"`),
		"/Groups?startIndex=1&count=100",
	} {
		a := call(t, http.MethodGet, base+path, token, nil)
		expect(t, a, http.StatusOK, "GET "+path)
		var list struct {
			Schemas      []string `json:"schemas"`
			TotalResults *int     `json:"totalResults"`
			Resources    []any    `json:"Resources"`
		}
		a.json(t, &list)
		if len(list.Schemas) != 1 || list.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" ||
			list.TotalResults == nil || *list.TotalResults != 0 || list.Resources == nil || len(list.Resources) != 0 {
			t.Errorf("GET %s: want an empty ListResponse (totalResults 0, Resources []), got %s", path, a.body)
		}
	}
	a := call(t, http.MethodGet, base+"/ServiceProviderConfig", token, nil)
	expect(t, a, http.StatusOK, "GET /ServiceProviderConfig")

	a = call(t, http.MethodGet, base+"/Users?startIndex=1&count=1", "not-the-token", nil)
	expect(t, a, http.StatusUnauthorized, "a wrong token")
	if !strings.Contains(string(a.body), "urn:ietf:params:scim:api:messages:2.0:Error") {
		t.Errorf("a wrong token: want a SCIM error body, got %s", a.body)
	}
	return token
}

// guideRedirect gets u without following redirects and returns where the
// gateway sends the browser.
func guideRedirect(t *testing.T, u string) *url.URL {
	t.Helper()
	c := &http.Client{Timeout: httpClient.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: status %d, want a redirect to the IdP: %s", u, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// guideFetch gets u and returns its body, failing on anything but 200.
func guideFetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", u, resp.StatusCode, err, b)
	}
	return b
}
