package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltinPages: every kind renders with its words, the links given,
// the user and the reference, and escapes what it shows.
func TestBuiltinPages(t *testing.T) {
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			rec := httptest.NewRecorder()
			Default().Write(rec, Data{Kind: k, Status: 403, User: &User{Name: "<ada>", Email: "ada@example.com"}, SignedIn: true,
				Reference: "ev1", AppURL: "/app", SignOutURL: "/sso/logout", SignInURL: "/sso/login?rd=%2Fapp"})
			body := rec.Body.String()
			for _, want := range []string{texts[k].title, "&lt;ada&gt;", "ada@example.com", `<code id="reference">ev1</code>`,
				`href="/app"`, `href="/sso/logout"`, `href="/sso/login?rd=%2Fapp"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "<ada>") {
				t.Error("user name not escaped")
			}
			if rec.Code != 403 || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("status %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestBuiltinCSP: the policy allows the one stylesheet the page carries,
// by its hash, and nothing else (no external resource, no script).
func TestBuiltinCSP(t *testing.T) {
	body, csp := Default().Render(Data{Kind: AccessDenied, Status: 403})
	html := string(body)
	start := strings.Index(html, "<style>") + len("<style>")
	end := strings.Index(html, "</style>")
	sum := sha256.Sum256([]byte(html[start:end]))
	if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
		t.Fatalf("CSP %q does not allow the page's stylesheet (%s)", csp, want)
	}
	if !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, bad := range []string{"http://", "https://", "<script", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("page refers to %q", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
		kind    Kind
		want    string
	}{
		{"one kind replaced", map[string]string{"access_denied.html": `<p>Nope, {{.User.Label}} ({{.Reference}})</p>`},
			"", AccessDenied, "<p>Nope, Ada (r1)</p>"},
		{"other kinds keep the built-in page", map[string]string{"access_denied.html": `x`},
			"", SignedOut, "You are signed out"},
		{"page.html for every kind", map[string]string{"page.html": `<h1>{{.Title}}</h1><style>{{.CSS}}</style>`},
			"", SignedOut, "<h1>You are signed out</h1>"},
		{"a kind's file wins over page.html", map[string]string{"page.html": `all`, "signed_out.html": `bye`},
			"", SignedOut, "bye"},
		{"unknown name", map[string]string{"acces_denied.html": `x`}, "not a page name", "", ""},
		{"parse error", map[string]string{"signed_out.html": `{{.Title`}, "signed_out.html", "", ""},
		{"unknown field", map[string]string{"signed_out.html": `{{.Nope}}`}, "template for signed_out", "", ""},
		{"empty directory", map[string]string{"README.txt": `x`}, "holds no page template", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(write(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := s.Render(Data{Kind: tc.kind, Status: 403, User: &User{DisplayName: "Ada"}, Reference: "r1"})
			if !strings.Contains(string(body), tc.want) {
				t.Fatalf("page = %s, want %q", body, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
}

// TestCustomTemplateFailureFallsBack: a template that fails at run time
// (here: .User is nil) gives the built-in page, never an empty answer.
func TestCustomTemplateFailureFallsBack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "access_denied.html"), []byte(`{{.User.Label}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := s.Render(Data{Kind: AccessDenied, Status: 403})
	if !strings.Contains(string(body), "Access denied") {
		t.Fatalf("page = %s", body)
	}
}
