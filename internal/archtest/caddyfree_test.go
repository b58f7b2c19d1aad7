package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const modulePath = "github.com/portcullis/portcullis"

// mayImportCaddy are the packages allowed to depend on Caddy: the glue, the
// module's root package (the plugin xcaddy builds in), the binaries, and
// the test helper that runs a real Caddy. Everything else is
// core and must not, not even through a dependency or its tests.
func mayImportCaddy(pkg string) bool {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/")
	switch {
	case rel == "caddymodule", rel == "cmd" || strings.HasPrefix(rel, "cmd/"):
		return true
	case rel == "":
		// The module's root package exists so that xcaddy can build it in:
		// its only import is caddymodule, which registers the modules.
		return true
	case rel == "internal/gatewaytest":
		return true
	case rel == "attacktest":
		// Black-box tests through a real Caddy: only tests, no code.
		return true
	}
	return false
}

func isCaddy(imp string) bool {
	return imp == "github.com/caddyserver/caddy/v2" || strings.HasPrefix(imp, "github.com/caddyserver/caddy/v2/")
}

type listedPackage struct {
	ImportPath   string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

// TestCoreIsCaddyFree fails when a package other than caddymodule, cmd/...
// and the Caddy test helpers imports Caddy, directly, through another
// package, or in its tests.
func TestCoreIsCaddyFree(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list the module's packages")
	}
	out, err := exec.Command(goTool, "list", "-json", modulePath+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var checked int
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		checked++
		if mayImportCaddy(p.ImportPath) {
			continue
		}
		for _, dep := range p.Deps {
			if isCaddy(dep) {
				t.Errorf("%s depends on Caddy (%s); only caddymodule, cmd/... and internal/gatewaytest may", p.ImportPath, dep)
				break
			}
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if isCaddy(imp) || imp == modulePath+"/internal/gatewaytest" || imp == modulePath+"/caddymodule" {
				t.Errorf("the tests of %s import %s; core packages are tested with net/http/httptest", p.ImportPath, imp)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list listed only %d packages; the check would prove nothing", checked)
	}
}

// TestCaddyCheckSeesAnImport is the control: the rule above does flag a
// package whose dependencies include Caddy.
func TestCaddyCheckSeesAnImport(t *testing.T) {
	for _, c := range []struct {
		pkg  string
		deps []string
		want bool
	}{
		{modulePath + "/authz", []string{"net/http", "github.com/caddyserver/caddy/v2/modules/caddyhttp"}, true},
		{modulePath + "/authz", []string{"net/http"}, false},
		{modulePath + "/caddymodule", []string{"github.com/caddyserver/caddy/v2"}, false},
		{modulePath + "/cmd/caddy", []string{"github.com/caddyserver/caddy/v2"}, false},
		{modulePath, []string{"github.com/caddyserver/caddy/v2"}, false},
		{modulePath + "/storage/badgerstore", []string{"github.com/caddyserver/caddy/v2"}, true},
	} {
		flagged := false
		if !mayImportCaddy(c.pkg) {
			for _, d := range c.deps {
				if isCaddy(d) {
					flagged = true
				}
			}
		}
		if flagged != c.want {
			t.Errorf("%s with %v: flagged %v, want %v", c.pkg, c.deps, flagged, c.want)
		}
	}
}
