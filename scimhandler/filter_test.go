package scimhandler

import (
	"errors"
	"strings"
	"testing"
)

// sampleUser is a rendered user document, as filters see it.
func sampleUser(t testing.TB) map[string]any {
	t.Helper()
	doc, err := decodeStored([]byte(`{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"id": "2819c223-7f76-453a-919d-413861904646",
		"externalId": "Ext-42",
		"userName": "Bjensen@Example.com",
		"name": {"givenName": "Barbara", "familyName": "Jensen"},
		"displayName": "Babs Jensen",
		"title": "Tour Guide",
		"active": true,
		"emails": [
			{"value": "bjensen@example.com", "type": "work", "primary": true},
			{"value": "babs@jensen.org", "type": "home"}
		],
		"groups": [{"value": "g-1", "display": "Admins", "type": "direct"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
			"department": "Tour Operations", "employeeNumber": "701984",
			"manager": {"value": "m-1"}
		},
		"loginCount": 7,
		"meta": {"resourceType": "User", "created": "2024-01-23T04:56:22Z",
			"lastModified": "2024-05-13T04:42:34.5Z", "version": "W/\"3\""}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestFilterEvaluation(t *testing.T) {
	doc := sampleUser(t)
	tests := []struct {
		filter string
		want   bool
	}{
		// eq and case rules: userName is caseExact=false, id/externalId true.
		{`userName eq "bjensen@example.com"`, true},
		{`USERNAME Eq "BJENSEN@EXAMPLE.COM"`, true},
		{`externalId eq "Ext-42"`, true},
		{`externalId eq "ext-42"`, false},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false},
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{`userName ne "bjensen@example.com"`, false},
		{`userName ne "other"`, true},
		{`nickName ne "x"`, true}, // absent attributes are not equal
		{`userName co "JENSEN"`, true},
		{`userName sw "bj"`, true},
		{`userName ew ".com"`, true},
		{`userName ew ".org"`, false},
		{`userName gt "a"`, true},
		{`userName lt "a"`, false},
		{`userName ge "bjensen@example.com"`, true},
		{`userName le "bjensen@example.com"`, true},
		// presence
		{`title pr`, true},
		{`nickName pr`, false},
		{`emails pr`, true},
		{`name.middleName pr`, false},
		// booleans, also given as strings
		{`active eq true`, true},
		{`active eq false`, false},
		{`active ne false`, true},
		{`active eq "True"`, true},
		// numbers on attributes beyond the schema
		{`loginCount gt 5`, true},
		{`loginCount le 6.5`, false},
		// complex sub-attributes
		{`name.familyName eq "jensen"`, true},
		{`name.givenName sw "Bar" and name.familyName pr`, true},
		// multi-valued: any value matches; "emails co" compares value
		{`emails co "jensen.org"`, true},
		{`emails eq "BABS@jensen.org"`, true},
		{`emails.type eq "home"`, true},
		{`emails.type eq "other"`, false},
		// value paths
		{`emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
		{`emails[type eq "home"].value eq "bjensen@example.com"`, false},
		{`emails[not (type eq "work")]`, true},
		{`emails[primary eq true].value ew "example.com"`, true},
		{`groups[value eq "g-1"]`, true},
		{`groups[value eq "g-2"]`, false},
		// logic and grouping
		{`title pr and userType pr`, false},
		{`title pr or userType pr`, true},
		{`not (title pr)`, false},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, false},
		{`(userName eq "x" or userName eq "bjensen@example.com") and active eq true`, true},
		{`not(userName eq "x") and not (active eq false)`, true},
		// dateTime comparisons are by instant, not by text
		{`meta.lastModified gt "2024-05-13T04:42:34Z"`, true},
		{`meta.lastModified gt "2024-05-13T06:42:35+02:00"`, false},
		{`meta.lastModified lt "2025-01-01T00:00:00Z"`, true},
		{`meta.created eq "2024-01-23T04:56:22.000Z"`, true},
		{`meta.lastModified ge "2024-05-13T04:42:34.5Z"`, true},
		// enterprise extension, URN-qualified
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "BJ"`, true},
		// null
		{`nickName eq null`, true},
		{`title eq null`, false},
		{`title ne null`, true},
		// escapes in string values
		{`displayName ne "Babs \"the\" Jensen"`, true},
		{`unknownAttr eq "x"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := parseFilter(userResource, tt.filter)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := f.match(doc); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct {
		name   string
		filter string
	}{
		{"syntax", `userName eq`},
		{"unknown operator", `userName xx "a"`},
		{"unquoted", `userName eq bjensen`},
		{"unbalanced", `(userName eq "a"`},
		{"boolean ordering", `active gt true`},
		{"boolean substring", `active co "t"`},
		{"boolean with text", `active eq "yes"`},
		{"complex without value", `name eq "x"`},
		{"not a complex attribute", `userName.foo eq "x"`},
		{"value path on simple attribute", `userName[value eq "x"]`},
		{"bad dateTime", `meta.lastModified gt "yesterday"`},
		{"null ordering", `title gt null`},
		{"schema URN alone", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x"`},
		{"too long", `userName eq "` + strings.Repeat("a", maxFilterLength) + `"`},
		{"too deep", strings.Repeat("(", maxFilterDepth+1) + `userName eq "a"` + strings.Repeat(")", maxFilterDepth+1)},
		{"deep not", strings.Repeat("not(", maxFilterDepth+1) + `title pr` + strings.Repeat(")", maxFilterDepth+1)},
		{"number out of range", `loginCount eq 1e400`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFilter(userResource, tt.filter)
			var se *scimError
			if !errors.As(err, &se) || se.status != 400 || se.scimType != scimTypeInvalidFilter {
				t.Fatalf("err = %v, want 400 invalidFilter", err)
			}
		})
	}
}

func TestFilterDepthAtLimit(t *testing.T) {
	f := strings.Repeat("(", maxFilterDepth) + `title pr` + strings.Repeat(")", maxFilterDepth)
	c, err := parseFilter(userResource, f)
	if err != nil {
		t.Fatal(err)
	}
	if !c.match(sampleUser(t)) {
		t.Error("nested filter does not match")
	}
}

func TestFilterGroupMembers(t *testing.T) {
	doc, _ := decodeStored([]byte(`{"id":"g","displayName":"Admins","members":[
		{"value":"u-1","type":"User","display":"Alice"},{"value":"g-2","type":"Group"}]}`))
	for filter, want := range map[string]bool{
		`displayName eq "admins"`:                           true,
		`members[value eq "u-1"]`:                           true,
		`members[value eq "U-1"]`:                           false, // member ids are caseExact
		`members.value eq "g-2"`:                            true,
		`members eq "g-2"`:                                  true,
		`members[type eq "Group" and value eq "u-1"]`:       false,
		`members[display co "ali"]`:                         true,
		`displayName eq "Admins" and members[value eq "x"]`: false,
	} {
		f, err := parseFilter(groupResource, filter)
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		if got := f.match(doc); got != want {
			t.Errorf("%s: match = %v, want %v", filter, got, want)
		}
	}
}

func TestFilterPlanning(t *testing.T) {
	tests := []struct {
		rt     *resourceType
		filter string
		want   []indexLookup // nil: scan
	}{
		{userResource, `userName eq "Alice"`, []indexLookup{{lookupUserName, "Alice"}}},
		{userResource, `userName eq "a" and active eq true`, []indexLookup{{lookupUserName, "a"}}},
		{userResource, `active eq true and (userName eq "a")`, []indexLookup{{lookupUserName, "a"}}},
		{userResource, `externalId eq "E" and userName eq "a"`, []indexLookup{{lookupUserName, "a"}}},
		{userResource, `userName eq "a" or userName eq "b"`, []indexLookup{{lookupUserName, "a"}, {lookupUserName, "b"}}},
		{userResource, `id eq "x"`, []indexLookup{{lookupID, "x"}}},
		{userResource, `externalId eq "E"`, []indexLookup{{lookupExternalID, "E"}}},
		{userResource, `emails eq "a@b.c"`, []indexLookup{{lookupEmail, "a@b.c"}}},
		{userResource, `emails[type eq "work"].value eq "A@b.c"`, []indexLookup{{lookupEmail, "A@b.c"}}},
		{userResource, `emails[value eq "a@b.c"]`, []indexLookup{{lookupEmail, "a@b.c"}}},
		{userResource, `groups[value eq "g"]`, []indexLookup{{lookupInGroup, "g"}}},
		{groupResource, `displayName eq "Admins"`, []indexLookup{{lookupDisplayName, "Admins"}}},
		{groupResource, `members[value eq "u"]`, []indexLookup{{lookupHasMember, "u"}}},
		{userResource, `userName sw "a"`, nil},
		{userResource, `userName eq "a" or title pr`, nil},
		{userResource, `not (userName eq "a")`, nil},
		{userResource, `userName ne "a"`, nil},
		{userResource, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := parseFilter(tt.rt, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := planLookups(tt.rt, f.root)
			if (tt.want == nil) != !ok {
				t.Fatalf("planned = %v (%v), want %v", ok, got, tt.want)
			}
			if tt.want != nil && !equalLookups(got, tt.want) {
				t.Errorf("lookups = %v, want %v", got, tt.want)
			}
		})
	}
}

func equalLookups(a, b []indexLookup) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExtractValuePathSubAttrs(t *testing.T) {
	got, paths := extractValuePathSubAttrs(`emails[type eq "a]."].value eq "x" and not (addresses [type eq "w"].country pr)`)
	want := `pcvaluepath0.value eq "x" and not (pcvaluepath1.country pr)`
	if got != want {
		t.Fatalf("rewritten = %q, want %q", got, want)
	}
	if paths["pcvaluepath0"] != `emails[type eq "a]."]` || paths["pcvaluepath1"] != `addresses [type eq "w"]` {
		t.Errorf("paths = %v", paths)
	}
}

func BenchmarkParseFilterUserNameEq(b *testing.B) {
	for b.Loop() {
		if _, err := parseFilter(userResource, `userName eq "someone@example.com"`); err != nil {
			b.Fatal(err)
		}
	}
}

func TestShapeCache(t *testing.T) {
	doc := sampleUser(t)
	// The same shape with other literals must not reuse the first values.
	for filter, want := range map[string]bool{
		`userName eq "bjensen@example.com" and title eq "Tour Guide"`: true,
		`userName eq "someone@else" and title eq "Tour Guide"`:        false,
		`userName eq "bjensen@example.com" and title eq "CEO"`:        false,
		`emails[type eq "work"].value eq "bjensen@example.com"`:       true,
		`emails[type eq "home"].value eq "bjensen@example.com"`:       false,
		`displayName eq "Babs \"B\" Jensen"`:                          false,
		`displayName ne "Babs \u00e9"`:                                true, // lower-case hex, refused by the parser itself
	} {
		for range 2 { // miss, then hit
			f, err := parseFilter(userResource, filter)
			if err != nil {
				t.Fatalf("%s: %v", filter, err)
			}
			if got := f.match(doc); got != want {
				t.Errorf("%s: match = %v, want %v", filter, got, want)
			}
		}
	}
	for _, p := range []string{`members[value eq "a"]`, `members[value eq "b"]`} {
		got, err := parsePathCached(p)
		if err != nil {
			t.Fatal(err)
		}
		if ids, _ := memberIDsOf(got.ValueExpression); len(ids) != 1 || ids[0] != p[18:19] {
			t.Errorf("%s: parsed ids %v", p, ids)
		}
	}
	if _, err := parseFilter(userResource, `userName eq "a\qb"`); err == nil {
		t.Error("an invalid escape must not pass through the cache")
	}
}
