package scimhandler

import (
	"bytes"
	"encoding/json"
	"testing"
)

// docJSONSeeds are documents as clients send them, and strings that need
// every kind of escaping.
var docJSONSeeds = []string{
	`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"value":"b@example.com","type":"work","primary":true}],"active":true,"x":null}`,
	`{"a":"<script>&amp;</script>","b":"quote \" backslash \\ slash /","c":"tab\tnew\nline\r\u0001\u001f\u007f"}`,
	`{"unicode":"Zoë 日本 \u2028 \u2029 😀","num":[1,-2.5,3e10,0,1E-7,12345678901234567890],"nested":{"z":{},"a":[],"m":[{"b":1,"a":2}]}}`,
	`{"Ä":1,"a":2,"B":3,"_":4,"~":5,"":6}`,
	`[]`, `"plain"`, `true`, `null`, `1.0`,
}

func decodeDoc(t testing.TB, raw string) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

func checkDocJSON(t testing.TB, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, err := appendDocJSON(nil, v, true)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("escapeHTML: got %s (%v), want %s (%v)", got, err, want, wantErr)
	}
	want, wantErr = marshalJSON(v)
	got, err = appendDocJSON(nil, v, false)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("no escapeHTML: got %s (%v), want %s (%v)", got, err, want, wantErr)
	}
}

// TestDocJSONMatchesEncodingJSON: appendDocJSON writes what encoding/json
// writes, for decoded documents and for Go values a decoder never makes
// (invalid UTF-8, nil maps and slices, other types).
func TestDocJSONMatchesEncodingJSON(t *testing.T) {
	for _, raw := range docJSONSeeds {
		v, ok := decodeDoc(t, raw)
		if !ok {
			t.Fatalf("seed %s does not decode", raw)
		}
		checkDocJSON(t, v)
	}
	for _, v := range []any{
		map[string]any{"bad": "a\xffb", "\xfe": "k"},
		map[string]any{"nilmap": map[string]any(nil), "nilslice": []any(nil), "strs": []string{"a", "<"}},
		map[string]any{"n": json.Number("12"), "f": 1.5, "i": 3},
		map[string]any{"badnum": json.Number("1x")},
	} {
		checkDocJSON(t, v)
	}
}

func FuzzDocJSON(f *testing.F) {
	for _, s := range docJSONSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if v, ok := decodeDoc(t, raw); ok {
			checkDocJSON(t, v)
		}
	})
}
