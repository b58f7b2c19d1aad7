package authz

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestStripGatewayCookies checks what of a Cookie header goes on, wherever
// the gateway's cookies sit in it, and that the common layouts (the
// gateway's cookies before or after the app's, or none) cost no
// allocation.
func TestStripGatewayCookies(t *testing.T) {
	owns := func(name string) bool {
		return name == testCookie || strings.HasPrefix(name, testCookie+"_flow_")
	}
	s := testCookie + "=abc"
	flow := testCookie + "_flow_0a1b=x"
	tests := []struct {
		name      string
		lines     []string
		want      []string // nil: no Cookie header left
		allocFree bool
	}{
		{"none of ours", []string{"app=1; theme=dark"}, []string{"app=1; theme=dark"}, true},
		{"ours first", []string{s + "; app=1; theme=dark"}, []string{"app=1; theme=dark"}, true},
		{"ours last", []string{"app=1; theme=dark; " + s}, []string{"app=1; theme=dark"}, true},
		{"ours at both ends", []string{s + "; app=1; theme=dark; " + flow}, []string{"app=1; theme=dark"}, true},
		{"only ours", []string{s + "; " + flow}, nil, true},
		{"ours in the middle", []string{"app=1; " + s + "; theme=dark"}, []string{"app=1; theme=dark"}, false},
		{"between and around", []string{flow + ";app=1;" + s + ";theme=dark;" + s}, []string{"app=1; theme=dark"}, false},
		{"spaced and tabbed", []string{" \t" + s + " ;\tapp=1 ; theme=dark\t"}, []string{"app=1 ; theme=dark"}, true},
		{"name padded with spaces", []string{"app=1; " + testCookie + " =abc"}, []string{"app=1"}, true},
		{"empty pairs kept as sent", []string{"app=1;; theme=dark; " + s}, []string{"app=1;; theme=dark"}, true},
		{"similar names are the app's", []string{"x" + testCookie + "=1; " + testCookie + "x=2"}, []string{"x" + testCookie + "=1; " + testCookie + "x=2"}, true},
		{"two lines", []string{s, "app=1; " + flow}, []string{"app=1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": append([]string(nil), tt.lines...)}
			stripGatewayCookieLines(h, "Cookie", h["Cookie"], owns)
			if fmt.Sprint(h["Cookie"]) != fmt.Sprint(tt.want) || (tt.want == nil && h["Cookie"] != nil) {
				t.Fatalf("Cookie = %q, want %q", h["Cookie"], tt.want)
			}
			// The map-wide form (any key spelling) agrees.
			odd := http.Header{"cookie": append([]string(nil), tt.lines...)}
			stripGatewayCookies(odd, owns)
			if fmt.Sprint(odd["cookie"]) != fmt.Sprint(tt.want) {
				t.Errorf("under key \"cookie\": %q, want %q", odd["cookie"], tt.want)
			}
			if !tt.allocFree {
				return
			}
			lines := make([]string, len(tt.lines))
			h = http.Header{}
			n := testing.AllocsPerRun(50, func() {
				copy(lines, tt.lines)
				h["Cookie"] = lines
				stripGatewayCookieLines(h, "Cookie", h["Cookie"], owns)
			})
			if n != 0 {
				t.Errorf("%v allocations", n)
			}
		})
	}
}
