package caddymodule

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

func TestConsoleDirective(t *testing.T) {
	tests := []struct {
		name    string
		site    string
		want    string // the console handler's JSON
		wantErr string
	}{
		{
			name: "behind identity",
			site: "handle /portcullis/* {\n identity corp {\n require admin\n }\n portcullis_console /portcullis {\n tenants acme globex\n }\n}",
			want: `{"handler":"portcullis_console","prefix":"/portcullis","tenants":["acme","globex"]}`,
		},
		{
			name: "default prefix",
			site: "handle /portcullis/* {\n portcullis_console {\n tenants acme\n }\n}",
			want: `{"handler":"portcullis_console","tenants":["acme"]}`,
		},
		{
			name: "logout_url",
			site: "handle /portcullis/* {\n portcullis_console {\n tenants acme\n logout_url /auth/logout\n }\n}",
			want: `{"handler":"portcullis_console","logout_url":"/auth/logout","tenants":["acme"]}`,
		},
		{name: "logout_url twice", site: "portcullis_console /ops {\n tenants acme\n logout_url /a\n logout_url /b\n}", wantErr: "logout_url takes one path"},
		{name: "no tenants", site: "portcullis_console /ops", wantErr: "needs the tenants it manages"},
		{name: "empty tenants", site: "portcullis_console /ops {\n tenants\n}", wantErr: "at least one tenant"},
		{name: "tenant as argument", site: "portcullis_console acme", wantErr: "is not a path prefix"},
		{name: "bad prefix", site: "portcullis_console //x {\n tenants acme\n}", wantErr: "prefix"},
		{name: "unknown option", site: "portcullis_console /ops {\n require admin\n}", wantErr: `unrecognized option "require"`},
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
			if got := findHandler(t, raw, "portcullis_console"); got != tt.want {
				t.Errorf("handler =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestConsoleDirectiveOrder: the console comes after identity in a route
// written in any order, so the gate runs first.
func TestConsoleDirectiveOrder(t *testing.T) {
	raw := gatewaytest.Adapt(t, ":8080 {\n portcullis_console /portcullis {\n tenants acme\n }\n identity acme {\n require admin\n }\n}\n")
	s := string(raw)
	i, c := strings.Index(s, `"handler":"portcullis_identity"`), strings.Index(s, `"handler":"portcullis_console"`)
	if i < 0 || c < 0 || c < i {
		t.Fatalf("identity at %d, console at %d in\n%s", i, c, s)
	}
}
