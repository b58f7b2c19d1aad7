package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// gateway is a running gateway as a test sees it.
type gateway struct {
	admin string // host:port of the admin API
	site  string // http://127.0.0.1:port
}

// scimBase is the SCIM base URL of a tenant.
func (g gateway) scimBase(tenant string) string {
	return g.site + "/scim/v2/" + tenant
}

// contractCaddyfile is Caddyfile.example, the configuration the README and
// the issue's contract promise, with only what a test must change: the
// admin API and the site on free ports of 127.0.0.1, the store in storeDir,
// and Caddy's config not persisted.
func contractCaddyfile(t testing.TB, storeDir string) (string, gateway) {
	t.Helper()
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	g := gateway{
		admin: fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)),
	}
	port := gatewaytest.FreePort(t)
	g.site = fmt.Sprintf("http://127.0.0.1:%d", port)

	// The contract is the part before the commented reference.
	cf, _, _ := strings.Cut(string(raw), referenceBanner)
	cf = gatewaytest.ReplaceOnce(t, cf, "admin localhost:2019",
		"admin "+g.admin+"\n\tpersist_config off\n\tdefault_bind 127.0.0.1")
	cf = gatewaytest.ReplaceOnce(t, cf, "storage badger ./portcullis-data", fmt.Sprintf("storage badger %q", storeDir))
	cf = gatewaytest.ReplaceOnce(t, cf, "\n:8080 {", fmt.Sprintf("\n:%d {", port))
	return cf, g
}

// referenceBanner starts the commented reference in Caddyfile.example.
const referenceBanner = "# ======================== REFERENCE ========================"

// referenceCaddyfile is the commented reference of Caddyfile.example made
// live the way its instructions say: everything after the banner, with one
// leading "#" removed from every line.
func referenceCaddyfile(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(raw), referenceBanner+"\n")
	if !ok {
		t.Fatal("Caddyfile.example has no reference banner")
	}
	var b strings.Builder
	for _, line := range strings.Split(ref, "\n") {
		uncommented, ok := strings.CutPrefix(line, "#")
		if !ok && strings.TrimSpace(line) != "" {
			t.Fatalf("reference line %q is not commented out", line)
		}
		b.WriteString(uncommented)
		b.WriteString("\n")
	}
	return b.String()
}

// httpClient is the tests' client: bounded, no connection reuse surprises
// across gateway restarts.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

// call makes one request; body (if not nil) is sent as JSON.
func call(t testing.TB, method, url, token string, body any) answer {
	t.Helper()
	a, err := tryCall(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryCall is call for callers that expect transport errors (a killed
// gateway).
func tryCall(method, url, token string, body any) (answer, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect fails the test unless the answer has the status.
func expect(t testing.TB, a answer, status int, what string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", what, a.status, status, a.body)
	}
}

// issueToken makes (or rotates) a tenant's SCIM token through the admin API.
func issueToken(t testing.TB, g gateway, tenant string) string {
	t.Helper()
	a := call(t, http.MethodPost, "http://"+g.admin+"/portcullis/tenants/"+tenant+"/scim-token", "", nil)
	expect(t, a, http.StatusCreated, "issuing token")
	var resp struct {
		Token string `json:"token"`
	}
	a.json(t, &resp)
	if len(resp.Token) < 32 {
		t.Fatalf("token %q is too short", resp.Token)
	}
	return resp.Token
}

// scimUser is the part of a SCIM user the tests check.
type scimUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Active   bool   `json:"active"`
	Emails   []struct {
		Value string `json:"value"`
	} `json:"emails"`
	Meta struct {
		ResourceType string `json:"resourceType"`
		Location     string `json:"location"`
	} `json:"meta"`
}

// newUser is a SCIM user resource as IdPs send it.
func newUser(userName string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"active":   true,
		"name":     map[string]any{"givenName": "Test", "familyName": userName},
		"emails":   []map[string]any{{"value": userName + "@example.com", "type": "work", "primary": true}},
	}
}

// listResponse is a SCIM ListResponse of users.
type listResponse struct {
	TotalResults int        `json:"totalResults"`
	StartIndex   int        `json:"startIndex"`
	ItemsPerPage int        `json:"itemsPerPage"`
	Resources    []scimUser `json:"Resources"`
}

// eventsPage is one page of the admin API's events listing.
type eventsPage struct {
	Events []struct {
		ID         string    `json:"id"`
		Time       time.Time `json:"time"`
		Type       string    `json:"type"`
		Actor      string    `json:"actor"`
		ResourceID string    `json:"resourceId"`
	} `json:"events"`
	Next string `json:"next"`
}

func (p eventsPage) types() string {
	var ts []string
	for _, e := range p.Events {
		ts = append(ts, e.Type)
	}
	return strings.Join(ts, ",")
}
