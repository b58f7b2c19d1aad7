package caddymodule

import (
	"fmt"
	"sync"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// startOperators builds one operator.Service per tenant over the open
// store, for the admin API, the CLI and the console. It runs in Start:
// the services are plain Go over the store, built per config like the
// rest of a tenant's runtime, so a reload that changes a tenant's roles
// or map_group lines gives the operator the new ones.
func (a *App) startOperators() error {
	ops := make(map[string]*operator.Service, len(a.Tenants))
	for _, t := range a.Tenants {
		svc, err := operator.New(a.operatorConfig(t))
		if err != nil {
			return fmt.Errorf("tenant %s: operator: %v", t.Name, err)
		}
		ops[t.Name] = svc
	}
	a.operators = ops
	return nil
}

// operatorConfig is what a tenant's operator service needs from the
// config: the store, the tenant, its role model (the map_group lines are
// the pinned, config-sourced mappings), the SCIM endpoint's usage counts
// and the sessions' idle limit.
func (a *App) operatorConfig(t *Tenant) operator.Config {
	cfg := operator.Config{
		Tenant: t.Name,
		Store:  a.store,
		Roles:  t.roles(),
		Usage:  a.scimUsage(t.Name),
		Logger: a.logger,
	}
	if a.endpoints != nil {
		endpoints, tenant := a.endpoints, t.Name
		cfg.Routes = func() []operator.RoutePolicy { return endpoints.routesOf(tenant) }
	}
	if rt := a.runtimes[t.Name]; rt != nil && rt.signIn != nil {
		cfg.IdleTimeout = rt.signIn.IdleTimeout()
	}
	return cfg
}

// Operator returns the operator service of a configured tenant of a
// started app.
func (a *App) Operator(tenant string) (*operator.Service, bool) {
	svc, ok := a.operators[tenant]
	return svc, ok
}

// scimUsages are the tenants' SCIM usage counts, one per store and tenant
// for the life of the process: every scim handler of a tenant counts into
// the same tracker, and a config reload keeps the last 24 hours' counts.
// A tracker is a few hundred bytes; tenants are few.
var scimUsages sync.Map // store key + "\x00" + tenant → *scimhandler.UsageTracker

// scimUsage is the tenant's SCIM usage tracker.
func (a *App) scimUsage(tenant string) *scimhandler.UsageTracker {
	key := a.store.opener.StoreKey() + "\x00" + tenant
	u, _ := scimUsages.LoadOrStore(key, scimhandler.NewUsageTracker())
	return u.(*scimhandler.UsageTracker)
}

// scimRoleOf gives the scim handler a user's effective role, which it
// records before and after adopting a manual user back (a push after the
// IdP reconnected). Adoptions are rare, so the role table is built for
// each rather than cached.
func scimRoleOf(roles authz.Roles) func(tx storage.ReadTx, u *storage.User) (string, error) {
	return func(tx storage.ReadTx, u *storage.User) (string, error) {
		t, err := authz.BuildRoleTable(tx, roles)
		if err != nil {
			return "", err
		}
		r, err := t.ResolveUser(tx, u)
		return r.Role, err
	}
}

// noteUserWritten hands a user the tenant's SCIM endpoint wrote to the
// tenant's operator search index (operator Service.NoteUser), so the
// admin API and the console list it at once. The services are built in
// Start, after the handlers are provisioned: the lookup is at each write.
func (a *App) noteUserWritten(tenant string) func(u *storage.User) {
	return func(u *storage.User) {
		if svc, ok := a.Operator(tenant); ok {
			svc.NoteUser(u)
		}
	}
}
