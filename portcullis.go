// Package portcullis is what xcaddy builds in: importing it registers every
// Portcullis module with Caddy (the portcullis app, the scim, sso, identity
// and identity_jwks handlers, the Badger storage, the admin API routes and
// the "caddy portcullis" subcommands), so that
//
//	xcaddy build --with github.com/portcullis/portcullis
//
// makes a Caddy with Portcullis, as for any other Caddy plugin. The glue
// itself lives in package caddymodule; this package only names it at the
// module's root, where xcaddy looks for a plugin.
package portcullis

import (
	// Registers the Portcullis modules, Caddyfile directives and
	// subcommands in its init functions.
	_ "github.com/portcullis/portcullis/caddymodule"
)
