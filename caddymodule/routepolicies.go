package caddymodule

import (
	"slices"

	"github.com/portcullis/portcullis/operator"
)

// The operator's "why does this user have this role" also says which
// routes the user gets through. The routes are the identity handlers of
// the loaded config: each registers its name and policy when provisioned,
// in the same per-config registry as the sso and scim handlers
// (ownpaths.go), and the tenant's operator service reads them at each user
// detail.

// addRoute registers an identity route of tenant; the same name and policy
// twice (one route block repeated in several sites) count once.
func (e *tenantEndpoints) addRoute(tenant string, rp operator.RoutePolicy) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.routes == nil {
		e.routes = make(map[string][]operator.RoutePolicy)
	}
	for _, have := range e.routes[tenant] {
		if have.Route == rp.Route && have.Policy.String() == rp.Policy.String() {
			return
		}
	}
	rp.Policy.AllowGroups = slices.Clone(rp.Policy.AllowGroups)
	e.routes[tenant] = append(e.routes[tenant], rp)
}

// routesOf lists the tenant's identity routes in the order provisioned.
func (e *tenantEndpoints) routesOf(tenant string) []operator.RoutePolicy {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.routes[tenant])
}
