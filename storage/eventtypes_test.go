package storage_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestEventTypesAreListed: every Event* constant of storage.go is in
// storage.EventTypes (which the CLI and admin API check filters against),
// and the README's table lists each with the same meaning.
func TestEventTypesAreListed(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "storage.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{} // value -> constant name
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Event") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				consts[v] = name.Name
			}
		}
	}
	if len(consts) < 19 {
		t.Fatalf("found only %d Event constants: %v", len(consts), consts)
	}
	listed := map[string]bool{}
	for _, e := range storage.EventTypes {
		if listed[e.Type] {
			t.Errorf("%s listed twice", e.Type)
		}
		listed[e.Type] = true
		if _, ok := consts[e.Type]; !ok {
			t.Errorf("EventTypes lists %q, which is no Event constant", e.Type)
		}
		if e.Meaning == "" {
			t.Errorf("%s has no meaning", e.Type)
		}
	}
	for v, name := range consts {
		if !listed[v] || !storage.IsEventType(v) {
			t.Errorf("%s (%q) is missing from storage.EventTypes", name, v)
		}
	}
	if storage.IsEventType("user.create") {
		t.Error("IsEventType accepts a misspelling")
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range storage.EventTypes {
		if row := "| `" + e.Type + "` | " + e.Meaning + " |"; !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %s", row)
		}
	}
}
