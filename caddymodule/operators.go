package caddymodule

import (
	"fmt"

	"github.com/portcullis/portcullis/operator"
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
// config: the store, the tenant, and its role model (the map_group lines
// are the pinned, config-sourced mappings).
func (a *App) operatorConfig(t *Tenant) operator.Config {
	return operator.Config{
		Tenant: t.Name,
		Store:  a.store,
		Roles:  t.roles(),
		Logger: a.logger,
	}
}

// Operator returns the operator service of a configured tenant of a
// started app.
func (a *App) Operator(tenant string) (*operator.Service, bool) {
	svc, ok := a.operators[tenant]
	return svc, ok
}
