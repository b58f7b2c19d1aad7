package main

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestXcaddyDescribesThisBuild keeps xcaddy.json in step with main.go and
// go.mod: the same Caddy version and the same Portcullis packages.
func TestXcaddyDescribesThisBuild(t *testing.T) {
	raw, err := os.ReadFile("../../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var build struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			Package string `json:"package"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &build); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}

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
		if strings.HasPrefix(path, "github.com/portcullis/portcullis/") {
			imported = append(imported, path)
		}
	}
	for _, p := range build.Plugins {
		described = append(described, p.Package)
	}
	slices.Sort(imported)
	slices.Sort(described)
	if !slices.Equal(imported, described) {
		t.Errorf("main.go imports %v; xcaddy.json builds %v", imported, described)
	}
}
