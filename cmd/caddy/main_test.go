package main

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

const modulePath = "github.com/portcullis/portcullis"

// xcaddyBuild is xcaddy.json, what .ci/xcaddy-build feeds to xcaddy.
type xcaddyBuild struct {
	CaddyVersion string `json:"caddy_version"`
	Plugins      []struct {
		Package string `json:"package"`
		Version string `json:"version"`
		Replace string `json:"replace"`
	} `json:"plugins"`
	Modules []string `json:"modules"`
}

func readXcaddyBuild(t *testing.T) xcaddyBuild {
	t.Helper()
	raw, err := os.ReadFile("../../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var build xcaddyBuild
	if err := json.Unmarshal(raw, &build); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	return build
}

// TestXcaddyDescribesThisBuild keeps xcaddy.json in step with main.go and
// go.mod: the same Caddy version and the same Portcullis packages, each
// replaced by this checkout (the module proxy does not know the module).
func TestXcaddyDescribesThisBuild(t *testing.T) {
	build := readXcaddyBuild(t)

	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	var caddyVersion string
	for _, dep := range info.Deps {
		if dep.Path == "github.com/caddyserver/caddy/v2" {
			caddyVersion = dep.Version
		}
	}
	if build.CaddyVersion != caddyVersion {
		t.Errorf("xcaddy.json builds Caddy %s; go.mod has %s", build.CaddyVersion, caddyVersion)
	}

	file, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var imported, described []string
	for _, imp := range file.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path == modulePath || strings.HasPrefix(path, modulePath+"/") {
			imported = append(imported, path)
		}
	}
	for _, p := range build.Plugins {
		described = append(described, p.Package)
		if p.Replace == "" || p.Version == "" {
			t.Errorf("xcaddy.json: plugin %s needs a replace and a version: CI builds from the checkout, without asking the module proxy", p.Package)
			continue
		}
		// The replacement is relative to the repository root and must be
		// the module the plugin belongs to.
		gomod, err := os.ReadFile(filepath.Join("../..", p.Replace, "go.mod"))
		if err != nil {
			t.Errorf("xcaddy.json: plugin %s: replace %q: %v", p.Package, p.Replace, err)
			continue
		}
		if mod := goModulePath(gomod); p.Package != mod && !strings.HasPrefix(p.Package, mod+"/") {
			t.Errorf("xcaddy.json: plugin %s is replaced by %q, which holds module %s", p.Package, p.Replace, mod)
		}
	}
	slices.Sort(imported)
	slices.Sort(described)
	if !slices.Equal(imported, described) {
		t.Errorf("main.go imports %v; xcaddy.json builds %v", imported, described)
	}
}

// goModulePath is the module path a go.mod declares.
func goModulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// TestXcaddyListsEveryModule keeps xcaddy.json's module list, which
// .ci/xcaddy-build expects "caddy list-modules" of the xcaddy build to
// show, equal to the Caddy modules this build registers from Portcullis
// packages.
func TestXcaddyListsEveryModule(t *testing.T) {
	build := readXcaddyBuild(t)
	var registered []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(info.New())
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if pkg := typ.PkgPath(); pkg == modulePath || strings.HasPrefix(pkg, modulePath+"/") {
			registered = append(registered, id)
		}
	}
	if len(registered) == 0 {
		t.Fatal("no Portcullis module is registered: the check would prove nothing")
	}
	slices.Sort(registered)
	described := slices.Sorted(slices.Values(build.Modules))
	if !slices.Equal(registered, described) {
		t.Errorf("this build registers the Portcullis modules\n%s\nxcaddy.json lists\n%s",
			strings.Join(registered, "\n"), strings.Join(described, "\n"))
	}
}
