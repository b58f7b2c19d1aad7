package scimhandler

import "testing"

func TestProjection(t *testing.T) {
	tests := []struct {
		name               string
		attributes, exclud string
		want               string
	}{
		{"none", "", "", ""},
		{"userName only keeps id and schemas", "userName", "",
			`{"id":"2819c223-7f76-453a-919d-413861904646","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"Bjensen@Example.com"}`},
		{"sub-attributes of complex and multi-valued", "name.givenName,emails.value,EMAILS.TYPE", "",
			`{"emails":[{"type":"work","value":"bjensen@example.com"},{"type":"home","value":"babs@jensen.org"}],"id":"2819c223-7f76-453a-919d-413861904646","name":{"givenName":"Barbara"},"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]}`},
		{"URN-qualified extension attribute", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "",
			`{"id":"2819c223-7f76-453a-919d-413861904646","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tour Operations"}}`},
		{"whole extension", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "",
			`{"id":"2819c223-7f76-453a-919d-413861904646","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tour Operations","employeeNumber":"701984","manager":{"value":"m-1"}}}`},
		{"excluded cannot drop id or schemas", "", "id,schemas,emails,name.familyName,meta,groups,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,loginCount,title,active,displayName,externalId",
			`{"id":"2819c223-7f76-453a-919d-413861904646","name":{"givenName":"Barbara"},"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"Bjensen@Example.com"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := sampleUser(t)
			p, err := parseProjection(userResource, splitAttrList(tt.attributes), splitAttrList(tt.exclud))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = docJSON(t, sampleUser(t))
			}
			if got := docJSON(t, p.apply(doc)); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestProjectionWants(t *testing.T) {
	p, err := parseProjection(groupResource, nil, []string{"members"})
	if err != nil {
		t.Fatal(err)
	}
	if p.wantsTop("members") || !p.wantsTop("displayName") {
		t.Error("excludedAttributes=members must skip members only")
	}
	p, _ = parseProjection(groupResource, []string{"members.value"}, nil)
	if !p.wantsTop("members") || p.wantsSub("members", "display") || !p.wantsSub("members", "value") {
		t.Error("attributes=members.value must skip member display names")
	}
	var none *projection
	if !none.wantsTop("members") || !none.wantsSub("members", "display") {
		t.Error("no projection returns everything")
	}
	if _, err := parseProjection(userResource, []string{"emails[type"}, nil); err == nil {
		t.Error("a bad attribute path must be refused")
	}
}
