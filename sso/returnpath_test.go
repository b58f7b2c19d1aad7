package sso

import (
	"net/url"
	"strings"
	"testing"
)

func TestSanitizeReturnPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/app", "/app"},
		{"/app/page?x=1&y=a%2Fb", "/app/page?x=1&y=a%2Fb"},
		{"/a%20b", "/a%20b"},
		{"/app#frag", "/app"},
		{"/path?next=//evil.example", "/path?next=//evil.example"},
		{"", "/"},
		{"app", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{`/\evil.example`, "/"},
		{`\/evil.example`, "/"},
		{`/\/evil.example`, "/"},
		{"https://evil.example/", "/"},
		{"HTTPS://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"data:text/html,x", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%252F%252Fevil.example", "/"},
		{"/%25252F%25252Fevil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/a%0d%0aSet-Cookie:x=1", "/"},
		{"/%zz", "/"},
		{"/" + strings.Repeat("a", maxReturnPathLen), "/"},
		{"/ok/%E2%9C%93", "/ok/%E2%9C%93"},
	} {
		if got := SanitizeReturnPath(tc.in); got != tc.want {
			t.Errorf("SanitizeReturnPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginURL(t *testing.T) {
	s := &Service{}
	for _, tc := range []struct{ prefix, rd, want string }{
		{"/sso", "/app?x=1", "/sso/login?rd=%2Fapp%3Fx%3D1"},
		{"/sso/", "//evil", "/sso/login?rd=%2F"},
	} {
		if got := s.LoginURL(tc.prefix, tc.rd); got != tc.want {
			t.Errorf("LoginURL(%q, %q) = %q, want %q", tc.prefix, tc.rd, got, tc.want)
		}
	}
}

// FuzzReturnPath: whatever comes in, what comes out stays on this origin,
// whether a browser resolves it directly or a backend decodes it once more.
func FuzzReturnPath(f *testing.F) {
	for _, s := range []string{
		"/", "/app?x=1", "//evil.example", `/\evil`, "https://evil.example", "/%2F%2Fevil",
		"/%252F%252Fevil", "/\t/evil", "/a%0d%0ab", "javascript:x", "/ok#frag", "/%zz", "/..//evil",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example/some/page")
	f.Fuzz(func(t *testing.T, in string) {
		out := SanitizeReturnPath(in)
		if out == "/" {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\t\r\n") {
			t.Fatalf("unsafe output %.200q for %.200q", out, in)
		}
		if again := SanitizeReturnPath(out); again != out {
			t.Fatalf("not idempotent: %.200q -> %.200q -> %.200q", in, out, again)
		}
		for layer, i := out, 0; i < 3; i++ {
			u, err := url.Parse(layer)
			if err != nil {
				break
			}
			if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
				t.Fatalf("%.200q (from %.200q) resolves to %s", layer, in, r)
			}
			next, err := url.PathUnescape(layer)
			if err != nil || next == layer {
				break
			}
			layer = next
		}
	})
}
