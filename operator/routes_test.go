package operator_test

import (
	"context"
	"testing"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestRoleReasonRoutes: a user's role reason lists every configured route
// and whether the user gets through it, as the gate decides.
func TestRoleReasonRoutes(t *testing.T) {
	routes := []operator.RoutePolicy{
		{Route: "home", Policy: authz.Policy{Public: true}},
		{Route: "app", Policy: authz.Policy{}},
		{Route: "edit", Policy: authz.Policy{Require: "editor"}},
		{Route: "ops", Policy: authz.Policy{AllowGroups: []string{"Ops"}}},
		{Route: "admin-ops", Policy: authz.Policy{Require: "admin", AllowGroups: []string{"Ops"}}},
	}
	e := newEnv(t, func(c *operator.Config) {
		c.Routes = func() []operator.RoutePolicy { return routes }
	})
	ctx := context.Background()
	admins := e.group("admins", storage.SourceSCIM)
	ops := e.group("Ops", storage.SourceSCIM)
	viewer := e.user("val", storage.SourceSCIM)
	opsAdmin := e.user("olga", storage.SourceSCIM, admins, ops)
	admin := e.user("ada", storage.SourceSCIM, admins)
	inactive := e.user("ian", storage.SourceSCIM, admins, ops)
	e.update(func(tx storage.Tx) error {
		u, _ := tx.GetUser(inactive)
		u.Active = false
		return tx.PutUser(u)
	})
	for _, tc := range []struct {
		user string
		want []bool // home app edit ops admin-ops
	}{
		{viewer, []bool{true, true, false, false, false}},
		{opsAdmin, []bool{true, true, true, true, true}},
		{admin, []bool{true, true, true, false, false}},
		{inactive, []bool{true, false, false, false, false}},
	} {
		d, err := e.svc.User(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		got := d.RoleReason.Routes
		if len(got) != len(routes) {
			t.Fatalf("%s: routes %+v", d.UserName, got)
		}
		for i, ra := range got {
			if ra.Route != routes[i].Route || ra.Allowed != tc.want[i] || ra.Policy != routes[i].Policy.String() || ra.Why == "" {
				t.Errorf("%s: route %+v, want %s allowed=%v", d.UserName, ra, routes[i].Route, tc.want[i])
			}
		}
	}
}
