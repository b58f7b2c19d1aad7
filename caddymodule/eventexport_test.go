package caddymodule

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
)

func TestCSVCellDefusesFormulas(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"},
		{"+1", "'+1"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"", ""},
		{"a=b", "a=b"},
	}
	for _, tt := range tests {
		if got := csvCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// scimAs makes one SCIM request with the given User-Agent.
func scimAs(t *testing.T, method, url, token, userAgent string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header}
}

// TestEventsExport lists events as JSON lines and CSV through the admin API
// and the CLI, with names next to ids, and refuses unknown types and
// formats.
func TestEventsExport(t *testing.T) {
	cf, g := contractCaddyfile(t, filepath.Join(t.TempDir(), "store"))
	gatewaytest.Load(t, cf)
	events := "http://" + g.admin + "/portcullis/tenants/acme/events"
	token := issueToken(t, g, "acme")
	for _, name := range []string{"alice@example.com", "=cmd|' /C calc'!A0"} {
		expect(t, scimAs(t, "POST", g.scimBase("acme")+"/Users", token, "Okta SCIM Client", newUser(name)), http.StatusCreated, "create "+name)
	}

	t.Run("jsonl", func(t *testing.T) {
		a := call(t, "GET", events+"?format=jsonl&type=user.created", "", nil)
		expect(t, a, http.StatusOK, "jsonl")
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/jsonl") {
			t.Errorf("Content-Type %q", ct)
		}
		lines := strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines: %s", len(lines), a.body)
		}
		var e storage.Event
		if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != storage.EventUserCreated || e.ResourceName != "alice@example.com" || e.ActorName != "Okta SCIM Client" || e.ResourceID == "" {
			t.Errorf("oldest user.created line: %+v", e)
		}
	})

	t.Run("csv", func(t *testing.T) {
		a := call(t, "GET", events+"?format=csv", "", nil)
		expect(t, a, http.StatusOK, "csv")
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q", ct)
		}
		rows, err := csv.NewReader(bytes.NewReader(a.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "id,time,type,actor,actorName,resourceType,resourceId,resourceName,before,after,reason" {
			t.Fatalf("header %v", rows[0])
		}
		// user.created ×2, token.created (the admin's)
		if len(rows) != 4 || rows[1][2] != storage.EventUserCreated || rows[1][7] != "'=cmd|' /C calc'!A0" || rows[1][4] != "Okta SCIM Client" {
			t.Errorf("rows %q", rows)
		}
		if a.header.Get("Link") != "" {
			t.Errorf("Link %q on the only page", a.header.Get("Link"))
		}
		a = call(t, "GET", events+"?format=csv&limit=1", "", nil)
		expect(t, a, http.StatusOK, "csv page")
		if link := a.header.Get("Link"); !strings.HasPrefix(link, "</portcullis/tenants/acme/events?") || !strings.Contains(link, "before=") || !strings.HasSuffix(link, `>; rel="next"`) {
			t.Errorf("Link %q", link)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		tests := []struct{ query, want string }{
			{"?type=user.create", `unknown event type \"user.create\"; valid types: user.created, user.jit_created`},
			{"?type=user.created,nope", `unknown event type \"nope\"`},
			{"?format=xml", `unknown format \"xml\"`},
		}
		for _, tt := range tests {
			a := call(t, "GET", events+tt.query, "", nil)
			expect(t, a, http.StatusBadRequest, tt.query)
			if !strings.Contains(string(a.body), tt.want) {
				t.Errorf("%s: %s does not say %s", tt.query, a.body, tt.want)
			}
		}
	})

	t.Run("CLI", func(t *testing.T) {
		_, stderr, err := gatewaytest.RunCLI(t, "portcullis", "events", "acme", "--type", "user.create", "--address", g.admin)
		if err == nil || !strings.Contains(stderr, `unknown event type "user.create"; valid types: `) || !strings.Contains(stderr, storage.EventAccessDenied) {
			t.Errorf("unknown type: err %v, stderr %s", err, stderr)
		}
		_, stderr, err = gatewaytest.RunCLI(t, "portcullis", "events", "acme", "--format", "xml", "--address", g.admin)
		if err == nil || !strings.Contains(stderr, "unknown --format") {
			t.Errorf("unknown format: err %v, stderr %s", err, stderr)
		}
		stdout, stderr, err := gatewaytest.RunCLI(t, "portcullis", "events", "acme", "--format", "csv", "--all", "--limit", "1", "--address", g.admin)
		if err != nil {
			t.Fatalf("events --format csv: %v\n%s", err, stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil || len(rows) != 4 || rows[0][0] != "id" || rows[3][2] != storage.EventTokenCreated {
			t.Errorf("CSV over three pages (one header): %v\n%s", err, stdout)
		}
		stdout, stderr, err = gatewaytest.RunCLI(t, "portcullis", "events", "acme", "--type", " user.created", "--address", g.admin)
		if err != nil || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"actorName":"Okta SCIM Client"`) {
			t.Errorf("jsonl: %v %s\n%s", err, stderr, stdout)
		}
	})
}
