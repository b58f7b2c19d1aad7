package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// adaptedApps adapts a Caddyfile and returns its apps.
func adaptedApps(t *testing.T, caddyfile string) (map[string]json.RawMessage, error) {
	t.Helper()
	raw, err := gatewaytest.AdaptErr(caddyfile)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps, nil
}

func TestGlobalOption(t *testing.T) {
	tests := []struct {
		name    string
		options string
		want    string // the portcullis app's JSON
		wantErr string
	}{
		{
			name:    "contract",
			options: "portcullis {\n storage badger ./portcullis-data\n tenant acme\n tenant globex\n}",
			want:    `{"storage":{"backend":"badger","dir":"./portcullis-data"},"tenants":[{"name":"acme"},{"name":"globex"}]}`,
		},
		{
			name:    "default storage",
			options: "portcullis {\n tenant acme\n}",
			want:    `{"tenants":[{"name":"acme"}]}`,
		},
		{
			name:    "badger without dir",
			options: "portcullis {\n storage badger\n}",
			want:    `{"storage":{"backend":"badger"}}`,
		},
		{
			name:    "tenant with empty block",
			options: "portcullis {\n tenant acme {\n }\n}",
			want:    `{"tenants":[{"name":"acme"}]}`,
		},
		{
			name:    "unknown tenant option",
			options: "portcullis {\n tenant acme {\n sso okta\n }\n}",
			wantErr: `tenant acme: unrecognized option "sso"`,
		},
		{
			name:    "duplicate tenant",
			options: "portcullis {\n tenant acme\n tenant acme\n}",
			wantErr: `tenant "acme" is configured twice`,
		},
		{
			name:    "tenant name with slash",
			options: "portcullis {\n tenant ../etc\n}",
			wantErr: `invalid tenant name "../etc"`,
		},
		{
			name:    "upper-case tenant name",
			options: "portcullis {\n tenant Acme\n}",
			wantErr: `invalid tenant name "Acme"`,
		},
		{
			name:    "tenant without name",
			options: "portcullis {\n tenant\n}",
			wantErr: "tenant needs a name",
		},
		{
			name:    "unknown backend",
			options: "portcullis {\n storage postgres db\n}",
			wantErr: "portcullis.storage.postgres",
		},
		{
			name:    "badger with two dirs",
			options: "portcullis {\n storage badger a b\n}",
			wantErr: "wrong argument count",
		},
		{
			name:    "storage twice",
			options: "portcullis {\n storage badger a\n storage badger b\n}",
			wantErr: "storage is set twice",
		},
		{
			name:    "unknown option",
			options: "portcullis {\n tenants acme\n}",
			wantErr: `unrecognized portcullis option "tenants"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := adaptedApps(t, "{\n"+tt.options+"\n}\n")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(apps["portcullis"]); got != tt.want {
				t.Errorf("portcullis app =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSCIMDirective(t *testing.T) {
	tests := []struct {
		name    string
		site    string
		want    string // the scim handler's JSON
		wantErr string
	}{
		{
			name: "in a route",
			site: "route /scim/v2/acme/* {\n scim acme\n}",
			want: `{"handler":"scim","tenant":"acme"}`,
		},
		{
			name: "at site level with a matcher",
			site: "scim /scim/v2/acme/* acme",
			want: `{"handler":"scim","tenant":"acme"}`,
		},
		{
			name: "base_url",
			site: "scim acme {\n base_url https://id.example.com/scim/v2/acme\n}",
			want: `{"base_url":"https://id.example.com/scim/v2/acme","handler":"scim","tenant":"acme"}`,
		},
		{name: "no tenant", site: "scim", wantErr: "scim needs the tenant name"},
		{name: "two tenants", site: "scim acme globex", wantErr: "wrong argument count"},
		{name: "unknown option", site: "scim acme {\n token x\n}", wantErr: `unrecognized option "token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := gatewaytest.AdaptErr(":8080 {\n" + tt.site + "\n}\n")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := findHandler(t, raw, "scim")
			if got != tt.want {
				t.Errorf("scim handler =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// findHandler returns the JSON of the first handler named name anywhere in
// the config (routes nest through subroutes).
func findHandler(t *testing.T, raw []byte, name string) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any) string
	walk = func(v any) string {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == name {
				b, _ := json.Marshal(v)
				return string(b)
			}
			for _, c := range v {
				if s := walk(c); s != "" {
					return s
				}
			}
		case []any:
			for _, c := range v {
				if s := walk(c); s != "" {
					return s
				}
			}
		}
		return ""
	}
	s := walk(doc)
	if s == "" {
		t.Fatalf("no %s handler in config:\n%s", name, raw)
	}
	return s
}
