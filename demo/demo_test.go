package demo

import (
	"net/http"
	"strings"
	"testing"
)

func TestCaddyfileDefaultsAreShipped(t *testing.T) {
	got, err := Caddyfile(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	if got != shipped {
		t.Fatal("DefaultSettings changed the shipped Caddyfile")
	}
	if zero, err := Caddyfile(Settings{}); err != nil || zero != shipped {
		t.Fatalf("zero Settings: %v", err)
	}
	// The file names what cmd/demo registers at the provider.
	for _, want := range []string{
		"client_id " + ClientID, "client_secret {env." + ClientSecretEnv + "}",
		"tenant " + Tenant + " {", "handle /scim/v2/" + Tenant + "/*",
	} {
		if !strings.Contains(shipped, want) {
			t.Errorf("demo/Caddyfile lacks %q", want)
		}
	}
}

func TestCaddyfileSettings(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		want    []string
		notWant []string
		wantErr string
	}{
		{
			name: "test ports",
			s:    Settings{AdminAddr: "127.0.0.1:3001", GatewayPort: 3002, Issuer: "http://127.0.0.1:3003", AppAddr: "127.0.0.1:3004", DataDir: "/tmp/x/data"},
			want: []string{
				"admin 127.0.0.1:3001\n", "\n:3002 {", "issuer http://127.0.0.1:3003\n", "reverse_proxy 127.0.0.1:3004\n",
				"storage badger /tmp/x/data\n", "post_logout_redirect http://localhost:3002/\n",
			},
			notWant: []string{"2019", "8080", "9000", "9001", "portcullis-data"},
		},
		{
			name: "data dir with a space is quoted",
			s:    Settings{DataDir: `/tmp/my "data"`},
			want: []string{`storage badger "/tmp/my \"data\""` + "\n"},
		},
		{name: "port out of range", s: Settings{GatewayPort: 70000}, wantErr: "out of range"},
		{name: "issuer with a brace", s: Settings{Issuer: "http://x/{y}"}, wantErr: "cannot go into"},
		{name: "admin with a space", s: Settings{AdminAddr: "a b"}, wantErr: "cannot go into"},
		{name: "data dir with a newline", s: Settings{DataDir: "a\n}"}, wantErr: "line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Caddyfile(tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("still has %q", w)
				}
			}
		})
	}
}

func TestStartApp(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "example.com:0", "nope"} {
		if a, err := StartApp(addr); err == nil {
			a.Close()
			t.Errorf("StartApp(%q) served", addr)
		}
	}
	a, err := StartApp("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	resp, err := http.Get("http://" + a.Addr + "/whoami.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestStartIdP(t *testing.T) {
	if _, err := StartIdP("127.0.0.1:0", 8080, ""); err == nil {
		t.Fatal("started without a client secret")
	}
	p, err := StartIdP("127.0.0.1:0", 8080, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery status %d", resp.StatusCode)
	}
}
