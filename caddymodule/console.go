package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/console"
	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/operator"
)

func init() {
	caddy.RegisterModule(Console{})
}

// defaultConsolePrefix is where the console is when the directive names
// no prefix.
const defaultConsolePrefix = "/portcullis"

// Console serves the operator's web console (package console) for some
// tenants. Mount it behind identity, which decides who may use it; the
// signed-in user is the actor of every change:
//
//	handle /portcullis/* {
//		identity corp { require admin }
//		portcullis_console /portcullis { tenants acme globex }
//	}
//
// Use handle (not handle_path): the console sees the full path. It answers
// every request it gets.
type Console struct {
	// Prefix is the path the console is mounted at (default /portcullis).
	Prefix string `json:"prefix,omitempty"`
	// Tenants are the configured tenants it manages.
	Tenants []string `json:"tenants"`
	// LogoutURL is the signed-in operator's sign-out link (default
	// /sso/logout: the sso handler's logout at its default prefix).
	LogoutURL string `json:"logout_url,omitempty"`

	handler *console.Handler
}

// CaddyModule returns the Caddy module information.
func (Console) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portcullis_console",
		New: func() caddy.Module { return new(Console) },
	}
}

// Provision builds each tenant's operations over the app's store handle,
// which opens the store at the first use, not here.
func (c *Console) Provision(ctx caddy.Context) error {
	if len(c.Tenants) == 0 {
		return fmt.Errorf("portcullis_console: name the tenants it manages, e.g. tenants acme")
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = defaultConsolePrefix
	}
	cleaned, err := cleanPathPrefix(prefix)
	if err != nil {
		return fmt.Errorf("portcullis_console: prefix: %v", err)
	}
	cfg := console.Config{Prefix: cleaned, LogoutURL: c.LogoutURL, Logger: ctx.Logger()}
	for _, name := range c.Tenants {
		app, err := portcullisApp(ctx, "portcullis_console", name)
		if err != nil {
			return err
		}
		rt, err := app.tenantRuntime("portcullis_console", name)
		if err != nil {
			return err
		}
		// The app's own operator service of the tenant (built at Start,
		// with the SCIM usage tracker the token health reads), the same
		// one the admin API uses.
		tenant := name
		cfg.Tenants = append(cfg.Tenants, console.Tenant{
			Name:  name,
			Store: rt.store,
			Pull:  consolePull(rt.syncer),
			Operator: func(context.Context) (console.Operator, error) {
				if s, ok := app.Operator(tenant); ok {
					return s, nil
				}
				return nil, errors.New("the portcullis app has not started yet")
			},
		})
	}
	c.handler, err = console.New(cfg)
	if err != nil {
		return fmt.Errorf("portcullis_console: %v", err)
	}
	return nil
}

// consolePull shows a tenant's Google pull in the console and starts it
// on "Sync now"; nil for a tenant that is not pulled.
func consolePull(s *directory.Syncer) *console.Pull {
	if s == nil {
		return nil
	}
	return &console.Pull{
		Status: func() console.PullStatus {
			st := s.Status()
			c := st.Counts
			var parts []string
			for _, n := range []struct {
				count int
				what  string
			}{
				{c.UsersCreated, "users created"}, {c.UsersUpdated, "updated"},
				{c.UsersDeactivated, "deactivated"}, {c.UsersReactivated, "reactivated"},
				{c.GroupsCreated + c.GroupsUpdated + c.GroupsDeleted, "groups changed"},
				{c.MembershipsAdded + c.MembershipsRemoved, "memberships changed"},
			} {
				if n.count > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", n.count, n.what))
				}
			}
			summary := "nothing changed"
			if len(parts) > 0 {
				summary = strings.Join(parts, ", ")
			}
			return console.PullStatus{
				Running: st.Running, LastEnd: st.LastEnd, Result: st.Result, Summary: summary,
				LastErr: st.LastError, NextRun: st.NextRun, LeaseOff: !st.LeaseHeld,
			}
		},
		SyncNow: func() { s.Trigger() },
	}
}

// ServeHTTP serves the console; it is terminal.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	c.handler.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile reads the portcullis_console directive. Syntax:
//
//	portcullis_console [<prefix>] {
//		tenants <tenant...>
//	}
func (c *Console) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "portcullis_console"
	if d.NextArg() {
		c.Prefix = d.Val()
		if !strings.HasPrefix(c.Prefix, "/") {
			return d.Errf("portcullis_console: %q is not a path prefix such as /portcullis (the tenants go in the block: tenants acme)", c.Prefix)
		}
		if _, err := cleanPathPrefix(c.Prefix); err != nil {
			return d.Errf("portcullis_console: prefix: %v", err)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "tenants":
			if len(c.Tenants) > 0 {
				return d.Err("portcullis_console: tenants is set twice")
			}
			c.Tenants = d.RemainingArgs()
			if len(c.Tenants) == 0 {
				return d.Err("portcullis_console: tenants needs at least one tenant")
			}
		case "logout_url":
			if !d.NextArg() || c.LogoutURL != "" {
				return d.Err("portcullis_console: logout_url takes one path, once")
			}
			c.LogoutURL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("portcullis_console: unrecognized option %q (expected tenants or logout_url)", d.Val())
		}
	}
	if len(c.Tenants) == 0 {
		return d.Err("portcullis_console needs the tenants it manages: portcullis_console /portcullis { tenants acme }")
	}
	return nil
}

// parseConsoleDirective builds the console's route. It is not a handler
// directive: those read a leading path as a matcher, and the console's
// first argument is its prefix (mount it in a handle block instead).
func parseConsoleDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	c := new(Console)
	if err := c.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(nil, c), nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Console)(nil)
	_ caddyhttp.MiddlewareHandler = (*Console)(nil)
	_ caddyfile.Unmarshaler       = (*Console)(nil)
	_ console.Operator            = (*operator.Service)(nil)
)
