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
			name:    "badger with a key encryption key",
			options: "portcullis {\n storage badger ./data {\n key_encryption_key {env.PORTCULLIS_KEY}\n }\n}",
			want:    `{"storage":{"backend":"badger","dir":"./data","key_encryption_key":"{env.PORTCULLIS_KEY}"}}`,
		},
		{
			name:    "tenant with empty block",
			options: "portcullis {\n tenant acme {\n }\n}",
			want:    `{"tenants":[{"name":"acme"}]}`,
		},
		{
			name: "tenant with oidc, roles and every option",
			options: `portcullis {
				tenant acme {
					oidc {
						issuer https://login.example.com
						client_id gw
						client_secret {env.OIDC_SECRET}
						scopes openid email profile groups
						groups_claim roles
						email_claim mail
						name_claim display
						username_claim upn
						post_logout_redirect https://app.example.com/
						trust_email_without_verified_claim
					}
					allowed_domains acme.com, acme.de
					provisioning jit
					session {
						cookie_name acme_session
						absolute_timeout 8h
						idle_timeout 30m
					}
					external_url https://app.example.com/
					roles viewer editor admin
					map_group "Engineering" editor
					map_group "R&D, Europe" admin
					default_role viewer
					require_mapped_group
					assertion {
						issuer https://app.example.com/portcullis/acme
						ttl 2m
					}
				}
			}`,
			want: `{"tenants":[{"name":"acme","oidc":{"issuer":"https://login.example.com","client_id":"gw","client_secret":"{env.OIDC_SECRET}","scopes":["openid","email","profile","groups"],"groups_claim":"roles","email_claim":"mail","name_claim":"display","username_claim":"upn","post_logout_redirect":"https://app.example.com/","trust_email_without_verified_claim":true},"allowed_domains":["acme.com","acme.de"],"provisioning":"jit","session":{"cookie_name":"acme_session","absolute_timeout":28800000000000,"idle_timeout":1800000000000},"external_url":"https://app.example.com/","roles":["viewer","editor","admin"],"group_mappings":[{"group":"Engineering","role":"editor"},{"group":"R\u0026D, Europe","role":"admin"}],"default_role":"viewer","require_mapped_group":true,"assertion":{"issuer":"https://app.example.com/portcullis/acme","ttl":120000000000}}]}`,
		},
		{
			name: "tenant with saml",
			options: `portcullis {
				tenant globex {
					saml {
						idp_metadata_url https://idp.example.com/metadata
						metadata_refresh 1h
						entity_id https://globex.example.com/sso/saml/metadata
						sp_key /etc/portcullis/sp.key
						sp_cert /etc/portcullis/sp.crt
						name_id_format email
						email_attribute mail
						name_attribute displayName
						groups_attribute memberOf
						sign_authn_requests
						allow_encrypted_assertions
					}
					session {
						idle_timeout off
					}
				}
			}`,
			want: `{"tenants":[{"name":"globex","saml":{"idp_metadata_url":"https://idp.example.com/metadata","metadata_refresh":3600000000000,"entity_id":"https://globex.example.com/sso/saml/metadata","sp_key_file":"/etc/portcullis/sp.key","sp_cert_file":"/etc/portcullis/sp.crt","name_id_format":"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress","email_attribute":"mail","name_attribute":"displayName","groups_attribute":"memberOf","sign_authn_requests":true,"allow_encrypted_assertions":true},"session":{"idle_timeout":-1}}]}`,
		},
		{
			name: "saml idp by hand",
			options: `portcullis {
				tenant globex {
					saml {
						idp_entity_id https://idp.example.com
						idp_sso_url https://idp.example.com/sso
						idp_slo_url https://idp.example.com/slo
						idp_certificate idp.pem
						entity_id urn:globex:gateway
						name_id_format urn:oasis:names:tc:SAML:2.0:nameid-format:persistent
					}
				}
			}`,
			want: `{"tenants":[{"name":"globex","saml":{"idp_entity_id":"https://idp.example.com","idp_sso_url":"https://idp.example.com/sso","idp_slo_url":"https://idp.example.com/slo","idp_certificate_file":"idp.pem","entity_id":"urn:globex:gateway","name_id_format":"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"}}]}`,
		},
		{
			name:    "oidc and saml",
			options: "portcullis {\n tenant acme {\n oidc {\n issuer https://a\n client_id b\n }\n saml {\n idp_metadata_file x\n entity_id y\n }\n }\n}",
			wantErr: "configure oidc or saml, not both",
		},
		{
			name:    "oidc without client_id",
			options: "portcullis {\n tenant acme {\n oidc {\n issuer https://a\n }\n }\n}",
			wantErr: "oidc needs issuer and client_id",
		},
		{
			name:    "unknown oidc option",
			options: "portcullis {\n tenant acme {\n oidc {\n issuer https://a\n client_id b\n secret c\n }\n }\n}",
			wantErr: `unrecognized oidc option "secret"`,
		},
		{
			name:    "saml without entity_id",
			options: "portcullis {\n tenant acme {\n saml {\n idp_metadata_url https://idp/md\n }\n }\n}",
			wantErr: "saml needs entity_id",
		},
		{
			name:    "unknown name_id_format",
			options: "portcullis {\n tenant acme {\n saml {\n entity_id x\n name_id_format kerberos\n }\n }\n}",
			wantErr: `name_id_format "kerberos"`,
		},
		{
			name: "tenant with audit retention",
			options: `portcullis {
				tenant acme {
					audit_retention 90d
					audit_max_events 50000
				}
			}`,
			want: `{"tenants":[{"name":"acme","audit_retention":7776000000000000,"audit_max_events":50000}]}`,
		},
		{
			name:    "audit_retention in hours",
			options: "portcullis {\n tenant acme {\n audit_retention 48h\n }\n}",
			want:    `{"tenants":[{"name":"acme","audit_retention":172800000000000}]}`,
		},
		{
			name:    "zero audit_retention",
			options: "portcullis {\n tenant acme {\n audit_retention 0d\n }\n}",
			wantErr: "must be positive",
		},
		{
			name:    "bad audit_max_events",
			options: "portcullis {\n tenant acme {\n audit_max_events lots\n }\n}",
			wantErr: `audit_max_events "lots": want a positive whole number`,
		},
		{
			name:    "zero audit_max_events",
			options: "portcullis {\n tenant acme {\n audit_max_events 0\n }\n}",
			wantErr: `audit_max_events "0": want a positive whole number`,
		},
		{
			name:    "bad provisioning",
			options: "portcullis {\n tenant acme {\n provisioning ldap\n }\n}",
			wantErr: `provisioning "ldap": use scim or jit`,
		},
		{
			name:    "bad duration",
			options: "portcullis {\n tenant acme {\n session {\n idle_timeout soon\n }\n }\n}",
			wantErr: `idle_timeout "soon"`,
		},
		{
			name:    "negative duration",
			options: "portcullis {\n tenant acme {\n assertion {\n ttl -5s\n }\n }\n}",
			wantErr: "must be positive",
		},
		{
			name:    "external_url with a path",
			options: "portcullis {\n tenant acme {\n external_url https://app.example.com/app\n }\n}",
			wantErr: "must be only a scheme and host",
		},
		{
			name:    "map_group without role",
			options: "portcullis {\n tenant acme {\n map_group Engineering\n }\n}",
			wantErr: "map_group needs a group and a role",
		},
		{
			name:    "roles twice",
			options: "portcullis {\n tenant acme {\n roles a b\n roles c\n }\n}",
			wantErr: "roles is set twice",
		},
		{
			name:    "flag with a value",
			options: "portcullis {\n tenant acme {\n require_mapped_group yes\n }\n}",
			wantErr: `require_mapped_group takes no value`,
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
			options: "portcullis {\n storage mysql db\n}",
			wantErr: "portcullis.storage.mysql",
		},
		{
			name:    "badger with two dirs",
			options: "portcullis {\n storage badger a b\n}",
			wantErr: "wrong argument count",
		},
		{
			name:    "badger unknown option",
			options: "portcullis {\n storage badger a {\n compression on\n }\n}",
			wantErr: `unrecognized storage badger option "compression"`,
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

func TestHandlerDirectives(t *testing.T) {
	tests := []struct {
		name    string
		site    string
		handler string
		want    string // the handler's JSON
		wantErr string
	}{
		{
			name:    "sso",
			site:    "handle /sso/* {\n sso acme\n}",
			handler: "portcullis_sso",
			want:    `{"handler":"portcullis_sso","tenant":"acme"}`,
		},
		{
			name:    "sso with prefix",
			site:    "handle /auth/* {\n sso acme /auth\n}",
			handler: "portcullis_sso",
			want:    `{"handler":"portcullis_sso","prefix":"/auth","tenant":"acme"}`,
		},
		{name: "sso without tenant", site: "sso", wantErr: "sso needs the tenant name"},
		{name: "sso with a relative prefix", site: "sso acme auth", wantErr: `"auth" is not a path`},
		{name: "sso at the root", site: "sso acme /", wantErr: "cannot be the root"},
		{name: "sso with a block", site: "sso acme {\n prefix /x\n}", wantErr: "sso takes no block"},
		{
			name:    "identity_jwks",
			site:    "handle /.well-known/portcullis/acme/jwks.json {\n identity_jwks acme\n}",
			handler: "portcullis_identity_jwks",
			want:    `{"handler":"portcullis_identity_jwks","tenant":"acme"}`,
		},
		{name: "identity_jwks with two tenants", site: "identity_jwks acme globex", wantErr: "wrong argument count"},
		{
			name:    "identity, signed-in only",
			site:    "identity acme",
			handler: "portcullis_identity",
			want:    `{"handler":"portcullis_identity","tenant":"acme"}`,
		},
		{
			name: "identity with every option",
			site: `identity /app/* acme {
				require editor
				allow_groups "Engineering" "R&D, Europe"
				assertion_audience my-app
				header_prefix X-Auth-
				header_user X-Auth-Login
				header_email X-Mail
				header_name X-Auth-Full-Name
				header_groups X-Auth-Teams
				header_role X-Auth-Level
				header_assertion X-Auth-JWT
				login_prefix /auth
			}`,
			handler: "portcullis_identity",
			want:    `{"allow_groups":["Engineering","R\u0026D, Europe"],"assertion_audience":"my-app","handler":"portcullis_identity","header_assertion":"X-Auth-JWT","header_email":"X-Mail","header_groups":"X-Auth-Teams","header_name":"X-Auth-Full-Name","header_prefix":"X-Auth-","header_role":"X-Auth-Level","header_user":"X-Auth-Login","login_prefix":"/auth","require":"editor","tenant":"acme"}`,
		},
		{
			name:    "identity public",
			site:    "identity acme {\n public\n}",
			handler: "portcullis_identity",
			want:    `{"handler":"portcullis_identity","public":true,"tenant":"acme"}`,
		},
		{name: "identity public and require", site: "identity acme {\n public\n require admin\n}", wantErr: "a public route cannot also require"},
		{name: "identity policy as argument", site: "identity acme editor", wantErr: "the policy goes in a block"},
		{name: "identity require twice", site: "identity acme {\n require a\n require b\n}", wantErr: "require is set twice"},
		{name: "identity allow_groups empty", site: "identity acme {\n allow_groups\n}", wantErr: "allow_groups needs at least one group"},
		{name: "identity unknown option", site: "identity acme {\n roles admin\n}", wantErr: `unrecognized option "roles"`},
		{name: "identity bad login_prefix", site: "identity acme {\n login_prefix sso\n}", wantErr: `"sso" is not a path`},
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
			if got := findHandler(t, raw, tt.handler); got != tt.want {
				t.Errorf("%s handler =\n%s\nwant\n%s", tt.handler, got, tt.want)
			}
		})
	}
}

// TestDirectiveOrder checks where the directives land among Caddy's own
// when they stand side by side at site level: the endpoints (scim, sso,
// identity_jwks) answer their own paths before identity sees the request,
// so identity never guards them; identity runs before header, rewrite,
// request_header, handle blocks and the terminal handlers, so they can use
// its placeholders and nothing reaches them unauthenticated.
func TestDirectiveOrder(t *testing.T) {
	raw := gatewaytest.Adapt(t, `:8080 {
		file_server /static/*
		reverse_proxy 127.0.0.1:9
		handle /x {
			respond "x"
		}
		identity acme
		sso acme
		request_header X-User {http.auth.user.id}
		rewrite * /app{uri}
		header X-Served-For {portcullis.user.name}
		identity_jwks /jwks.json acme
		scim acme
	}`)
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Handler string `json:"handler"`
							Routes  []struct {
								Handle []struct {
									Handler string `json:"handler"`
								} `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, h := range r.Handle {
				if h.Handler != "subroute" {
					order = append(order, h.Handler)
					continue
				}
				for _, sr := range h.Routes {
					for _, sh := range sr.Handle {
						order = append(order, sh.Handler)
					}
				}
			}
		}
	}
	got := strings.Join(order, " ")
	want := "portcullis_scim portcullis_sso portcullis_identity_jwks portcullis_identity headers rewrite headers static_response reverse_proxy file_server"
	if got != want {
		t.Fatalf("handler order %q, want %q", got, want)
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
			want: `{"handler":"portcullis_scim","tenant":"acme"}`,
		},
		{
			name: "at site level with a matcher",
			site: "scim /scim/v2/acme/* acme",
			want: `{"handler":"portcullis_scim","tenant":"acme"}`,
		},
		{
			name: "base_url",
			site: "scim acme {\n base_url https://id.example.com/scim/v2/acme\n}",
			want: `{"base_url":"https://id.example.com/scim/v2/acme","handler":"portcullis_scim","tenant":"acme"}`,
		},
		{name: "no tenant", site: "scim", wantErr: "scim needs the tenant name"},
		{
			name: "with a prefix",
			site: "scim acme /idp/scim",
			want: `{"handler":"portcullis_scim","prefix":"/idp/scim","tenant":"acme"}`,
		},
		{name: "two tenants", site: "scim acme globex", wantErr: `prefix "globex" is not a path`},
		{name: "too many arguments", site: "scim acme /idp/scim /x", wantErr: "wrong argument count"},
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
			got := findHandler(t, raw, "portcullis_scim")
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
