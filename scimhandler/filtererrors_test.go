package scimhandler_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFilterErrorsOverHTTP: a bad filter (query string or .search body)
// or PATCH path is answered 400 with a detail in the client's terms; no
// parser internals or replacement characters reach the client.
func TestFilterErrorsOverHTTP(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("alice")
	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		scimType string
		detail   string
	}{
		{"missing value", "GET", "/Users?filter=" + q(`userName eq`), nil,
			"invalidFilter", "filter: expected a value after 'eq' at position 12"},
		{"unknown operator on Groups", "GET", "/Groups?filter=" + q(`displayName like "Eng"`), nil,
			"invalidFilter", "filter: unknown operator 'like'; expected eq, ne, co, sw, ew, gt, ge, lt, le or pr at position 13"},
		{"invalid UTF-8", "GET", "/Users?filter=" + q("userName eq \"a\" \xff\xfe"), nil,
			"invalidFilter", `filter: unexpected '\xff'; expected 'and', 'or' or the end of the filter at position 17`},
		{"search body", "POST", "/Users/.search", `{"filter":"(userName eq \"a\""}`,
			"invalidFilter", "filter: unbalanced '(': the '(' at position 1 is never closed at position 17"},
		{"PATCH path", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"emails[type eq \"work\"","value":"x"}]}`,
			"invalidPath", "path: unbalanced '[': the '[' at position 7 is never closed at position 22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.want(e.do(tt.method, tt.path, tt.body), http.StatusBadRequest)
			b := r.obj(t)
			if b["scimType"] != tt.scimType || str(b["detail"]) != tt.detail {
				t.Errorf("got %s\nwant %s %q", r.body, tt.scimType, tt.detail)
			}
			if strings.ContainsRune(string(r.body), '\uFFFD') || strings.Contains(string(r.body), `\ufffd`) {
				t.Errorf("replacement character in %s", r.body)
			}
		})
	}
}
