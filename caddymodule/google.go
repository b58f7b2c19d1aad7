package caddymodule

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portcullis/portcullis/directory"
)

// TenantGoogle pulls the tenant's users and groups from Google Workspace's
// Directory API (package directory): a full sync when the gateway starts,
// every Interval and on demand (admin API, CLI), and fast deprovisioning
// from the Reports API's admin activities every ActivityPoll. A tenant
// pulled from Google is never pushed to over SCIM: a scim handler for it
// is refused. String values may hold global placeholders ({env.*}).
type TenantGoogle struct {
	// Domain (e.g. "example.com") or Customer (e.g. "my_customer") selects
	// the directory: exactly one.
	Domain   string `json:"domain,omitempty"`
	Customer string `json:"customer,omitempty"`
	// CredentialsFile is the service account's JSON key file.
	CredentialsFile string `json:"credentials_file"`
	// AdminEmail is the Workspace user the service account acts as
	// (domain-wide delegation).
	AdminEmail string `json:"admin_email"`
	// Interval is the full-sync period (default 1h, at least 1m).
	Interval caddy.Duration `json:"interval,omitempty"`
	// Users is "mapped_groups" (default: members of the groups the
	// tenant's map_group lines name) or "all".
	Users string `json:"users,omitempty"`
	// ActivityPoll is the Reports API poll period (default 1m); negative
	// turns fast deprovisioning off (Caddyfile: activity_poll off).
	ActivityPoll caddy.Duration `json:"activity_poll,omitempty"`
	// APIEndpoint replaces https://admin.googleapis.com/ for tests and
	// acceptance checks against a local fake. Never set it in production.
	APIEndpoint string `json:"api_endpoint,omitempty"`
}

// maxCredentialsBytes bounds the key file read at provision (Google's are
// about 2.3 KB).
const maxCredentialsBytes = 64 << 10

// googleRetryForTests, when set by a test of this package, replaces the
// production backoff (seconds, up to 32s a retry) with a shorter one so
// that a test of a failing listing ends in milliseconds. It is never set
// outside tests and no config can set it.
var googleRetryForTests *directory.RetryPolicy

// parseGoogle reads the google block of a tenant. Syntax:
//
//	google {
//		domain <domain> | customer <customer id>
//		credentials_file <path>        # service account key (JSON); {env.*} works
//		admin_email <email>            # the user the service account acts as
//		interval <duration>            # full sync period (default 1h)
//		users mapped_groups|all        # default mapped_groups
//		activity_poll <duration>|off   # fast deprovisioning (default 1m)
//		api_endpoint <url>             # tests only: a local fake of Google's APIs
//	}
func parseGoogle(d *caddyfile.Dispenser, tenant string) (*TenantGoogle, error) {
	if d.NextArg() {
		return nil, d.Errf("tenant %s: google takes a block, not arguments", tenant)
	}
	g := new(TenantGoogle)
	strs := map[string]*string{
		"domain":           &g.Domain,
		"customer":         &g.Customer,
		"credentials_file": &g.CredentialsFile,
		"admin_email":      &g.AdminEmail,
		"api_endpoint":     &g.APIEndpoint,
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return nil, d.Errf("tenant %s: google %s is set twice", tenant, opt)
		}
		seen[opt] = true
		var err error
		if dst, ok := strs[opt]; ok {
			err = oneArg(d, dst)
		} else {
			switch opt {
			case "interval":
				err = durationArg(d, &g.Interval)
			case "users":
				err = oneArg(d, &g.Users)
				if err == nil && g.Users != directory.UsersMappedGroups && g.Users != directory.UsersAll {
					err = d.Errf("tenant %s: google users %q: use mapped_groups or all", tenant, g.Users)
				}
			case "activity_poll":
				var raw string
				if err = oneArg(d, &raw); err != nil {
					break
				}
				if raw == "off" {
					g.ActivityPoll = -1 // directory: negative turns the poll off
					break
				}
				err = parseDurationValue(d, "activity_poll", raw, &g.ActivityPoll)
			default:
				err = d.Errf("tenant %s: unrecognized google option %q (expected domain, customer, credentials_file, admin_email, interval, users, activity_poll or api_endpoint)", tenant, opt)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if (g.Domain == "") == (g.Customer == "") {
		return nil, d.Errf("tenant %s: google needs domain or customer (one of them)", tenant)
	}
	if g.CredentialsFile == "" || g.AdminEmail == "" {
		return nil, d.Errf("tenant %s: google needs credentials_file (the service account key) and admin_email (the user it acts as)", tenant)
	}
	return g, nil
}

// directoryConfig is the sync's configuration: placeholders expanded, the
// key file read, the tenant's map_group references as the mapped groups.
// Nothing is fetched from Google here.
func (t *Tenant) directoryConfig(rt *tenantRuntime, repl *caddy.Replacer) (directory.Config, error) {
	g := t.Google
	expand := func(s string) string { return repl.ReplaceKnown(s, "") }
	cfg := directory.Config{
		Tenant:       t.Name,
		Store:        rt.store, // opened at start, not here (storehandle.go)
		Logger:       rt.logger,
		Domain:       expand(g.Domain),
		Customer:     expand(g.Customer),
		AdminEmail:   expand(g.AdminEmail),
		APIEndpoint:  expand(g.APIEndpoint),
		Users:        g.Users,
		Interval:     time.Duration(g.Interval),
		ActivityPoll: time.Duration(g.ActivityPoll),
		Observer:     newGoogleSyncObserver(t.Name),
	}
	for _, m := range t.GroupMappings {
		cfg.MappedGroups = append(cfg.MappedGroups, m.Group)
	}
	if googleRetryForTests != nil {
		cfg.Retry = *googleRetryForTests
	}
	if g.CredentialsFile == "" {
		return cfg, fmt.Errorf("credentials_file (the service account's JSON key file) is required")
	}
	path := expand(g.CredentialsFile)
	if path == "" {
		return cfg, fmt.Errorf("credentials_file %q expands to nothing (is the environment variable set?)", g.CredentialsFile)
	}
	var err error
	if cfg.Credentials, err = readCredentialsFile(path); err != nil {
		return cfg, fmt.Errorf("credentials_file: %v", err)
	}
	return cfg, nil
}

// readCredentialsFile reads a service account key file, bounded.
func readCredentialsFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCredentialsBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes; is it a service account key file?", path, maxCredentialsBytes)
	}
	return b, nil
}

// prepareGoogle builds the tenant's directory syncer, without reaching the
// store or Google (see App.Provision): a bad key file, domain or option is
// refused here, so `caddy validate` reports it.
func (rt *tenantRuntime) prepareGoogle() error {
	if rt.cfg.Google == nil {
		return nil
	}
	cfg, err := rt.cfg.directoryConfig(rt, caddy.NewReplacer())
	if err != nil {
		return fmt.Errorf("tenant %s: google: %v", rt.cfg.Name, err)
	}
	s, err := directory.New(cfg)
	if err != nil {
		return fmt.Errorf("tenant %s: google: %v", rt.cfg.Name, err)
	}
	rt.syncer = s
	return nil
}

// runningSyncers are the started syncers by tenant. On a reload Caddy
// starts the new config before it cleans up the old one, so the new
// config's syncer stops its predecessor before starting: two syncs of one
// tenant never run side by side, each planning writes the other makes.
var runningSyncers struct {
	sync.Mutex
	byTenant map[string]*directory.Syncer
}

// startGoogle starts the schedule: the first full sync runs in the
// background, so it never delays Caddy's start. Of replicas sharing a
// database only the holder of the tenant's pull lease runs it (the
// syncer's store is the handle, a storage.Leaser: storehandlelease.go).
func (rt *tenantRuntime) startGoogle() {
	if rt.syncer == nil {
		return
	}
	runningSyncers.Lock()
	defer runningSyncers.Unlock()
	if runningSyncers.byTenant == nil {
		runningSyncers.byTenant = make(map[string]*directory.Syncer)
	}
	if prev := runningSyncers.byTenant[rt.cfg.Name]; prev != nil && prev != rt.syncer {
		prev.Stop() // cancels a running sync: its remaining calls return at once
	}
	runningSyncers.byTenant[rt.cfg.Name] = rt.syncer
	rt.syncer.Start()
}

// stopGoogle stops the schedule and a running sync, and waits for them
// (a sync stopped midway changes nothing more: each page commits whole).
func (rt *tenantRuntime) stopGoogle() {
	if rt.syncer == nil {
		return
	}
	rt.syncer.Stop()
	runningSyncers.Lock()
	defer runningSyncers.Unlock()
	if runningSyncers.byTenant[rt.cfg.Name] == rt.syncer {
		delete(runningSyncers.byTenant, rt.cfg.Name)
	}
}

// errPulledFromGoogle refuses a scim handler for a tenant with a google
// block: two sources of truth would undo each other's changes.
func errPulledFromGoogle(tenant string) error {
	return fmt.Errorf("tenant %s is pulled from Google Workspace (google block); a tenant is pushed over SCIM or pulled from Google, not both", tenant)
}
