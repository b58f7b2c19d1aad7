package scimhandler_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
)

func listIDs(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var ids []string
	res, ok := doc["Resources"].([]any)
	if !ok {
		t.Fatalf("Resources missing or not a list: %v", doc)
	}
	for _, r := range res {
		ids = append(ids, str(r.(map[string]any)["id"]))
	}
	return ids
}

func TestListPagination(t *testing.T) {
	e := newEnv(t, func(c *scimhandler.Config) { c.MaxResults = 7 })
	var ids []string
	for i := range 12 {
		ids = append(ids, e.createUser(fmt.Sprintf("user%02d", i)))
	}
	sort.Strings(ids) // the stable order is id order
	tests := []struct {
		query                     string
		total, start, items, from int
	}{
		{"startIndex=1&count=5", 12, 1, 5, 0},
		{"startIndex=6&count=5", 12, 6, 5, 5},
		{"startIndex=11&count=5", 12, 11, 2, 10},
		{"startIndex=13&count=5", 12, 13, 0, 0},
		{"count=0", 12, 1, 0, 0},
		{"count=100", 12, 1, 7, 0}, // capped at MaxResults
		{"", 12, 1, 7, 0},          // default page is MaxResults
		{"startIndex=0&count=2", 12, 1, 2, 0},
		{"startIndex=-5&count=-1", 12, 1, 0, 0},
		{"startIndex=abc&count=x", 12, 1, 7, 0},
		{"startIndex=3.0&count=2.9", 12, 3, 2, 2},
		{"startIndex=99999999999999999999&count=1", 12, 2147483648, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			doc := e.want(e.do("GET", "/Users?"+tt.query, nil), http.StatusOK).obj(t)
			if num(doc["totalResults"]) != tt.total || num(doc["startIndex"]) != tt.start || num(doc["itemsPerPage"]) != tt.items {
				t.Fatalf("total %v start %v items %v, want %d %d %d", doc["totalResults"], doc["startIndex"], doc["itemsPerPage"], tt.total, tt.start, tt.items)
			}
			got := listIDs(t, doc)
			if want := ids[tt.from : tt.from+tt.items]; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("ids %v, want %v", got, want)
			}
		})
	}
	// Okta pages of count=100 with integers.
	page := e.want(e.do("GET", "/Users?startIndex=1&count=100", nil), http.StatusOK)
	if !strings.Contains(string(page.body), `"totalResults":12`) || !strings.Contains(string(page.body), `"startIndex":1`) {
		t.Errorf("pagination numbers must be JSON integers: %.200s", page.body)
	}
	spc := e.want(e.do("GET", "/ServiceProviderConfig", nil), http.StatusOK).obj(t)
	if num(path(spc, "filter", "maxResults")) != 7 {
		t.Errorf("maxResults not advertised: %v", spc["filter"])
	}
}

func TestListFilterSortProject(t *testing.T) {
	e := newEnv(t)
	e.createUser("carol", "title", "Zookeeper", "emails", `[{"value":"carol@work.example","type":"work"}]`,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", `{"department":"Sales"}`)
	e.createUser("Alice", "title", "engineer", "active", "false", "externalId", "A-1",
		"emails", `[{"value":"alice@home.example","type":"home"},{"value":"alice@work.example","type":"work","primary":true}]`)
	e.createUser("bob", "emails", `[{"value":"bob@work.example","type":"work"},{"value":"","type":"other"}]`,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", `{"department":"Engineering"}`)
	names := func(doc map[string]any) string {
		var out []string
		for _, r := range doc["Resources"].([]any) {
			out = append(out, str(r.(map[string]any)["userName"]))
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		query string
		want  string
	}{
		{"filter=" + q(`userName eq "ALICE"`), "Alice"},
		{"filter=" + q(`userName eq "nobody"`), ""},
		// Empty values are kept but not indexed: eq "" must scan (found by FuzzFilter).
		{"filter=" + q(`emails.value eq ""`), "bob"},
		{"filter=" + q(`emails[type eq "other" and value eq ""]`), "bob"},
		{"filter=" + q(`userName sw "b" or userName sw "c"`) + "&sortBy=userName", "bob,carol"},
		{"filter=" + q(`emails[type eq "work"].value eq "Alice@Work.example"`), "Alice"},
		{"filter=" + q(`emails[type eq "work" and value co "bob"]`), "bob"},
		{"filter=" + q(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`), "carol"},
		{"filter=" + q(`active eq false`), "Alice"},
		{"filter=" + q(`externalId eq "A-1" and active eq false`), "Alice"},
		{"filter=" + q(`meta.lastModified gt "2000-01-01T00:00:00Z"`) + "&sortBy=userName", "Alice,bob,carol"},
		{"filter=" + q(`meta.lastModified lt "2000-01-01T00:00:00Z"`), ""},
		{"sortBy=userName", "Alice,bob,carol"},
		{"sortBy=userName&sortOrder=descending", "carol,bob,Alice"},
		{"sortBy=title", "Alice,carol,bob"},                      // no value sorts last
		{"sortBy=title&sortOrder=DESCENDING", "carol,Alice,bob"}, // still last
		{"sortBy=emails&count=2", "Alice,bob"},                   // primary or first value
		{"sortBy=emails&startIndex=3", "carol"},
		{"sortBy=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "bob,carol,Alice"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			doc := e.want(e.do("GET", "/Users?"+tt.query, nil), http.StatusOK).obj(t)
			if got := names(doc); got != tt.want {
				t.Errorf("users %q, want %q", got, tt.want)
			}
		})
	}
	// attributes / excludedAttributes on lists.
	doc := e.want(e.do("GET", "/Users?sortBy=userName&attributes=userName,emails.value", nil), http.StatusOK).obj(t)
	first := path(doc, "Resources", 0).(map[string]any)
	if len(first) != 4 || first["userName"] != "Alice" || path(first, "emails", 0, "type") != nil || path(first, "emails", 1, "value") != "alice@work.example" {
		t.Errorf("attributes projection %v", first)
	}
	doc = e.want(e.do("GET", "/Users?sortBy=userName&excludedAttributes=emails,meta", nil), http.StatusOK).obj(t)
	first = path(doc, "Resources", 0).(map[string]any)
	if first["emails"] != nil || first["meta"] != nil || first["userName"] != "Alice" || first["id"] == nil {
		t.Errorf("excludedAttributes projection %v", first)
	}

	// Bad queries are 400s with the right scimType.
	for query, scimType := range map[string]string{
		"filter=" + q(`userName eq`):    "invalidFilter",
		"filter=":                       "invalidFilter",
		"filter=" + q(`active gt true`): "invalidFilter",
		"filter=" + q(strings.Repeat("(", 40)+`title pr`+strings.Repeat(")", 40)): "invalidFilter",
		"filter=" + q(`title eq "`+strings.Repeat("x", 5000)+`"`):                 "invalidFilter",
		"sortBy=" + q(`emails[`):     "invalidValue",
		"sortOrder=sideways":         "invalidValue",
		"attributes=" + q(`name..x`): "invalidValue",
	} {
		r := e.want(e.do("GET", "/Users?"+query, nil), http.StatusBadRequest).obj(t)
		if r["scimType"] != scimType {
			t.Errorf("%s: scimType %v, want %s", query, r["scimType"], scimType)
		}
	}
}

func TestFilterUsesIndexes(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		e.createUser(fmt.Sprintf("user%02d", i), "externalId", fmt.Sprintf("E%02d", i),
			"emails", fmt.Sprintf(`[{"value":"u%02d@example.com","type":"work"}]`, i))
	}
	g := e.createGroup("Admins")
	for _, f := range []string{
		`userName eq "USER07"`,
		`userName eq "user07" and active eq true`,
		`externalId eq "E07"`,
		`emails[type eq "work"].value eq "u07@example.com"`,
		`emails eq "U07@example.com"`,
		`id eq "x"`,
		`userName eq "user07" or userName eq "user08"`,
	} {
		e.store.reset()
		doc := e.want(e.do("GET", "/Users?filter="+q(f), nil), http.StatusOK).obj(t)
		if c := e.store.reset(); c["ScanUsers"] != 0 || c["UserPage"] != 0 {
			t.Errorf("%s scanned the users: %v", f, c)
		}
		if f != `id eq "x"` && num(doc["totalResults"]) == 0 {
			t.Errorf("%s found nothing", f)
		}
	}
	e.store.reset()
	e.want(e.do("GET", "/Groups?filter="+q(`displayName eq "admins"`), nil), http.StatusOK)
	e.want(e.do("GET", "/Groups?filter="+q(`id eq "`+g+`"`), nil), http.StatusOK)
	if c := e.store.reset(); c["ScanGroups"] != 0 {
		t.Error("group displayName eq scanned the groups")
	}
	e.want(e.do("GET", "/Users?filter="+q(`title pr`), nil), http.StatusOK)
	if c := e.store.reset(); c["ScanUsers"] != 1 {
		t.Errorf("an unindexed filter must scan once: %v", c)
	}
	// A page that shows groups reads its users with them (one UserPage);
	// one that does not, without (one ScanUsers).
	e.want(e.do("GET", "/Users?count=5&startIndex=3", nil), http.StatusOK)
	if c := e.store.reset(); c["UserPage"] != 1 || c["ScanUsers"] != 0 {
		t.Errorf("a page with groups: %v, want one UserPage", c)
	}
	e.want(e.do("GET", "/Users?count=5&excludedAttributes=groups", nil), http.StatusOK)
	if c := e.store.reset(); c["UserPage"] != 0 || c["ScanUsers"] != 1 {
		t.Errorf("a page without groups: %v, want one ScanUsers", c)
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice")
	e.createUser("bob")
	g := e.createGroup("alice fans", alice)
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
		"attributes":["displayName","userName"],"filter":"userName sw \"a\"","startIndex":1,"count":10}`
	doc := e.want(e.do("POST", "/Users/.search", body), http.StatusOK).obj(t)
	if ids := listIDs(t, doc); len(ids) != 1 || ids[0] != alice {
		t.Errorf("Users/.search: %v", doc)
	}
	doc = e.want(e.do("POST", "/Groups/.search", `{"filter":"members[value eq \"`+alice+`\"]","excludedAttributes":["members"]}`), http.StatusOK).obj(t)
	if ids := listIDs(t, doc); len(ids) != 1 || ids[0] != g || path(doc, "Resources", 0, "members") != nil {
		t.Errorf("Groups/.search: %v", doc)
	}
	// Root search spans users then groups, paged across both.
	doc = e.want(e.do("POST", "/.search", `{"filter":"userName sw \"a\" or displayName sw \"a\""}`), http.StatusOK).obj(t)
	if ids := listIDs(t, doc); num(doc["totalResults"]) != 2 || ids[0] != alice || ids[1] != g {
		t.Errorf("/.search: %v", doc)
	}
	doc = e.want(e.do("POST", "/.search", `{"startIndex":3,"count":"1"}`), http.StatusOK).obj(t)
	if ids := listIDs(t, doc); num(doc["totalResults"]) != 3 || len(ids) != 1 || ids[0] != g {
		t.Errorf("/.search page 3: %v", doc)
	}
	e.want(e.do("GET", "/.search", nil), http.StatusMethodNotAllowed)
	e.want(e.do("POST", "/.search", `{"filter":5}`), http.StatusBadRequest)
	e.want(e.do("POST", "/Users/.search", `{"filter":"userName eq"}`), http.StatusBadRequest)
}
