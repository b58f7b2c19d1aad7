package scimhandler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, func(c *scimhandler.Config) { c.MaxBodyBytes = 4096 })
	id := e.createUser("alice")
	big := `{"userName":"big","title":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name, method, path string
		body               string
		headers            []string
		status             int
		scimType           string
	}{
		{"body over the limit", "POST", "/Users", big, nil, http.StatusRequestEntityTooLarge, ""},
		{"body over the limit without length", "POST", "/Users", big, []string{"Transfer-Encoding", "chunked"}, http.StatusRequestEntityTooLarge, ""},
		{"PATCH over the limit", "PATCH", "/Users/" + id, `{"Operations":[{"op":"add","path":"title","value":"` + strings.Repeat("x", 5000) + `"}]}`, nil, http.StatusRequestEntityTooLarge, ""},
		{"plain text", "POST", "/Users", `{"userName":"x"}`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, ""},
		{"application/json accepted", "POST", "/Users", `{"userName":"json"}`, []string{"Content-Type", "application/json; charset=utf-8"}, http.StatusCreated, ""},
		{"malformed JSON", "POST", "/Users", `{"userName":`, nil, http.StatusBadRequest, "invalidSyntax"},
		{"trailing data", "POST", "/Users", `{"userName":"a"} {}`, nil, http.StatusBadRequest, "invalidSyntax"},
		{"not an object", "POST", "/Users", `["userName"]`, nil, http.StatusBadRequest, "invalidSyntax"},
		{"empty body", "POST", "/Users", ``, nil, http.StatusBadRequest, "invalidSyntax"},
		{"missing userName", "POST", "/Users", `{"displayName":"x"}`, nil, http.StatusBadRequest, "invalidValue"},
		{"userName wrong type", "POST", "/Users", `{"userName":true}`, nil, http.StatusBadRequest, "invalidValue"},
		{"active wrong type", "POST", "/Users", `{"userName":"a2","active":"perhaps"}`, nil, http.StatusBadRequest, "invalidValue"},
		{"emails wrong type", "POST", "/Users", `{"userName":"a3","emails":[42]}`, nil, http.StatusBadRequest, "invalidValue"},
		{"schemas wrong type", "POST", "/Users", `{"userName":"a4","schemas":"urn:x"}`, nil, http.StatusBadRequest, "invalidSyntax"},
		{"password wrong type", "POST", "/Users", `{"userName":"a5","password":42}`, nil, http.StatusBadRequest, "invalidValue"},
		{"long password accepted (discarded)", "POST", "/Users", `{"userName":"a6","password":"` + strings.Repeat("p", 80) + `"}`, nil, http.StatusCreated, ""},
		{"group without displayName", "POST", "/Groups", `{"members":[]}`, nil, http.StatusBadRequest, "invalidValue"},
		{"unknown user", "GET", "/Users/nope", ``, nil, http.StatusNotFound, ""},
		{"unknown group", "PATCH", "/Groups/nope", `{"Operations":[{"op":"add","path":"displayName","value":"x"}]}`, nil, http.StatusNotFound, ""},
		{"over-long id", "GET", "/Users/" + strings.Repeat("a", 300), ``, nil, http.StatusNotFound, ""},
		{"unknown endpoint", "GET", "/Devices", ``, nil, http.StatusNotFound, ""},
		{"base URL itself", "GET", "/", ``, nil, http.StatusNotFound, ""},
		{"POST on a resource", "POST", "/Users/" + id, `{}`, nil, http.StatusMethodNotAllowed, ""},
		{"DELETE on the collection", "DELETE", "/Users", ``, nil, http.StatusMethodNotAllowed, ""},
		{"Bulk", "POST", "/Bulk", `{"Operations":[]}`, nil, http.StatusNotImplemented, ""},
		{"Me", "GET", "/Me", ``, nil, http.StatusNotImplemented, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.status < 400 {
				return
			}
			if r.header.Get("Content-Type") != "application/scim+json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			b := r.obj(t)
			if path(b, "schemas", 0) != "urn:ietf:params:scim:api:messages:2.0:Error" || b["status"] != strconv.Itoa(tt.status) {
				t.Errorf("error body %s", r.body)
			}
			if tt.scimType != "" && b["scimType"] != tt.scimType {
				t.Errorf("scimType %v, want %s", b["scimType"], tt.scimType)
			}
			if tt.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

// conflictingStore is the real store as it answers once its transaction
// retries are exhausted: storage.ErrConflict, with nothing written.
type conflictingStore struct{ storage.Store }

func (conflictingStore) Update(context.Context, string, func(storage.Tx) error) error {
	return storage.ErrConflict
}

func TestConflictIsRetryable(t *testing.T) {
	e := newEnv(t)
	h, err := scimhandler.New(scimhandler.Config{Tenant: tenant, Store: conflictingStore{e.badger}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/scim/v2/acme/Users", strings.NewReader(`{"userName":"x"}`))
	req.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

func TestBaseURL(t *testing.T) {
	// Configured base URL.
	e := newEnv(t, func(c *scimhandler.Config) { c.BaseURL = "https://gw.example.com/scim/v2/acme/" })
	r := e.want(e.do("POST", "/Users", `{"userName":"a"}`), http.StatusCreated)
	id := str(r.obj(t)["id"])
	if r.header.Get("Location") != "https://gw.example.com/scim/v2/acme/Users/"+id {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	// Derived from a TLS request and a tenant named like an endpoint.
	h, err := scimhandler.New(scimhandler.Config{Tenant: tenant, Store: e.badger})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/Users/", h)
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	te := &testEnv{t: t, badger: e.badger, token: e.token, base: srv.URL + "/scim/v2/Users", client: srv.Client()}
	doc := te.want(te.do("GET", "/Users/"+id, nil), http.StatusOK).obj(t)
	if got := str(path(doc, "meta", "location")); got != srv.URL+"/scim/v2/Users/Users/"+id || !strings.HasPrefix(got, "https://") {
		t.Errorf("meta.location %q", got)
	}
	for _, bad := range []string{"gw.example.com/scim", "ftp://x/y", "https://x/y?q=1", "::"} {
		if _, err := scimhandler.New(scimhandler.Config{Tenant: tenant, Store: e.badger, BaseURL: bad}); err == nil {
			t.Errorf("BaseURL %q accepted", bad)
		}
	}
	if _, err := scimhandler.New(scimhandler.Config{Store: e.badger}); err == nil {
		t.Error("empty tenant accepted")
	}
}
