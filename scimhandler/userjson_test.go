package scimhandler

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestUserJSONMatchesGenericPath checks that the spliced user document of
// a page (userJSON) is byte for byte what renderUser and marshalResource
// write, and that it splices what the handler itself stores.
func TestUserJSONMatchesGenericPath(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.FixedZone("x", 3600))
	engineering := &storage.Group{ID: "g-1", DisplayName: "Engineering"}
	rnd := &storage.Group{ID: "g-2", DisplayName: "R&D <core> \"ünïcode\" 日本"}
	handlerStored := func(doc map[string]any) []byte {
		raw, err := marshalDoc(doc)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name       string
		user       storage.User
		attrs      []byte
		groups     []*storage.Group
		base       string
		wantSplice bool
	}{
		{name: "no attributes", user: storage.User{UserName: "a@example.com", Active: true}, wantSplice: true},
		{name: "null attributes", attrs: []byte("null"), user: storage.User{UserName: "a", Emails: []string{"a@x", "b@x"}}, wantSplice: true},
		{name: "empty object", attrs: []byte("{}"), user: storage.User{UserName: "a", ExternalID: "ext-1", DisplayName: "A"}, wantSplice: true},
		{name: "name and emails with groups", groups: []*storage.Group{engineering, rnd}, wantSplice: true,
			user: storage.User{UserName: "user1@example.com", Emails: []string{"user1@example.com"}, Active: true},
			attrs: handlerStored(map[string]any{
				"name":   map[string]any{"givenName": "User", "familyName": "One"},
				"emails": []any{map[string]any{"value": "user1@example.com", "type": "work", "primary": true}},
			})},
		{name: "typed fields win over stored ones", wantSplice: true,
			user: storage.User{UserName: "typed", DisplayName: "Typed", Active: false},
			attrs: handlerStored(map[string]any{"userName": "stored", "displayName": "Stored", "active": true,
				"externalId": "stored-ext", "id": "x", "meta": map[string]any{}, "groups": []any{}, "password": "p", "schemas": []any{"s"}})},
		{name: "enterprise extension and numbers", groups: []*storage.Group{engineering}, wantSplice: true,
			user:  storage.User{UserName: "e", Active: true, ExternalID: "E-1"},
			attrs: []byte(`{"nickName":"Ned","timezone":"Europe/Paris","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130","employeeNumber":"701984","manager":{"value":"m-1"}},"x-level":-1.50e+3,"x-list":[1,0,true,false,null,[],{}]}`)},
		{name: "unknown extension object and null known extension", wantSplice: true,
			user:  storage.User{UserName: "u", Active: true},
			attrs: []byte(`{"urn:example:a":"not an object","urn:example:b":{"k":"v"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":null}`)},
		{name: "unicode", wantSplice: true, base: "https://gw.example/scim/v2",
			user:  storage.User{UserName: "zoë@例え.jp", DisplayName: "Zoë 例え", Active: true, Emails: []string{"zoë@例え.jp"}},
			attrs: []byte(`{"name":{"formatted":"Zoë Ünïcødé 例え 🎉"},"title":"Ingénieure"}`)},
		{name: "escapes in typed fields", groups: []*storage.Group{rnd}, base: "https://gw.example/a&b",
			user: storage.User{ID: "id\"<>", UserName: "a<b>&c\"d\\e\u2028\n", DisplayName: "\x01", Active: true}, wantSplice: true},
		{name: "html escapes stored by marshalDoc", user: storage.User{UserName: "h"},
			attrs: handlerStored(map[string]any{"title": "R&D <lead>"})},
		{name: "escaped string", user: storage.User{UserName: "h"}, attrs: []byte(`{"title":"a\"b"}`)},
		{name: "whitespace", user: storage.User{UserName: "w"}, attrs: []byte(" {\n\t\"title\" : \"a\" , \"x\":[ 1 , { } , [ ] ] }\r\n"), wantSplice: true},
		{name: "unsorted keys", user: storage.User{UserName: "s"}, wantSplice: true,
			attrs: []byte(`{"name":{"givenName":"Scale","familyName":"User 7"},"emails":[{"value":"u7@x","type":"work","primary":true}]}`)},
		{name: "duplicate nested keys", user: storage.User{UserName: "s"}, wantSplice: true,
			attrs: []byte(`{"name":{"z":1,"a":2,"z":3,"a":{"b":1,"b":2}}}`)},
		{name: "duplicate keys", user: storage.User{UserName: "d"}, attrs: []byte(`{"title":"a","title":"b"}`)},
		{name: "key differing in case from a typed one", user: storage.User{UserName: "c"}, attrs: []byte(`{"USERNAME":"x"}`)},
		{name: "extension in another case", user: storage.User{UserName: "c"},
			attrs: []byte(`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user":{"department":"x"}}`)},
		{name: "stored emails win over typed", user: storage.User{UserName: "m", Emails: []string{"typed@x"}}, wantSplice: true,
			attrs: []byte(`{"emails":[{"primary":true,"value":"stored@x"}]}`)},
		{name: "not an object", user: storage.User{UserName: "n"}, attrs: []byte(`[1]`)},
		{name: "invalid JSON", user: storage.User{UserName: "n"}, attrs: []byte(`{"a":`)},
		{name: "trailing data", user: storage.User{UserName: "n"}, attrs: []byte(`{"a":1}x`)},
		{name: "invalid number", user: storage.User{UserName: "n"}, attrs: []byte(`{"a":01}`)},
		{name: "invalid UTF-8", user: storage.User{UserName: "n"}, attrs: []byte("{\"a\":\"\xff\"}")},
	}
	var w userJSON
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.user
			if u.ID == "" {
				u.ID = "2f1c9d3e-0000-4000-8000-00000000000" + string(rune('a'+i%6))
			}
			u.Attributes, u.Created, u.Version = tt.attrs, created, int64(i+1)
			if i%2 == 0 {
				u.Modified = created.Add(time.Hour)
			}
			base := tt.base
			if base == "" {
				base = "http://127.0.0.1:8080/scim/v2"
			}
			o := renderOpts{groups: true, groupsOf: map[string][]*storage.Group{u.ID: tt.groups}}
			doc, err := renderUser(nil, &u, base, o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := marshalResource(userResource, doc)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("prefix")
			got, ok := w.appendUser(prefix, &u, base, tt.groups)
			if ok != tt.wantSplice {
				t.Errorf("spliced = %v, want %v", ok, tt.wantSplice)
			}
			if !ok {
				if string(got) != "prefix" {
					t.Errorf("wrote %q without splicing", got)
				}
				return
			}
			if string(got[len(prefix):]) != string(want) {
				t.Errorf("spliced:\n%s\ngeneric:\n%s", got[len(prefix):], want)
			}
		})
	}
}

// FuzzUserJSON: whatever the stored attributes, a spliced document is the
// generic one.
func FuzzUserJSON(f *testing.F) {
	for _, seed := range []string{``, `null`, `{}`, `{"name":{"familyName":"b","givenName":"a"}}`,
		`{"emails":[{"primary":true,"value":"x@y"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}`,
		`{"a":-0.5e-3,"b":[true,null,"ü"]}`, `{"urn:x:y":{"k":1}}`, ` { "b" : {"z":1,"a":[ {"y":2,"x":1} ]}, "a":2 } `} {
		f.Add([]byte(seed), "user", "Group <1>")
	}
	var w userJSON
	f.Fuzz(func(t *testing.T, attrs []byte, userName, groupName string) {
		u := storage.User{ID: "id-1", UserName: userName, Active: true, Emails: []string{userName},
			Attributes: attrs, Created: time.Unix(1700000000, 5).UTC(), Version: 3}
		groups := []*storage.Group{{ID: "g-1", DisplayName: groupName}}
		got, ok := w.appendUser(nil, &u, "http://127.0.0.1/scim/v2", groups)
		if !ok {
			return
		}
		doc, err := renderUser(nil, &u, "http://127.0.0.1/scim/v2", renderOpts{groups: true, groupsOf: map[string][]*storage.Group{u.ID: groups}})
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalResource(userResource, doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("attributes %q:\nspliced %s\ngeneric %s", attrs, got, want)
		}
	})
}
