package scimhandler

import (
	"encoding/json"
	"errors"
	"testing"
)

func mustDoc(t *testing.T, s string) map[string]any {
	t.Helper()
	d, err := decodeStored([]byte(s))
	if err != nil {
		t.Fatalf("bad test document %s: %v", s, err)
	}
	return d
}

func docJSON(t *testing.T, d map[string]any) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// patchUserDoc runs the PATCH pipeline of the handler on a user document:
// parse, apply, normalise.
func patchUserDoc(t *testing.T, doc map[string]any, body string) (map[string]any, error) {
	t.Helper()
	ops, err := parsePatchBody(mustDoc(t, body))
	if err != nil {
		return nil, err
	}
	if err := applyPatch(userResource, doc, ops); err != nil {
		return nil, err
	}
	return normalizeResource(userResource, doc)
}

const patchBase = `{"userName":"bjensen","active":true,
	"name":{"givenName":"Barbara","familyName":"Jensen"},
	"emails":[{"value":"b@work.example","type":"work","primary":true},{"value":"b@home.example","type":"home"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"}}`

func TestApplyPatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // the whole resulting document
	}{
		{
			name: "Entra Replace active with a string boolean",
			body: `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			want: `{"active":false,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "Okta replace without path",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			want: `{"active":false,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "Entra no path with dotted and URN keys",
			body: `{"Operations":[{"op":"replace","value":{"displayName":"Babs","name.givenName":"Barb","name.familyName":"J","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Sales"}}]}`,
			want: `{"active":true,"displayName":"Babs","emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"J","givenName":"Barb"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"42"},"userName":"bjensen"}`,
		},
		{
			name: "value filter with sub-attribute",
			body: `{"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@work.example"},{"op":"Replace","path":"name.familyName","value":"Updated"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"new@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Updated","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "value filter matching nothing adds an element from its eq terms",
			body: `{"Operations":[{"op":"replace","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0100"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"phoneNumbers":[{"type":"mobile","value":"+1 555 0100"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "add to multi-valued appends, new primary wins",
			body: `{"Operations":[{"op":"add","path":"emails","value":[{"value":"c@other.example","type":"other","primary":"True"}]}]}`,
			want: `{"active":true,"emails":[{"primary":false,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"},{"primary":true,"type":"other","value":"c@other.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "add of a value already there changes nothing",
			body: `{"Operations":[{"op":"add","path":"emails","value":[{"value":"b@home.example","type":"home"}]}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "remove with a value filter",
			body: `{"Operations":[{"op":"remove","path":"emails[type eq \"home\"]"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "remove with a value list removes only those",
			body: `{"Operations":[{"op":"Remove","path":"emails","value":[{"value":"B@WORK.example"}]}]}`,
			want: `{"active":true,"emails":[{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "remove a sub-attribute and a whole extension",
			body: `{"Operations":[{"op":"remove","path":"name.givenName"},{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen"},"userName":"bjensen"}`,
		},
		{
			name: "remove the last extension attribute drops the extension",
			body: `{"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"userName":"bjensen"}`,
		},
		{
			name: "Entra manager as a bare id",
			body: `{"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"mgr-1"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours","manager":{"value":"mgr-1"}},"userName":"bjensen"}`,
		},
		{
			name: "whole extension object in a no-path value merges",
			body: `{"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130"},"nickName":"Babs","id":"ignored","groups":[{"value":"x"}]}}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"nickName":"Babs","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130","department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "replace a complex attribute merges its sub-attributes",
			body: `{"Operations":[{"op":"replace","path":"name","value":{"middleName":"Jane"}}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara","middleName":"Jane"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "replace with null unassigns, attribute names any case",
			body: `{"Operations":[{"op":"REPLACE","path":"NAME.GIVENNAME","value":null},{"op":"add","path":"Title","value":"Guide"}]}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen"},"title":"Guide","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
		{
			name: "attributes beyond the schema are kept",
			body: `{"Operations":[{"op":"add","path":"costCode","value":7},{"op":"add","value":{"urn:example:custom:1.0:User":{"badge":"A1"}}}]}`,
			want: `{"active":true,"costCode":7,"emails":[{"primary":true,"type":"work","value":"b@work.example"},{"type":"home","value":"b@home.example"}],"name":{"familyName":"Jensen","givenName":"Barbara"},"urn:example:custom:1.0:User":{"badge":"A1"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"},"userName":"bjensen"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := patchUserDoc(t, mustDoc(t, patchBase), tt.body)
			if err != nil {
				t.Fatalf("patch: %v", err)
			}
			if g, w := docJSON(t, got), docJSON(t, mustDoc(t, tt.want)); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestApplyPatchErrors(t *testing.T) {
	tests := []struct {
		name, body, scimType string
	}{
		{"no operations", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, scimTypeInvalidSyntax},
		{"empty operations", `{"Operations":[]}`, scimTypeInvalidSyntax},
		{"operations not a list", `{"Operations":{"op":"add"}}`, scimTypeInvalidSyntax},
		{"unknown op", `{"Operations":[{"op":"move","path":"title","value":"x"}]}`, scimTypeInvalidSyntax},
		{"op not a string", `{"Operations":[{"op":5,"path":"title","value":"x"}]}`, scimTypeInvalidSyntax},
		{"add without value", `{"Operations":[{"op":"add","path":"title"}]}`, scimTypeInvalidSyntax},
		{"remove without path", `{"Operations":[{"op":"remove"}]}`, scimTypeNoTarget},
		{"unparseable path", `{"Operations":[{"op":"add","path":"emails[type eq","value":"x"}]}`, scimTypeInvalidPath},
		{"path not a string", `{"Operations":[{"op":"add","path":["title"],"value":"x"}]}`, scimTypeInvalidPath},
		{"sub-attribute of a simple attribute", `{"Operations":[{"op":"add","path":"userName.x","value":"x"}]}`, scimTypeInvalidPath},
		{"value filter on a simple attribute", `{"Operations":[{"op":"add","path":"title[value eq \"x\"]","value":"x"}]}`, scimTypeInvalidPath},
		{"read-only id", `{"Operations":[{"op":"replace","path":"id","value":"x"}]}`, scimTypeMutability},
		{"read-only groups", `{"Operations":[{"op":"add","path":"groups","value":[{"value":"g"}]}]}`, scimTypeMutability},
		{"read-only meta", `{"Operations":[{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}]}`, scimTypeMutability},
		{"wrong type", `{"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`, scimTypeInvalidValue},
		{"string for complex", `{"Operations":[{"op":"replace","path":"name","value":"Babs"}]}`, scimTypeInvalidValue},
		{"no-path value not an object", `{"Operations":[{"op":"replace","value":"x"}]}`, scimTypeInvalidValue},
		{"filter matching nothing, not eq", `{"Operations":[{"op":"replace","path":"emails[value co \"zzz\"].type","value":"x"}]}`, scimTypeNoTarget},
		{"deep path filter", `{"Operations":[{"op":"remove","path":"emails[` + nest(40) + `]"}]}`, scimTypeInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := patchUserDoc(t, mustDoc(t, patchBase), tt.body)
			var se *scimError
			if !errors.As(err, &se) || se.status != 400 || se.scimType != tt.scimType {
				t.Fatalf("err = %v, want 400 %s", err, tt.scimType)
			}
		})
	}
}

func nest(n int) string {
	s := `type eq \"x\"`
	for range n {
		s = "not(" + s + ")"
	}
	return s
}

func TestNormalizeResource(t *testing.T) {
	in := mustDoc(t, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"client-id","meta":{"resourceType":"User"},
		"USERNAME":"Bob","Active":"TRUE","groups":[{"value":"g"}],"password":"pw",
		"emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}],"roles":[],"nickName":null,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"Department":"Ops","employeeNumber":"701984","manager":"m-1"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter":"CC"}`)
	got, err := normalizeResource(userResource, in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"active":true,"emails":[{"primary":true,"value":"a@x"},{"primary":false,"value":"b@x"}],"password":"pw","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"CC","department":"Ops","employeeNumber":"701984","manager":{"value":"m-1"}},"userName":"Bob"}`
	if g := docJSON(t, got); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}
