// Command caddy is Caddy with the Portcullis modules built in: the
// standard Caddy modules plus the portcullis app, the scim, sso, identity
// and identity_jwks handlers, the /portcullis/ admin API routes and the
// "caddy portcullis" subcommands. It imports the module's root package,
// the very plugin xcaddy builds in, so xcaddy.json describes the same
// build for xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/portcullis/portcullis"
)

func main() {
	caddycmd.Main()
}
