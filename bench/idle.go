package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/devidp"
)

// The idle figure: the CPU a process uses with no traffic at all, from
// /proc/PID/stat over a long window (-idle, 60 s by default). Background
// timers and store maintenance are all that runs then, so this is their
// cost. Each configuration is a process of its own, started from the same
// binary: plain Caddy (one reverse_proxy site, no Portcullis), the gateway
// with one tenant, and with idleManyTenants tenants, each tenant signing in
// with OpenID Connect (the harness's development provider), with a SCIM
// endpoint and a protected site, as deployed.

// idleManyTenants is the tenant count of the larger idle configuration.
const idleManyTenants = 50

// idleSettle is how long a process runs before its idle window starts:
// start-up work (config load, store open, provider discovery) is not idle.
const idleSettle = 5 * time.Second

// idleResults is the idle CPU of each configuration, in milliseconds of
// CPU (user+system) per second of wall time.
type idleResults struct {
	Seconds      float64  `json:"seconds"`
	Plain        float64  `json:"plain_caddy_ms_per_s"`
	OneTenant    float64  `json:"badger_1_tenant_ms_per_s"`
	ManyTenants  float64  `json:"badger_50_tenants_ms_per_s"`
	PGOneTenant  *float64 `json:"postgres_1_tenant_ms_per_s,omitempty"`
	PGManyTenant *float64 `json:"postgres_50_tenants_ms_per_s,omitempty"`
}

// measureIdle measures every idle configuration, one process at a time.
func measureIdle(bin, backend string, o options) (*idleResults, error) {
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	defer idp.Close()
	secret := randomHex(16)
	// One client for every tenant: the idle processes sign nobody in, so
	// the redirect URIs never matter.
	idp.AddClient(benchClientID, secret, []string{"http://127.0.0.1/sso/oidc/callback"}, []string{"http://127.0.0.1/"})
	res := &idleResults{Seconds: o.idle.Seconds()}
	one := func(name string, cfg idleConfig) (float64, error) {
		cfg.issuer, cfg.clientSecret, cfg.backend = idp.Issuer, secret, backend
		v, err := idleCPU(bin, cfg, o)
		if err != nil {
			return 0, fmt.Errorf("idle %s: %w", name, err)
		}
		logf("idle: %s: %.2f ms CPU per second", name, v)
		return v, nil
	}
	if res.Plain, err = one("plain Caddy", idleConfig{}); err != nil {
		return nil, err
	}
	if res.OneTenant, err = one("Badger, 1 tenant", idleConfig{tenants: 1}); err != nil {
		return nil, err
	}
	if res.ManyTenants, err = one(fmt.Sprintf("Badger, %d tenants", idleManyTenants), idleConfig{tenants: idleManyTenants}); err != nil {
		return nil, err
	}
	if server := postgresServer(o.pgURL); server != "" {
		for _, n := range []int{1, idleManyTenants} {
			v, err := func() (float64, error) {
				dbURL, drop, err := createDatabase(server)
				if err != nil {
					return 0, err
				}
				defer drop()
				if strings.ContainsAny(dbURL, "\"\n\\") {
					return 0, errors.New("the PostgreSQL URL must not hold quotes, backslashes or newlines (it goes into a Caddyfile)")
				}
				// The default poll interval: the figure is what users run.
				storage := fmt.Sprintf("storage postgres \"%s\" {\n\t\tkey_encryption_key %s\n\t}", dbURL, randomHex(32))
				return one(fmt.Sprintf("PostgreSQL, %d tenants", n), idleConfig{tenants: n, storage: storage})
			}()
			if err != nil {
				return nil, err
			}
			if n == 1 {
				res.PGOneTenant = &v
			} else {
				res.PGManyTenant = &v
			}
		}
	}
	return res, nil
}

// idleConfig is one idle process's configuration. tenants 0 is plain
// Caddy.
type idleConfig struct {
	tenants      int
	storage      string // the storage directive; empty: Badger in the process's directory
	issuer       string
	clientSecret string
	backend      string
}

// idleCPU starts the configuration in a process of its own, lets it
// settle, and returns its CPU use over o.idle in ms per second.
func idleCPU(bin string, cfg idleConfig, o options) (float64, error) {
	dir, err := os.MkdirTemp("", "portcullis-bench-idle-")
	if err != nil {
		return 0, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		logf("keeping %s", dir)
	}
	caddyfile, adminURL, err := cfg.caddyfile(dir)
	if err != nil {
		return 0, err
	}
	gw, err := startGateway(bin, dir, caddyfile, adminURL+"/config/")
	if err != nil {
		return 0, err
	}
	defer gw.stop()
	time.Sleep(idleSettle)
	before, err := cpuTime(gw.pid())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(o.idle)
	after, err := cpuTime(gw.pid())
	if err != nil {
		return 0, err
	}
	wall := time.Since(start)
	return float64(after-before) / float64(time.Millisecond) / wall.Seconds(), nil
}

// caddyfile writes the configuration: an admin endpoint (the harness waits
// on it) and, per tenant, a site on a port of its own with the tenant's
// SCIM endpoint, sign-in and a protected reverse_proxy, like a deployment.
// Plain Caddy (no tenants) is plainCaddyfile.
func (c idleConfig) caddyfile(dir string) (string, string, error) {
	if c.tenants == 0 {
		caddyfile, adminURL, _, err := c.plainCaddyfile()
		return caddyfile, adminURL, err
	}
	ports, err := freePorts(1 + c.tenants) // the admin's, then the sites'
	if err != nil {
		return "", "", err
	}
	admin := ports[0]
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tlog {\n\t\tlevel WARN\n\t}\n", admin)
	storage := c.storage
	if storage == "" {
		storage = "storage badger " + filepath.Join(dir, "data")
	}
	fmt.Fprintf(&b, "\tportcullis {\n\t\t%s\n", storage)
	for i := 0; i < c.tenants; i++ {
		fmt.Fprintf(&b, "\t\ttenant %s {\n\t\t\toidc {\n\t\t\t\tissuer %s\n\t\t\t\tclient_id %s\n\t\t\t\tclient_secret %s\n\t\t\t}\n\t\t\troles viewer editor admin\n\t\t}\n",
			idleTenant(i), c.issuer, benchClientID, c.clientSecret)
	}
	b.WriteString("\t}\n}\n")
	for i := 0; i < c.tenants; i++ {
		writeTenantSite(&b, ports[1+i], idleTenant(i), c.backend)
	}
	return b.String(), adminURL, nil
}

func idleTenant(i int) string { return fmt.Sprintf("idle%02d", i) }

// writeTenantSite is one tenant's site: SCIM, sign-in and a protected app.
func writeTenantSite(w io.Writer, port int, tenant, backend string) {
	fmt.Fprintf(w, `
http://127.0.0.1:%d {
	handle /scim/v2/%[2]s/* {
		scim %[2]s
	}
	handle /sso/* {
		sso %[2]s
	}
	handle {
		identity %[2]s {
			require viewer
		}
		reverse_proxy %[3]s
	}
}
`, port, tenant, backend)
}
