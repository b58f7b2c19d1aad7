// Package demo owns the quick start (`go run ./cmd/demo`) apart from Caddy:
// its Caddyfile, the sample users of the development identity provider and
// the provider's registration of the gateway as a client, and the server of
// the sample legacy app. cmd/demo runs these with the gateway in one process.
//
// Like devidp, it is for local trial and tests only.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/demoapp"
	"github.com/portcullis/portcullis/devidp"
)

// shipped is demo/Caddyfile, the configuration the README walks through.
//
//go:embed Caddyfile
var shipped string

// The names the Caddyfile and the provider's client registration share.
const (
	Tenant   = "demo"
	ClientID = "portcullis-demo"
	// ClientSecretEnv is the environment variable the Caddyfile reads the
	// client secret from (`client_secret {env.PORTCULLIS_DEMO_CLIENT_SECRET}`).
	ClientSecretEnv = "PORTCULLIS_DEMO_CLIENT_SECRET"
	// Password is every sample user's password at the development provider
	// (its login form shows it).
	Password = "try-portcullis"
)

// The addresses in the shipped Caddyfile.
const (
	DefaultAdminAddr   = "localhost:2019"
	DefaultGatewayPort = 8080
	DefaultIdPAddr     = "localhost:9000"
	DefaultIssuer      = "http://localhost:9000"
	DefaultAppAddr     = "127.0.0.1:9001"
	DefaultDataDir     = "./portcullis-data"
)

// Users are the development provider's sample users. Their groups travel in
// the ID token's groups claim, which a tenant provisioned by SCIM (as the
// demo's is) ignores: there, groups are what SCIM says.
func Users() []devidp.User {
	return []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@example.com", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Liddell", Groups: []string{"Engineering"}, Password: Password},
		{Subject: "bob", PreferredUsername: "bob@example.com", Email: "bob@example.com", EmailVerified: true,
			Name: "Bob Marley", Groups: []string{"Admins"}, Password: Password},
		{Subject: "carol", PreferredUsername: "carol@example.com", Email: "carol@example.com", EmailVerified: true,
			Name: "Carol Danvers", Password: Password},
	}
}

// Settings are the addresses the Caddyfile names.
type Settings struct {
	AdminAddr   string // the admin API, e.g. "localhost:2019"
	GatewayPort int    // the site, bound to 127.0.0.1
	Issuer      string // the development provider
	AppAddr     string // the sample app
	DataDir     string // the Badger store
}

// DefaultSettings are those of the shipped Caddyfile.
func DefaultSettings() Settings {
	return Settings{
		AdminAddr: DefaultAdminAddr, GatewayPort: DefaultGatewayPort, Issuer: DefaultIssuer,
		AppAddr: DefaultAppAddr, DataDir: DefaultDataDir,
	}
}

// Caddyfile returns the shipped Caddyfile with s's addresses in place of the
// defaults; DefaultSettings gives it unchanged. Empty fields keep defaults.
func Caddyfile(s Settings) (string, error) {
	d := DefaultSettings()
	if s.AdminAddr == "" {
		s.AdminAddr = d.AdminAddr
	}
	if s.GatewayPort == 0 {
		s.GatewayPort = d.GatewayPort
	}
	if s.Issuer == "" {
		s.Issuer = d.Issuer
	}
	if s.AppAddr == "" {
		s.AppAddr = d.AppAddr
	}
	if s.DataDir == "" {
		s.DataDir = d.DataDir
	}
	if s.GatewayPort < 1 || s.GatewayPort > 65535 {
		return "", fmt.Errorf("demo: gateway port %d out of range", s.GatewayPort)
	}
	for _, v := range []string{s.AdminAddr, s.Issuer, s.AppAddr} {
		if strings.ContainsAny(v, " \t\r\n\"'{}#") {
			return "", fmt.Errorf("demo: %q cannot go into the Caddyfile", v)
		}
	}
	if strings.ContainsAny(s.DataDir, "\r\n") {
		return "", fmt.Errorf("demo: data directory %q has a line break", s.DataDir)
	}
	port := strconv.Itoa(s.GatewayPort)
	out := shipped
	for _, r := range []struct {
		old, new string
		once     bool
	}{
		{"admin " + d.AdminAddr, "admin " + s.AdminAddr, true},
		{"storage badger " + d.DataDir, "storage badger " + caddyfileToken(s.DataDir), true},
		{"\n:" + strconv.Itoa(d.GatewayPort) + " {", "\n:" + port + " {", true},
		{"localhost:" + strconv.Itoa(d.GatewayPort), "localhost:" + port, false},
		{d.Issuer, s.Issuer, false},
		{d.AppAddr, s.AppAddr, false},
	} {
		n := strings.Count(out, r.old)
		if n == 0 || (r.once && n != 1) {
			return "", fmt.Errorf("demo: the Caddyfile has %q %d times", r.old, n)
		}
		out = strings.ReplaceAll(out, r.old, r.new)
	}
	return out, nil
}

// caddyfileToken quotes v when the Caddyfile would otherwise split or
// interpret it.
func caddyfileToken(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"\\{}#") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// GatewayOrigins are the origins a browser may use for the gateway on port:
// the provider accepts the OIDC callback at each.
func GatewayOrigins(port int) []string {
	p := strconv.Itoa(port)
	return []string{"http://localhost:" + p, "http://127.0.0.1:" + p}
}

// StartIdP runs the development provider at addr with Users, and registers
// the gateway on gatewayPort as the client ClientID with secret.
func StartIdP(addr string, gatewayPort int, secret string) (*devidp.Provider, error) {
	if secret == "" {
		return nil, errors.New("demo: empty client secret")
	}
	p, err := devidp.Start(devidp.Config{Addr: addr, Users: Users()})
	if err != nil {
		return nil, err
	}
	var callbacks, afterLogout []string
	for _, o := range GatewayOrigins(gatewayPort) {
		callbacks = append(callbacks, o+"/sso/oidc/callback")
		afterLogout = append(afterLogout, o+"/")
	}
	p.AddClient(ClientID, secret, callbacks, afterLogout)
	return p, nil
}

// App is the sample legacy app, served on a loopback address: it trusts
// identity headers, so only the gateway may reach it.
type App struct {
	Addr string // host:port it listens on
	srv  *http.Server
	done chan struct{}
}

// StartApp serves demoapp on addr, which must be a loopback address.
func StartApp(addr string) (*App, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("demo: app address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("demo: app address %q is not a loopback address; the app trusts identity headers, so only the gateway may reach it", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: app: %w", err)
	}
	a := &App{
		Addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           demoapp.New(demoapp.Config{}),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ln)
	}()
	return a, nil
}

// Close stops the app.
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
	}
	<-a.done
}
