package attacktest

import (
	"os"
	"testing"

	// The gateway under attack is the one cmd/caddy builds: Caddy's
	// standard modules plus Portcullis's.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/portcullis/portcullis/caddymodule"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

func TestMain(m *testing.M) {
	gatewaytest.RunChildIfRequested()
	os.Exit(m.Run())
}
