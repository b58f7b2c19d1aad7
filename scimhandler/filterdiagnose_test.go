package scimhandler

import (
	"errors"
	"strings"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

// parserInternals are fragments of the filter-parser library's own
// messages and Go type names, none of which may reach a client.
var parserInternals = []string{"\uFFFD", "parser", "parse conflict", "op.", "func", "int32", "[00:", "ExpectedParseError", "filter.", "*"}

func checkClientDetail(t *testing.T, detail string) {
	t.Helper()
	for _, bad := range parserInternals {
		if strings.Contains(detail, bad) {
			t.Errorf("detail %q contains %q", detail, bad)
		}
	}
	if !strings.Contains(detail, "at position ") {
		t.Errorf("detail %q names no position", detail)
	}
}

func TestFilterSyntaxErrors(t *testing.T) {
	tests := []struct {
		filter string
		want   string
	}{
		{`userName eq`, "filter: expected a value after 'eq' at position 12"},
		{`userName eq `, "filter: expected a value after 'eq' at position 12"}, // trailing space trimmed
		{`userName`, "filter: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after 'userName' at position 9"},
		{`userName xx "a"`, "filter: unknown operator 'xx'; expected eq, ne, co, sw, ew, gt, ge, lt, le or pr at position 10"},
		{`userName equals "a"`, "unknown operator 'equals'"},
		{`userName = "a"`, "after 'userName', found '=' at position 10"},
		{`userName eq"a"`, "expected a space after 'eq', found '\"' at position 12"},
		{`userName eq bjensen`, `filter: expected a value after 'eq' (a "quoted string", a number, true, false or null), found 'bjensen' at position 13`},
		{`userName eq 'a'`, "found ''' at position 13"},
		{`userName eq tru`, "found 'tru' at position 13"},
		{`userName eq "abc`, "filter: unterminated string: the '\"' here is never closed at position 13"},
		{`userName eq "a\x"`, `filter: invalid escape '\x' in a string at position 15`},
		{`userName eq "a\u12"`, `\u takes four hex digits at position 15`},
		{`loginCount eq 01`, "a number cannot start with 0 at position 15"},
		{`loginCount eq 1.`, "expected digits after the decimal point at position 17"},
		{`loginCount eq 1e`, "expected digits in the number's exponent at position 17"},
		{`loginCount eq -`, "expected a number, found '-' at position 15"},
		{`(userName eq "a"`, "filter: unbalanced '(': the '(' at position 1 is never closed at position 17"},
		{`((userName eq "a")`, "the '(' at position 1 is never closed at position 19"},
		{`userName eq "a")`, "filter: unbalanced ')': no '(' is open at position 16"},
		{`(userName eq "a" x`, "expected ')' to close the '(' at position 1, found 'x' at position 18"},
		{`emails[type eq "work"`, "filter: unbalanced '[': the '[' at position 7 is never closed at position 22"},
		{`emails[type eq "work"]]`, "filter: unbalanced ']': no '[' is open at position 23"},
		{`emails[type eq "work" x`, "expected ']' to close the '[' at position 7"},
		{`emails[type[value eq "x"] eq "work"]`, "value paths cannot nest"},
		{`emails[]`, "expected an attribute name, found ']' at position 8"},
		{`user..Name eq "a"`, "filter: bad attribute path: expected a sub-attribute name, found '.' at position 6"},
		{`name.givenName.x eq "a"`, "at most one sub-attribute (name.sub) may follow an attribute at position 15"},
		{`1userName eq "a"`, "expected a attribute name starting with a letter, found '1userName' at position 1"},
		{`urn:ietf:params:scim::schemas:core:2.0:User:userName eq "a"`, "empty segment in the schema URN 'urn:ietf:params:scim::schemas:core:2.0:User' at position 22"},
		{`urn:ietf:params:scim:schemas:core:2.0:User: eq "a"`, "expected an attribute name after the schema URN at position 44"},
		{`emails[type eq "work"]. eq "x"`, "found ' ' at position 24"},
		{`userName eq "a" garbage`, "filter: unexpected 'garbage'; expected 'and', 'or' or the end of the filter at position 17"},
		{`userName eq "a" and`, "filter: expected a filter after 'and' at position 20"},
		{`userName eq "a" and `, "filter: expected a filter after 'and' at position 20"},
		{`userName eq "a" or (`, "filter: expected a filter such as userName eq \"value\" at position 21"},
		{`userName eq "a" andtitle pr`, "unexpected 'andtitle'"},
		{`not userName eq "a"`, "filter: expected '(' after 'not', found 'userName' at position 5"},
		{`not`, "expected '(' after 'not' at position 4"},
		{`()`, "expected an attribute name, found ')' at position 2"},
		{`eq "a"`, "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after 'eq', found '\"' at position 4"},
		{`"a" eq userName`, "expected an attribute name, found '\"' at position 1"},
		{` `, "filter: expected a filter such as userName eq \"value\" at position 1"},
		{"userName\teq \"a\"", `found '\x09' at position 9`},
		{"userName eq \"a\" \xff", `unexpected '\xff'`},
		{"üserName eq \"a\"", "found 'ü' at position 1"},
		{"userName eq \"a\" \uFFFD", `unexpected '\ufffd'`},
		{"displayName eq \"é\" xx", "unexpected 'xx'; expected 'and', 'or' or the end of the filter at position 20"},
		{`userName pr x`, "unexpected 'x'; expected 'and', 'or' or the end of the filter at position 13"},
		{`emails[type eq "work"].value`, "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after 'value' at position 29"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			_, err := parseFilter(userResource, tt.filter)
			var se *scimError
			if !errors.As(err, &se) || se.status != 400 || se.scimType != scimTypeInvalidFilter {
				t.Fatalf("err = %v, want 400 invalidFilter", err)
			}
			if !strings.Contains(se.detail, tt.want) {
				t.Errorf("detail %q\nwant it to contain %q", se.detail, tt.want)
			}
			checkClientDetail(t, se.detail)
		})
	}
}

func TestPatchPathSyntaxErrors(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{`emails[type eq "work"`, "path: unbalanced '[': the '[' at position 7 is never closed at position 22"},
		{`emails[type eq "work"].`, "expected a sub-attribute name at position 24"},
		{`emails[type eq "work"]x`, "unexpected 'x'; expected the end of the path at position 23"},
		{`x..y`, "bad attribute path: expected a sub-attribute name, found '.' at position 3"},
		{`name.givenName.x`, "at most one sub-attribute"},
		{`emails[type xx "work"]`, "unknown operator 'xx'"},
		{`emails[type eq]`, "expected a value after 'eq' at position 15"},
		{`emails[type eq ]`, `expected a value after 'eq' (a "quoted string", a number, true, false or null), found ']' at position 16`},
		{`members[value eq "abc]`, "unterminated string"},
		{`userName ]`, "unbalanced ']': no '[' is open at position 10"},
		{`userName x`, "unexpected 'x'; expected the end of the path at position 10"},
		{`[type eq "x"]`, "expected an attribute name, found '[' at position 1"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := resolvePatchPath(userResource, tt.path)
			var se *scimError
			if !errors.As(err, &se) || se.status != 400 || se.scimType != scimTypeInvalidPath {
				t.Fatalf("err = %v, want 400 invalidPath", err)
			}
			if !strings.Contains(se.detail, tt.want) {
				t.Errorf("detail %q\nwant it to contain %q", se.detail, tt.want)
			}
			checkClientDetail(t, se.detail)
		})
	}
}

// TestDiagnosisCoversParserRefusals: for every variant of real filters
// (cut short at each byte, each byte deleted, a stray character inserted
// at each position) that the library refuses, the diagnosis finds an
// error too, so the client never gets the position-less fallback.
func TestDiagnosisCoversParserRefusals(t *testing.T) {
	seeds := []string{
		`userName eq "bjensen@example.com"`,
		`emails[type eq "work" and value co "@example.com"] or not (title pr)`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1"`,
		`(active eq true) and (loginCount ge -1.5e3 or meta.lastModified gt "2024-01-01T00:00:00Z")`,
		`emails[type eq "work"].value eq "a\"b"`,
		`members[value eq "x"] and displayName sw "Eng"`,
		`name.givenName ne null`,
	}
	variants := map[string]bool{}
	for _, s := range seeds {
		variants[s] = true
		for i := 0; i <= len(s); i++ {
			variants[s[:i]] = true
			if i < len(s) {
				variants[s[:i]+s[i+1:]] = true
			}
			for _, ins := range []string{" ", "(", ")", "[", "]", `"`, ".", ":", "x", "1", "\\"} {
				variants[s[:i]+ins+s[i:]] = true
			}
		}
	}
	refused := 0
	for v := range variants {
		if checkFilterBounds(v) != nil {
			continue
		}
		text := strings.Trim(v, " ")
		rewritten, _ := extractValuePathSubAttrs(text)
		if _, err := filter.ParseFilterNumber([]byte(rewritten)); err == nil {
			continue
		}
		refused++
		d := diagnoseFilter(text)
		if d == nil {
			t.Errorf("the parser refuses %q but the diagnosis finds nothing", text)
			continue
		}
		checkClientDetail(t, "filter: "+d.describe(text))
	}
	if refused < 100 {
		t.Fatalf("only %d refused variants: the corpus is too small", refused)
	}
}
