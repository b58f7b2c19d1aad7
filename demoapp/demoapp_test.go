package demoapp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/authz"
)

func TestWhoami(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	defer srv.Close()

	tests := []struct {
		name    string
		headers map[string]string
		want    Whoami
	}{
		{
			name: "signed in",
			headers: map[string]string{
				HeaderUser: "alice@example.com", HeaderEmail: "alice@example.com", HeaderName: "Alice Example",
				HeaderGroups: authz.EncodeGroups([]string{"Engineering", "R&D, Europe", `say "hi"`}),
				HeaderRole:   "editor", HeaderAssertion: "eyJhbGciOiJFUzI1NiJ9.e30.sig",
			},
			want: Whoami{
				SignedIn: true, User: "alice@example.com", Email: "alice@example.com", Name: "Alice Example",
				Groups: []string{"Engineering", "R&D, Europe", `say "hi"`}, Role: "editor", Assertion: true,
			},
		},
		{
			name:    "no groups",
			headers: map[string]string{HeaderUser: "bob", HeaderRole: "viewer"},
			want:    Whoami{SignedIn: true, User: "bob", Groups: []string{}, Role: "viewer"},
		},
		{
			name:    "undecodable groups",
			headers: map[string]string{HeaderUser: "bob", HeaderGroups: `a, "unterminated`},
			want:    Whoami{SignedIn: true, User: "bob", Groups: []string{}, GroupsError: "x"},
		},
		{
			name: "not through the gateway",
			want: Whoami{Groups: []string{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/whoami.json", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
			}
			var got Whoami
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if (got.GroupsError != "") != (tc.want.GroupsError != "") {
				t.Errorf("groupsError %q", got.GroupsError)
			}
			got.GroupsError, tc.want.GroupsError = "", ""
			if !slices.Equal(got.Groups, tc.want.Groups) {
				t.Errorf("groups %q, want %q", got.Groups, tc.want.Groups)
			}
			got.Groups, tc.want.Groups = nil, nil
			if len(got.Headers) != len(tc.headers) {
				t.Errorf("raw headers %v, sent %v", got.Headers, tc.headers)
			}
			if a, ok := got.Headers[HeaderAssertion]; ok && strings.Contains(a, "eyJ") {
				t.Errorf("the assertion itself is echoed: %q", a)
			}
			got.Headers, got.Path = nil, ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPage(t *testing.T) {
	srv := httptest.NewServer(New(Config{SignOutPath: "/auth/logout"}))
	defer srv.Close()

	get := func(path string, headers map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
		}
		return resp.StatusCode, string(b)
	}

	tests := []struct {
		name    string
		path    string
		headers map[string]string
		want    []string
		notWant []string
	}{
		{
			name: "signed in",
			path: "/reports?q=1",
			headers: map[string]string{
				HeaderUser: "alice@example.com", HeaderName: "Alice <b>Example</b>",
				HeaderGroups: `"R&D, Europe", Engineering`, HeaderRole: "admin",
			},
			want: []string{
				`<span class="role" id="role">admin</span>`, "Alice &lt;b&gt;Example&lt;/b&gt;",
				"R&amp;D, Europe<br>Engineering", `action="/auth/logout"`, `id="sign-out"`,
				`<td id="assertion">not sent</td>`, "/reports?q=1",
			},
			notWant: []string{"<b>Example</b>"},
		},
		{
			name:    "assertion present",
			path:    "/",
			headers: map[string]string{HeaderUser: "bob", HeaderAssertion: "x.y.z"},
			want:    []string{`<td id="assertion">present`, `<span class="role" id="role">(none)</span>`},
		},
		{
			name:    "no identity",
			path:    "/",
			want:    []string{"No identity headers"},
			notWant: []string{`id="sign-out"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(tc.path, tc.headers)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}
