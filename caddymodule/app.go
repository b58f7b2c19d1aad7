// Package caddymodule is the Caddy glue of Portcullis and the only package
// (with cmd/) that imports Caddy. It owns:
//
//   - the "portcullis" app: the store (opened once per process and shared
//     across config reloads) and the configured tenants, with each tenant's
//     sign-in service (package sso), identity resolver and assertion signer
//     (package authz), built per config and closed with it;
//   - the "scim" HTTP handler, which serves one tenant's SCIM endpoint
//     through package scimhandler;
//   - the "sso" HTTP handler, which serves a tenant's sign-in endpoints;
//   - the "identity" HTTP handler, which protects a route: it strips forged
//     identity headers, sends the unauthenticated to sign in, applies the
//     route's policy and passes the caller's identity on as headers and
//     placeholders (package authz);
//   - the "identity_jwks" HTTP handler, which publishes the key backends
//     verify X-Remote-Assertion with;
//   - the admin API routes under /portcullis/ (SCIM tokens, audit events);
//   - the "caddy portcullis" CLI subcommands, which call those routes;
//   - Caddyfile parsing for all of the above.
//
// The handlers are named above by their Caddyfile directives; their module
// IDs are http.handlers.portcullis_scim, _sso, _identity and
// _identity_jwks, distinctive because every plugin's modules share Caddy's
// one namespace. The module's root package imports this one, so that
// xcaddy builds it in.
//
// Everything else (SCIM, sign-in, authorization, storage) is plain Go that
// this package wires up.
package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/operator"
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

	// Templates is a directory of html/template files that replace the
	// pages people see, for every tenant without templates of its own
	// (see pages.Load for the file names and the data each gets).
	Templates string `json:"templates,omitempty"`

	store    *storeHandle // opened at Start or first use, never in Provision
	storeKey string       // the store's key once opened (for tests)
	tenants  map[string]*Tenant
	runtimes map[string]*tenantRuntime
	// endpoints are the sso and scim handlers of this config, which an
	// identity route hands its tenant's own paths to (ownpaths.go).
	endpoints *tenantEndpoints
	logger    *zap.Logger
	// operators are the tenants' operator services (operators.go), built
	// in Start.
	operators map[string]*operator.Service
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

// Provision checks the configuration and builds the tenants' services
// without opening the store or reaching any IdP: `caddy validate` runs
// Provision (then Cleanup) in a process of its own, possibly while the
// gateway runs and holds the store's lock, and must work while an IdP is
// down. Every error that needs neither (tenant names, roles, sign-in
// settings, PEM and metadata files) is reported here. The store opens in
// Start (see storeHandle); the IdPs are reached in the background from
// Start on (package sso).
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()

	if err := a.checkTenants(); err != nil {
		return err
	}
	a.endpoints = new(tenantEndpoints)
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	if err := a.loadPages(); err != nil {
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
	a.store = newStoreHandle(opener, a.logger)

	// On error Caddy calls Cleanup, which closes what was built.
	a.runtimes = make(map[string]*tenantRuntime, len(a.Tenants))
	cookies := new(gatewayCookies)
	for _, t := range a.Tenants {
		rt, err := newTenantRuntime(t, a.store, storageKEK(mod), a.logger, cookies)
		if err != nil {
			return err
		}
		a.runtimes[t.Name] = rt
		if rt.signIn != nil {
			cookies.owners = append(cookies.owners, rt.signIn)
		}
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
		if err := t.check(); err != nil {
			return err
		}
		a.tenants[t.Name] = t
	}
	return nil
}

// startIdPWait bounds how long Start waits for the first attempt to reach
// the tenants' IdPs (all at once, not each): long enough that a reachable
// IdP is ready when Caddy says it started, short enough that one that does
// not answer (a dropped connection) does not hold Caddy up. Sign-in
// answers 503 until the IdP answers.
const startIdPWait = 5 * time.Second

// Start opens the store (or takes a use of the one a running config has
// open), sets each tenant's audit retention, starts each tenant's sign-in
// (keys from the store; the IdP reached in the background) and makes this
// app the one the admin API serves. On a reload the new app starts before
// the old one stops, so the newest always wins. An IdP that does not
// answer does not fail Start.
func (a *App) Start() error {
	a.endpoints.freeze()
	if _, err := a.store.get(); err != nil {
		return err
	}
	a.storeKey = a.store.opener.StoreKey()
	// Every configured tenant's retention is set on every load, so a
	// setting removed from the config returns to the store's default.
	for _, t := range a.Tenants {
		if err := a.store.SetEventRetention(t.Name, t.eventRetention()); err != nil {
			return fmt.Errorf("tenant %s: audit retention: %v", t.Name, err)
		}
	}
	for _, t := range a.Tenants {
		if err := a.runtimes[t.Name].start(); err != nil {
			return err
		}
	}
	if err := a.startOperators(); err != nil {
		return err
	}
	a.waitForIdPs()

	liveApp.Lock()
	liveApp.app = a
	liveApp.Unlock()
	a.warnUnresolvedGroups()
	return nil
}

// waitForIdPs waits up to startIdPWait for the first attempt to reach
// every tenant's IdP. Those that failed are retried in the background
// (package sso logs them).
func (a *App) waitForIdPs() {
	ctx, cancel := context.WithTimeout(context.Background(), startIdPWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, rt := range a.runtimes {
		if rt.signIn == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = rt.signIn.WaitIdP(ctx)
		}()
	}
	wg.Wait()
}

// unresolvedGroupsTimeout bounds the start-up check of group references.
const unresolvedGroupsTimeout = 5 * time.Second

// warnUnresolvedGroups logs the map_group and allow_groups references that
// name no group yet. Every route is provisioned by now, so their
// allow_groups are known. A missing group is not an error: the IdP may not
// have pushed it yet; but it is often a typo.
func (a *App) warnUnresolvedGroups() {
	for _, t := range a.Tenants {
		rt := a.runtimes[t.Name]
		if rt == nil || rt.identities == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), unresolvedGroupsTimeout)
		refs, err := rt.identities.UnresolvedGroups(ctx)
		cancel()
		if err != nil {
			a.logger.Warn("cannot check the configured group names", zap.String("tenant", t.Name), zap.Error(err))
			continue
		}
		if len(refs) > 0 {
			a.logger.Warn("configured groups that name no group of the tenant yet (a typo, or not pushed by the IdP yet)",
				zap.String("tenant", t.Name), zap.Strings("groups", refs))
		}
	}
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

// Cleanup stops the tenants' background work and gives back this app's use
// of the store, if it took one (the last use closes the store). Caddy
// calls it after a validation, after a failed Provision or Start, and when
// the config is replaced, so it tolerates having nothing to release.
func (a *App) Cleanup() error {
	var errs []error
	for name, rt := range a.runtimes {
		if err := rt.close(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", name, err))
		}
	}
	a.runtimes = nil
	if a.store != nil {
		errs = append(errs, a.store.release())
	}
	a.storeKey = ""
	return errors.Join(errs...)
}

// Store is the app's open store, or nil before the app started.
func (a *App) Store() storage.Store {
	if a.store == nil {
		return nil
	}
	return a.store.current()
}

// Tenant returns the configuration of a configured tenant.
func (a *App) Tenant(name string) (*Tenant, bool) {
	t, ok := a.tenants[name]
	return t, ok
}

// tenantRuntime returns the running services of a configured tenant, or an
// error a handler can return from Provision as is.
func (a *App) tenantRuntime(handler, name string) (*tenantRuntime, error) {
	rt, ok := a.runtimes[name]
	if !ok {
		return nil, fmt.Errorf("%s %s: tenant %q is not configured in the portcullis global option", handler, name, name)
	}
	return rt, nil
}

// portcullisApp returns the portcullis app of the config a handler is
// provisioned in, or an error saying how to configure it.
func portcullisApp(ctx caddy.Context, handler, tenant string) (*App, error) {
	if tenant == "" {
		return nil, fmt.Errorf("%s: tenant is required", handler)
	}
	appIface, err := ctx.AppIfConfigured("portcullis")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, fmt.Errorf("%s %s: the portcullis app is not configured; add a global option block `portcullis { tenant %s }`: %v", handler, tenant, tenant, err)
	}
	if err != nil {
		// The app's own error (a tenant's settings, the store, the IdP).
		return nil, err
	}
	return appIface.(*App), nil
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
