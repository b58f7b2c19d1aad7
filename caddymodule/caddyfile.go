package caddymodule

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("portcullis", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("scim", parseSCIMDirective)
	// The SCIM endpoint answers requests itself, like reverse_proxy, so it
	// sits with the other terminal handlers.
	httpcaddyfile.RegisterDirectiveOrder("scim", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobalOption sets up the portcullis app from the global options
// block. Syntax:
//
//	portcullis {
//		storage <backend> [<args...>]   # e.g. storage badger ./portcullis-data
//		tenant <name> [{
//			# tenant settings (none yet)
//		}]
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the portcullis global option may appear only once")
	}
	app := new(App)
	d.Next() // "portcullis"
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := make(map[string]bool)
	var sawStorage bool
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if sawStorage {
				return nil, d.Err("storage is set twice")
			}
			sawStorage = true
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			backend := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "portcullis.storage."+backend)
			if err != nil {
				return nil, err
			}
			app.StorageRaw = caddyconfig.JSONModuleObject(unm, "backend", backend, nil)

		case "tenant":
			t, err := parseTenant(d)
			if err != nil {
				return nil, err
			}
			if seen[t.Name] {
				return nil, d.Errf("tenant %q is configured twice", t.Name)
			}
			seen[t.Name] = true
			app.Tenants = append(app.Tenants, t)

		default:
			return nil, d.Errf("unrecognized portcullis option %q (expected storage or tenant)", d.Val())
		}
	}
	raw, err := json.Marshal(app)
	if err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "portcullis", Value: raw}, nil
}

// parseTenant reads one tenant, the dispenser being on "tenant". Syntax:
//
//	tenant <name> [{
//	}]
//
// Settings of later capabilities (sign-in, roles) become cases here.
func parseTenant(d *caddyfile.Dispenser) (*Tenant, error) {
	if !d.NextArg() {
		return nil, d.Err("tenant needs a name")
	}
	t := &Tenant{Name: d.Val()}
	if err := CheckTenantName(t.Name); err != nil {
		return nil, d.Err(err.Error())
	}
	if d.NextArg() {
		return nil, d.Errf("tenant %s: unexpected argument %q (settings go in a block)", t.Name, d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		// Later capabilities add their tenant settings as cases here.
		default:
			return nil, d.Errf("tenant %s: unrecognized option %q", t.Name, d.Val())
		}
	}
	return t, nil
}

// parseSCIMDirective sets up the scim handler. Syntax:
//
//	scim [<matcher>] <tenant> [{
//		base_url <url>
//	}]
func parseSCIMDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(SCIM)
	if err := s.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return s, nil
}

// UnmarshalCaddyfile reads the scim directive (see parseSCIMDirective).
func (s *SCIM) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "scim"
	if !d.NextArg() {
		return d.Err("scim needs the tenant name, e.g. scim acme")
	}
	s.Tenant = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "base_url":
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.BaseURL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("scim: unrecognized option %q (expected base_url)", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*SCIM)(nil)
)
