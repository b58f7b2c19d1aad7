package scimhandler_test

import (
	"net/http"
	"testing"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	spc := e.want(e.do("GET", "/ServiceProviderConfig", nil), http.StatusOK).obj(t)
	for p, want := range map[string]any{
		"patch.supported":          true,
		"bulk.supported":           false,
		"filter.supported":         true,
		"changePassword.supported": false,
		"sort.supported":           true,
		"etag.supported":           true,
	} {
		var v any = spc
		for _, step := range splitDots(p) {
			v = path(v, step)
		}
		if v != want {
			t.Errorf("%s = %v, want %v", p, v, want)
		}
	}
	if num(path(spc, "filter", "maxResults")) != 1000 || path(spc, "authenticationSchemes", 0, "type") != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig %v", spc)
	}
	if path(spc, "meta", "location") != e.base+"/ServiceProviderConfig" {
		t.Errorf("meta %v", spc["meta"])
	}

	schemas := e.want(e.do("GET", "/Schemas", nil), http.StatusOK).obj(t)
	if num(schemas["totalResults"]) != 3 {
		t.Fatalf("schemas %v", schemas["totalResults"])
	}
	byID := map[string]map[string]any{}
	for _, s := range schemas["Resources"].([]any) {
		byID[str(s.(map[string]any)["id"])] = s.(map[string]any)
	}
	user := byID["urn:ietf:params:scim:schemas:core:2.0:User"]
	attrs := map[string]map[string]any{}
	for _, a := range user["attributes"].([]any) {
		attrs[str(a.(map[string]any)["name"])] = a.(map[string]any)
	}
	for _, name := range []string{"userName", "name", "displayName", "nickName", "profileUrl", "title", "userType",
		"preferredLanguage", "locale", "timezone", "active", "password", "emails", "phoneNumbers", "ims", "photos",
		"addresses", "groups", "entitlements", "roles", "x509Certificates"} {
		if attrs[name] == nil {
			t.Errorf("User schema lacks %s", name)
		}
	}
	if attrs["userName"]["caseExact"] != false || attrs["userName"]["uniqueness"] != "server" || attrs["userName"]["required"] != true {
		t.Errorf("userName %v", attrs["userName"])
	}
	if attrs["password"]["returned"] != "never" || attrs["password"]["mutability"] != "writeOnly" {
		t.Errorf("password %v", attrs["password"])
	}
	if attrs["groups"]["mutability"] != "readOnly" || len(attrs["name"]["subAttributes"].([]any)) != 6 {
		t.Errorf("groups %v / name %v", attrs["groups"], attrs["name"])
	}
	if byID["urn:ietf:params:scim:schemas:core:2.0:Group"] == nil || byID["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == nil {
		t.Error("Group or EnterpriseUser schema missing")
	}
	one := e.want(e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil), http.StatusOK).obj(t)
	if one["name"] != "EnterpriseUser" || path(one, "meta", "location") != e.base+"/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" {
		t.Errorf("schema %v", one)
	}
	e.want(e.do("GET", "/Schemas/urn:nope", nil), http.StatusNotFound)
	e.want(e.do("GET", "/Schemas?filter="+q(`id eq "x"`), nil), http.StatusForbidden)

	rts := e.want(e.do("GET", "/ResourceTypes", nil), http.StatusOK).obj(t)
	if num(rts["totalResults"]) != 2 {
		t.Errorf("resource types %v", rts)
	}
	u := e.want(e.do("GET", "/ResourceTypes/User", nil), http.StatusOK).obj(t)
	if u["endpoint"] != "/Users" || path(u, "schemaExtensions", 0, "schema") != "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" {
		t.Errorf("User resource type %v", u)
	}
	e.want(e.do("GET", "/ResourceTypes/Device", nil), http.StatusNotFound)
	e.want(e.do("POST", "/Schemas", `{}`), http.StatusMethodNotAllowed)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
