package caddymodule

import (
	"os"
	"testing"

	// The gateway the tests run is the one cmd/caddy builds: Caddy's
	// standard modules plus this package.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

func TestMain(m *testing.M) {
	// Child gateways and CLI runs re-execute this test binary as caddy.
	gatewaytest.RunChildIfRequested()
	os.Exit(m.Run())
}
