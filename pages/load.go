package pages

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FallbackName is the file of an operator's template used for every kind
// that has no file of its own.
const FallbackName = "page.html"

// maxTemplateSize bounds a template file: a page, not a site.
const maxTemplateSize = 1 << 20

// Load reads an operator's templates from dir: one html/template file per
// page to replace, named after its Kind ("access_denied.html"), and
// optionally page.html for every other kind. Kinds without a file (and
// without page.html) keep the built-in page. Each template gets a Data as
// its dot. A file with another name, a template that does not parse, or
// one that fails on sample data is an error, so a typo shows at start-up,
// not in front of a user.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pages: templates directory: %w", err)
	}
	known := make(map[string]Kind, len(Kinds))
	for _, k := range Kinds {
		known[string(k)+".html"] = k
	}
	s := &Set{custom: map[Kind]*template.Template{}, dir: dir}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".html") {
			continue
		}
		kind, isKind := known[name]
		if !isKind && name != FallbackName {
			return nil, fmt.Errorf("pages: %s: not a page name; use %s or one of %s", filepath.Join(dir, name), FallbackName, kindFileNames())
		}
		t, err := parseFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if isKind {
			s.custom[kind] = t
		} else {
			s.fallback = t
		}
	}
	if len(s.custom) == 0 && s.fallback == nil {
		return nil, fmt.Errorf("pages: %s holds no page template (%s or one of %s)", dir, FallbackName, kindFileNames())
	}
	for _, k := range Kinds {
		t, custom := s.template(k)
		if !custom {
			continue
		}
		d := sample(k).withDefaults()
		if err := t.Execute(discard{}, &d); err != nil {
			return nil, fmt.Errorf("pages: template for %s: %w", k, err)
		}
	}
	return s, nil
}

func parseFile(path string) (*template.Template, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxTemplateSize+1))
	if err != nil {
		return nil, fmt.Errorf("pages: %s: %w", path, err)
	}
	n := len(buf)
	if n > maxTemplateSize {
		return nil, fmt.Errorf("pages: %s is larger than %d bytes", path, maxTemplateSize)
	}
	t, err := template.New(filepath.Base(path)).Parse(string(buf[:n]))
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	return t, nil
}

func kindFileNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k) + ".html"
	}
	return strings.Join(names, ", ")
}

// sample is a Data with every field set, to try a template on at load.
func sample(k Kind) Data {
	return Data{
		Kind: k, Status: 403, User: &User{Name: "ada", Email: "ada@example.com", DisplayName: "Ada Lovelace"},
		SignedIn: true, RequiredRole: "editor", Role: "viewer", AllowedGroups: []string{"Engineering"},
		Reference: "0123456789abcdef", AppURL: "/", SignInURL: "/sso/login?rd=%2F", SwitchUserURL: "/sso/logout",
		SignOutURL: "/sso/logout", SignOutForm: "/sso/logout", RetryAfter: 30,
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
