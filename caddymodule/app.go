// Package caddymodule is the Caddy glue of Portcullis and the only package
// (with cmd/) that imports Caddy. It owns:
//
//   - the "portcullis" app: the store (opened once per process and shared
//     across config reloads) and the configured tenants;
//   - the "scim" HTTP handler, which serves one tenant's SCIM endpoint
//     through package scimhandler;
//   - the admin API routes under /portcullis/ (SCIM tokens, audit events);
//   - the "caddy portcullis" CLI subcommands, which call those routes;
//   - Caddyfile parsing for all of the above.
//
// Everything else (SCIM, storage) is plain Go that this package wires up.
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the "portcullis" app: the shared store and the tenants it serves.
type App struct {
	// Storage is the backend (module namespace portcullis.storage, inline
	// key "backend"). Default: Badger under Caddy's data directory.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=portcullis.storage inline_key=backend"`

	// Tenants are the organisations this gateway serves. Each tenant's data
	// is kept apart from every other's.
	Tenants []*Tenant `json:"tenants,omitempty"`

	store    storage.Store
	storeKey string // set while this app holds a use of the store
	tenants  map[string]*Tenant
	logger   *zap.Logger
}

// Tenant is the configuration of one tenant. Later capabilities (sign-in,
// role mappings) add their settings here.
type Tenant struct {
	// Name identifies the tenant in URLs, admin API paths and storage
	// keys; see CheckTenantName.
	Name string `json:"name"`
}

// tenantNamePattern keeps tenant names safe as a URL path segment, a file
// name and a storage key prefix: a DNS-label-like lower-case word.
var tenantNamePattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckTenantName returns an error unless name can be a tenant name: 1 to
// 63 lower-case letters, digits and hyphens, starting and ending with a
// letter or digit.
func CheckTenantName(name string) error {
	if !tenantNamePattern.MatchString(name) {
		return fmt.Errorf("invalid tenant name %q: use 1-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit", name)
	}
	return nil
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portcullis",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the tenants and takes a use of the store (opening it if
// no running config has it open).
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()

	// Check the tenants before touching the store, so a bad config never
	// opens (and locks) a database.
	if err := a.checkTenants(); err != nil {
		return err
	}

	if a.StorageRaw == nil {
		a.StorageRaw = json.RawMessage(`{"backend":"badger"}`)
	}
	mod, err := ctx.LoadModule(a, "StorageRaw")
	if err != nil {
		return fmt.Errorf("loading storage backend: %v", err)
	}
	opener, ok := mod.(StoreOpener)
	if !ok {
		return fmt.Errorf("storage backend %T does not open a store", mod)
	}
	a.store, a.storeKey, err = acquireStore(opener, a.logger)
	if err != nil {
		return err
	}
	return nil
}

// checkTenants validates names, rejects duplicates and builds the lookup.
func (a *App) checkTenants() error {
	a.tenants = make(map[string]*Tenant, len(a.Tenants))
	for _, t := range a.Tenants {
		if t == nil {
			return errors.New("tenant entry is empty")
		}
		if err := CheckTenantName(t.Name); err != nil {
			return err
		}
		if _, dup := a.tenants[t.Name]; dup {
			return fmt.Errorf("tenant %q is configured twice", t.Name)
		}
		a.tenants[t.Name] = t
	}
	return nil
}

// Start makes this app the one the admin API serves. On a reload the new
// app starts before the old one stops, so the newest always wins.
func (a *App) Start() error {
	liveApp.Lock()
	liveApp.app = a
	liveApp.Unlock()
	return nil
}

// Stop withdraws this app from the admin API unless a newer one has
// already taken its place.
func (a *App) Stop() error {
	liveApp.Lock()
	if liveApp.app == a {
		liveApp.app = nil
	}
	liveApp.Unlock()
	return nil
}

// Cleanup gives back this app's use of the store; the last one closes it.
// Caddy may call it after a failed Provision, so it tolerates having
// nothing to release.
func (a *App) Cleanup() error {
	if a.storeKey == "" {
		return nil
	}
	key := a.storeKey
	a.storeKey = ""
	return releaseStore(key, a.logger)
}

// Store is the app's store.
func (a *App) Store() storage.Store { return a.store }

// Tenant returns the configuration of a configured tenant.
func (a *App) Tenant(name string) (*Tenant, bool) {
	t, ok := a.tenants[name]
	return t, ok
}

// liveApp is the running portcullis app. Caddy provisions admin API routers
// apart from apps (and keeps them across app reloads), so the admin routes
// find the app here rather than through a caddy.Context.
var liveApp struct {
	sync.RWMutex
	app *App
}

// runningApp returns the running app, or nil when none is configured.
func runningApp() *App {
	liveApp.RLock()
	defer liveApp.RUnlock()
	return liveApp.app
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
