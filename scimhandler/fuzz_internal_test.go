package scimhandler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// Fuzz targets of the parsers that read client text: filters and PATCH
// paths. Their seed corpora are in testdata/fuzz/<FuzzName>/ (real Okta
// and Entra ID shapes, the hostile inputs of TestNoClientInputGets5xx, and
// every crasher found so far) and run in every `go test`. To fuzz:
//
//	go test ./scimhandler -run '^$' -fuzz '^FuzzFilter$' -fuzztime 3m -parallel 1

// slowInput is how long one fuzz input may take before the target panics
// (the fuzzer then keeps the input as a crasher): Go's fuzzer does not
// notice an input that hangs, and a filter or path that takes seconds to
// parse is a denial of service. It is far above any real input's cost, so
// a loaded machine does not trip it.
const slowInput = 10 * time.Second

// watchdog panics if stop is not called within slowInput.
func watchdog(what, input string) (stop func() bool) {
	return time.AfterFunc(slowInput, func() {
		panic(fmt.Sprintf("%s took over %v: %.2000q", what, slowInput, input))
	}).Stop
}

// fuzzUserDoc is a user as the handler renders it, with every kind of
// value a filter or a PATCH can meet: strings, numbers (json.Number, as
// decoded), booleans, null, nested objects, multi-valued complex
// attributes, the enterprise extension, an unknown extension and
// attributes outside the schema.
const fuzzUserDoc = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "urn:example:custom:1.0:User"],
	"id": "2819c223-7f76-453a-919d-413861904646",
	"externalId": "00u1abcd",
	"userName": "bjensen@example.com",
	"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara", "middleName": null},
	"displayName": "Babs \"the\" Jensen",
	"nickName": "Babs",
	"title": "Tour Guide",
	"userType": "Employee",
	"preferredLanguage": "en-US",
	"locale": "en-US",
	"timezone": "America/Los_Angeles",
	"active": true,
	"loginCount": 6,
	"score": 2.5e3,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"},
		{"value": "", "type": "other", "primary": false}
	],
	"phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
	"addresses": [{"streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "type": "work", "primary": true}],
	"roles": [],
	"entitlements": [{"value": "ent-1"}],
	"x509Certificates": [{"value": "TUlJRE..."}],
	"groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides", "type": "direct",
		"$ref": "http://127.0.0.1/scim/v2/acme/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984", "costCenter": "4130", "department": "Tour Operations",
		"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
	},
	"urn:example:custom:1.0:User": {"badge": "A1", "level": 3, "tags": ["x", 1, null, {"k": true}]},
	"custom": [1, "x", null, {"a": true}, [2]],
	"meta": {"resourceType": "User", "created": "2024-01-23T04:56:22Z", "lastModified": "2024-05-13T04:42:34Z",
		"version": "W/\"3\"", "location": "http://127.0.0.1/scim/v2/acme/Users/2819c223-7f76-453a-919d-413861904646"}
}`

const fuzzGroupDoc = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
	"displayName": "Tour Guides",
	"externalId": "00g1",
	"members": [
		{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User",
			"$ref": "http://127.0.0.1/scim/v2/acme/Users/2819c223-7f76-453a-919d-413861904646"},
		{"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"},
		{"value": "f648f8d5ea4e4cd38e9c", "type": "Group"}
	],
	"meta": {"resourceType": "Group", "created": "2024-01-23T04:56:22Z", "lastModified": "2024-05-13T04:42:34Z"}
}`

var fuzzDocs = struct {
	once        sync.Once
	user, group map[string]any
}{}

// fuzzDoc returns a fresh copy of a sample document (PATCH changes it in
// place); they are decoded once, as decoding costs more than a PATCH.
func fuzzDoc(t *testing.T, rt *resourceType) map[string]any {
	fuzzDocs.once.Do(func() {
		var errU, errG error
		fuzzDocs.user, errU = decodeStored([]byte(fuzzUserDoc))
		fuzzDocs.group, errG = decodeStored([]byte(fuzzGroupDoc))
		if err := errors.Join(errU, errG); err != nil {
			panic(err)
		}
	})
	if rt == groupResource {
		return cloneDoc(fuzzDocs.group)
	}
	return cloneDoc(fuzzDocs.user)
}

// wantClientError fails unless err is a 400 SCIM error whose scimType is
// one of scimTypes (any RFC 7644 scimType when none are given).
func wantClientError(t *testing.T, what string, err error, scimTypes ...string) {
	t.Helper()
	var se *scimError
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v is not a SCIM error (it would be answered 500)", what, err)
	}
	if se.status != 400 {
		t.Fatalf("%s: status %d, want 400: %v", what, se.status, err)
	}
	if len(scimTypes) == 0 {
		scimTypes = []string{scimTypeUniqueness, scimTypeInvalidFilter, scimTypeInvalidSyntax, scimTypeInvalidValue,
			scimTypeInvalidPath, scimTypeNoTarget, scimTypeMutability, scimTypeTooMany}
	}
	for _, st := range scimTypes {
		if se.scimType == st {
			return
		}
	}
	t.Fatalf("%s: scimType %q, want one of %q: %v", what, se.scimType, scimTypes, err)
}

// filterStore is a tenant on a real Badger store whose users and groups
// are built to trip index lookups: userNames, emails and display names
// that differ only in case (ASCII and not), equal externalIds in other
// cases, an email element without a value, nested groups.
type filterStore struct {
	store storage.Store
	// ids replaces the placeholders {{a}} {{b}} {{c}} (users) and {{g1}}
	// {{g2}} {{g3}} (groups) in inputs, so that seeds reach id,
	// membership and groups lookups.
	ids *strings.Replacer
}

func newFilterStore(f *testing.F) *filterStore {
	bs, err := badgerstore.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = bs.Close() })
	h, err := New(Config{Tenant: "fuzz", Store: bs})
	if err != nil {
		f.Fatal(err)
	}
	token, err := IssueToken(context.Background(), bs, "fuzz", "admin")
	if err != nil {
		f.Fatal(err)
	}
	post := func(endpoint, body string) string {
		req := httptest.NewRequest("POST", "http://127.0.0.1/scim/v2/fuzz/"+endpoint, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var created struct{ ID string }
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &created) != nil {
			f.Fatalf("POST %s %s: %d %s", endpoint, body, rec.Code, rec.Body)
		}
		return created.ID
	}
	a := post("Users", `{"userName":"BJensen@Example.com","externalId":"00u1abcd","displayName":"Babs",
		"name":{"givenName":"Barbara","familyName":"Jensen"},"title":"Tour Guide",
		"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"Babs@Jensen.org","type":"home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours","manager":{"value":"m-1"}}}`)
	b := post("Users", `{"userName":"mandy","externalId":"00U1ABCD","active":false,
		"emails":[{"value":"MANDY@example.com","type":"work"},{"value":"","type":"other"}]}`)
	c := post("Users", `{"userName":"İstanbul","externalId":"","emails":[{"value":"ǅemal@example.com"}],"title":""}`)
	g1 := post("Groups", fmt.Sprintf(`{"displayName":"Tour Guides","externalId":"00g1","members":[{"value":%q},{"value":%q}]}`, a, b))
	g2 := post("Groups", fmt.Sprintf(`{"displayName":"TOUR GUIDES","members":[{"value":%q},{"value":%q}]}`, g1, c))
	g3 := post("Groups", `{"displayName":"ǆ","externalId":"00G1"}`)
	return &filterStore{store: bs, ids: strings.NewReplacer("{{a}}", a, "{{b}}", b, "{{c}}", c,
		"{{g1}}", g1, "{{g2}}", g2, "{{g3}}", g3)}
}

// checkPlan runs text over the tenant's rt resources as a list request
// does, through the index plan when there is one, and by scanning every
// record: both must find the same resources.
func (fs *filterStore) checkPlan(t *testing.T, rt *resourceType, text string) {
	q, err := compileQuery(rt, listParams{filter: text, hasFilter: true})
	if err != nil {
		return
	}
	if _, planned := planFilter(q); !planned {
		return // the list request scans too
	}
	const base = "http://127.0.0.1/scim/v2/fuzz"
	err = fs.store.View(context.Background(), "fuzz", func(tx storage.ReadTx) error {
		_, viaPlan, err := collect(tx, q, base, 0, 1000, nil, 0, nil)
		if err != nil {
			return err
		}
		var viaScan []record
		err = scanRecords(tx, rt, "", func(rec record) (bool, error) {
			doc, err := rec.render(tx, base, filterOpts(q.filter))
			if err == nil && q.filter.match(doc) {
				viaScan = append(viaScan, rec)
			}
			return true, err
		})
		if err != nil {
			return err
		}
		ids := func(rs []record) string {
			var s []string
			for _, r := range rs {
				s = append(s, r.id)
			}
			return strings.Join(s, ",")
		}
		if ids(viaPlan) != ids(viaScan) {
			t.Fatalf("%s filter %q: the index plan finds [%s], a scan finds [%s]", rt.Name, text, ids(viaPlan), ids(viaScan))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzFilter parses a filter for Users and Groups and evaluates it
// against sample documents, and against a real store both through its
// index plan and by a scan. It must never panic, every refusal must be a
// 400 invalidFilter, the plan must find what the scan finds, and the
// shape cache must parse exactly as the parser does.
func FuzzFilter(f *testing.F) {
	fs := newFilterStore(f)
	f.Add(`userName eq "bjensen@example.com"`)
	f.Fuzz(func(t *testing.T, text string) {
		defer watchdog("filter", text)()
		text = fs.ids.Replace(text)
		for _, rt := range resourceTypes {
			cf, err := parseFilter(rt, text)
			if err != nil {
				wantClientError(t, rt.Name+" filter", err, scimTypeInvalidFilter)
				continue
			}
			for _, doc := range []map[string]any{fuzzDoc(t, userResource), fuzzDoc(t, groupResource), {}} {
				cf.match(doc)
			}
			fs.checkPlan(t, rt, text)
		}
		if checkFilterBounds(text) != nil {
			return // never handed to the parser
		}
		rewritten, _ := extractValuePathSubAttrs(text)
		cached, errCached := parseFilterCached(rewritten)
		direct, errDirect := filter.ParseFilterNumber([]byte(rewritten))
		if (errCached == nil) != (errDirect == nil) {
			t.Fatalf("filter %q: cached parse error %v, parser error %v", rewritten, errCached, errDirect)
		}
		if errCached == nil && !reflect.DeepEqual(cached, direct) {
			t.Fatalf("filter %q: cached parse %#v differs from the parser's %#v", rewritten, cached, direct)
		}
	})
}

// fuzzPatchValues are the values FuzzPatchPath applies at each path: one
// of every JSON kind, and the shapes clients send (an email element, a
// list of them, a name object).
var fuzzPatchValues = []any{
	"x", "", json.Number("5"), true, nil,
	map[string]any{"value": "new@example.com", "type": "work", "primary": true},
	[]any{map[string]any{"value": "b@example.com", "type": "home"}, "loose"},
	map[string]any{"givenName": "G", "familyName": nil},
}

// FuzzPatchPath parses a PATCH path for Users and Groups and applies add,
// replace and remove at it to sample documents, then normalises them as
// the handler does before storing. It must never panic, every refusal
// must be a 400 SCIM error, a successful result must encode as JSON, and
// the shape cache must parse exactly as the parser does.
func FuzzPatchPath(f *testing.F) {
	f.Add(`emails[type eq "work"].value`)
	f.Fuzz(func(t *testing.T, path string) {
		defer watchdog("PATCH path", path)()
		for _, rt := range resourceTypes {
			target, err := resolvePatchPath(rt, path)
			if err != nil {
				wantClientError(t, rt.Name+" path", err, scimTypeInvalidPath, scimTypeInvalidFilter, scimTypeMutability)
				continue
			}
			if rt == groupResource && target.ref.isTop("members") {
				continue // the handler edits memberships in the store, not in the document
			}
			for _, op := range []string{opAdd, opReplace, opRemove} {
				for _, v := range fuzzPatchValues {
					doc := fuzzDoc(t, rt)
					err := applyPatchOp(rt, doc, patchOp{op: op, path: path, value: cloneValue(v), hasValue: v != nil})
					if err != nil {
						wantClientError(t, op+" "+rt.Name+" path", err)
						continue
					}
					norm, err := normalizeResource(rt, doc)
					if err != nil {
						wantClientError(t, "normalise after "+op, err)
						continue
					}
					if rt == userResource {
						if _, err := deriveUserFields(norm); err != nil {
							wantClientError(t, "user fields after "+op, err)
						}
					} else if _, _, err := groupFields(norm); err != nil {
						wantClientError(t, "group fields after "+op, err)
					}
					if _, err := marshalResource(rt, norm); err != nil {
						t.Fatalf("%s %q: result does not encode: %v", op, path, err)
					}
				}
			}
		}
		if checkFilterBounds(path) != nil {
			return
		}
		cached, errCached := parsePathCached(path)
		direct, errDirect := filter.ParsePathNumber([]byte(path))
		if (errCached == nil) != (errDirect == nil) {
			t.Fatalf("path %q: cached parse error %v, parser error %v", path, errCached, errDirect)
		}
		if errCached == nil && !reflect.DeepEqual(cached, direct) {
			t.Fatalf("path %q: cached parse %#v differs from the parser's %#v", path, cached, direct)
		}
	})
}
