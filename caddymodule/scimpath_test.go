package caddymodule

import (
	"strings"
	"testing"
)

// TestSCIMBasePath checks which base path a scim handler answers under:
// its prefix, else the path of its base_url, else /scim/v2/<tenant>.
func TestSCIMBasePath(t *testing.T) {
	tests := []struct {
		name, prefix, baseURL string
		want                  string
		wantErr               string
	}{
		{name: "default", want: "/scim/v2/acme"},
		{name: "base_url", baseURL: "https://id.example.com/idp/scim/", want: "/idp/scim"},
		{name: "base_url at the root", baseURL: "https://scim.example.com", want: ""},
		{name: "prefix", prefix: "/idp/scim/", want: "/idp/scim"},
		{name: "prefix wins over base_url", prefix: "/inner", baseURL: "https://id.example.com/outer", want: "/inner"},
		{name: "relative prefix", prefix: "idp", wantErr: `prefix "idp" is not a path`},
		{name: "prefix with a wildcard", prefix: "/scim/*", wantErr: "is not a path"},
		{name: "prefix with two slashes", prefix: "//host/scim", wantErr: "is not a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scimBasePath("acme", tt.prefix, tt.baseURL)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("scimBasePath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestUnderSCIMBase checks which requests the scim handler answers and
// which it passes on: the base path and below, compared as Caddy's path
// matchers compare.
func TestUnderSCIMBase(t *testing.T) {
	tests := []struct {
		path, base string
		want       bool
	}{
		{"/scim/v2/acme", "/scim/v2/acme", true},
		{"/scim/v2/acme/", "/scim/v2/acme", true},
		{"/scim/v2/acme/Users/42", "/scim/v2/acme", true},
		{"/SCIM/V2/ACME/Users", "/scim/v2/acme", true},
		{"//scim/v2//acme/Users", "/scim/v2/acme", true},
		{"/scim/v2/acme2/Users", "/scim/v2/acme", false},
		{"/scim/v2/globex/Users", "/scim/v2/acme", false},
		{"/scim/v2/acme/../globex/Users", "/scim/v2/acme", false},
		{"/scim/v2", "/scim/v2/acme", false},
		{"/app/page", "/scim/v2/acme", false},
		{"/", "/scim/v2/acme", false},
		{"/anything", "", true},
	}
	for _, tt := range tests {
		if got := underSCIMBase(tt.path, tt.base); got != tt.want {
			t.Errorf("underSCIMBase(%q, %q) = %v, want %v", tt.path, tt.base, got, tt.want)
		}
	}
}
