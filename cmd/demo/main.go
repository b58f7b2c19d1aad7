// Command demo is the quick start: `go run ./cmd/demo` runs, in this one
// process and with nothing but Go, a development OpenID provider with sample
// users (http://localhost:9000), a sample legacy app that shows the identity
// headers it receives (127.0.0.1:9001), and the Portcullis gateway (Caddy
// with the standard modules and ours) configured by demo/Caddyfile: SCIM,
// sign-in at the development provider, roles from groups, and the app behind
// it on http://localhost:8080. The README walks through it.
//
// It is for local trial only. The development provider is part of this
// command and never of the gateway binary (cmd/caddy).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	// The Caddyfile adapter registers itself from this package.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/portcullis/portcullis/caddymodule"
	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/devidp"
)

// options are the command's flags.
type options struct {
	gatewayPort int
	adminAddr   string
	idpAddr     string
	appAddr     string
	dataDir     string
}

func main() {
	var o options
	flag.IntVar(&o.gatewayPort, "port", demo.DefaultGatewayPort, "gateway port (on 127.0.0.1)")
	flag.StringVar(&o.adminAddr, "admin", demo.DefaultAdminAddr, "Caddy admin API address")
	flag.StringVar(&o.idpAddr, "idp", demo.DefaultIdPAddr, "development identity provider address (loopback only); the issuer is http://<this>")
	flag.StringVar(&o.appAddr, "app", demo.DefaultAppAddr, "sample app address (loopback only)")
	flag.StringVar(&o.dataDir, "data", demo.DefaultDataDir, "gateway data directory")
	flag.Parse()

	d, err := start(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			fmt.Fprintln(os.Stderr, "demo: is another demo or Caddy running? Stop it, or pick other addresses with -port, -admin, -idp and -app.")
		}
		os.Exit(1)
	}
	d.printNextSteps(os.Stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	fmt.Fprintln(os.Stderr, "demo: stopping")
	if err := d.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// running is a started demo.
type running struct {
	idp      *devidp.Provider
	app      *demo.App
	settings demo.Settings
}

// start runs the provider, the app and the gateway, in that order: the
// gateway discovers the provider when it loads its configuration.
func start(o options) (*running, error) {
	secret := os.Getenv(demo.ClientSecretEnv)
	if secret == "" {
		// A fresh secret per run, handed to the Caddyfile through the
		// environment as a real deployment would.
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		secret = hex.EncodeToString(b[:])
		if err := os.Setenv(demo.ClientSecretEnv, secret); err != nil {
			return nil, err
		}
	}
	idp, err := demo.StartIdP(o.idpAddr, o.gatewayPort, secret)
	if err != nil {
		return nil, fmt.Errorf("development identity provider: %w", err)
	}
	app, err := demo.StartApp(o.appAddr)
	if err != nil {
		idp.Close()
		return nil, err
	}
	d := &running{idp: idp, app: app, settings: demo.Settings{
		AdminAddr: o.adminAddr, GatewayPort: o.gatewayPort, Issuer: idp.Issuer,
		AppAddr: app.Addr, DataDir: o.dataDir,
	}}
	if err := d.loadGateway(); err != nil {
		app.Close()
		idp.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return d, nil
}

func (d *running) loadGateway() error {
	caddyfile, err := demo.Caddyfile(d.settings)
	if err != nil {
		return err
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return errors.New("the caddyfile adapter is not registered")
	}
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "demo/Caddyfile"})
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "demo/Caddyfile: %s\n", w.String())
	}
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// stop ends the gateway (its apps, then its admin endpoint, which
// caddy.Stop leaves running), the app and the provider. The empty config
// is not persisted, so the user's autosave.json stays as it was.
func (d *running) stop() error {
	err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true)
	err = errors.Join(err, caddy.Stop())
	d.app.Close()
	d.idp.Close()
	return err
}

func (d *running) gatewayURL() string {
	return "http://localhost:" + strconv.Itoa(d.settings.GatewayPort)
}

func (d *running) printNextSteps(w io.Writer) {
	gw := d.gatewayURL()
	admin := "http://" + d.settings.AdminAddr
	users := demo.Users()
	fmt.Fprintf(w, `
Portcullis demo is running. Stop it with Ctrl-C.

  The app, through the gateway   %[1]s/
  Development identity provider  %[2]s   (for local trial only)
      sample users: %[3]s, %[4]s, %[5]s
      password:     %[6]s
  Caddy admin API                %[7]s
  SCIM base URL                  %[1]s/scim/v2/%[8]s
  Data                           %[9]s

Next steps (the README's quick start has them all, ready to copy):
  1. Make the tenant's SCIM token:
       TOKEN=$(curl -s -X POST %[7]s/portcullis/tenants/%[8]s/scim-token | sed -E 's/.*"token":"([^"]+)".*/\1/')
  2. Provision %[3]s and the group Engineering with her in it, over SCIM.
  3. Open %[1]s/ in a browser and sign in as %[3]s: the app shows the role editor.
  4. Move her to the group Admins and reload (admin); deactivate her and reload (refused).

`, gw, d.idp.Issuer, users[0].PreferredUsername, users[1].PreferredUsername, users[2].PreferredUsername,
		demo.Password, admin, demo.Tenant, d.settings.DataDir)
}
