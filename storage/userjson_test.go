package storage

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleUsers are users as the stores write them, from plain to odd.
func sampleUsers() []User {
	at := time.Date(2026, 11, 30, 5, 24, 8, 123456789, time.UTC)
	return []User{
		{},
		{ID: "u1", UserName: "alice", Active: true, Source: "scim", Created: at, Modified: at, Version: 1},
		{
			ID: "0f8fad5b-d9cb-469f-a165-70867728950e", UserName: "bob@example.com", ExternalID: "00u1a2b3",
			DisplayName: "Bob Example", Emails: []string{"bob@example.com", "bob.b@example.org"},
			Active: true, Source: "scim", Role: "admin",
			Attributes: json.RawMessage(`{"name":{"givenName":"Bob","familyName":"Example"},"title":"Engineer","x":[1,2.5e3,-0,true,null]}`),
			Created:    at, Modified: at.Add(time.Hour), Version: 42,
		},
		{
			ID: "u3", UserName: "Zoë <R&D> \"quoted\" \\ back\u2028sep\ttab\x01", DisplayName: "日本語 😀",
			Emails: []string{}, Source: "manual", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA",
			Attributes: json.RawMessage(`"just a string"`),
			Created:    time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("", 5*3600+1800)),
			Modified:   time.Date(2200, 12, 31, 23, 59, 59, 1, time.FixedZone("", -7*3600)), Version: -7,
		},
		{ID: "u4", UserName: "n", Emails: []string{""}, Attributes: json.RawMessage(`[]`), Version: 999999999999999999},
		{ID: "u5", UserName: "big", Version: 1<<63 - 1, Attributes: json.RawMessage(`12`)},
	}
}

// prefilled is a User some fields of which are set, with spare capacity,
// to check the reuse encoding/json does.
func prefilled() User {
	emails := make([]string, 3, 5)
	copy(emails, []string{"old1", "old2", "old3"})
	attrs := make(json.RawMessage, 0, 256)
	attrs = append(attrs, `{"old":true}`...)
	return User{
		ID: "old", UserName: "olduser", ExternalID: "oldext", DisplayName: "Old", Emails: emails,
		Active: true, Source: "old", PasswordHash: "oldhash", Role: "oldrole", Attributes: attrs,
		Created: time.Unix(1, 0), Modified: time.Unix(2, 0), Version: 3,
	}
}

// cloneUser copies u with its own Emails and Attributes arrays of the same
// capacity.
func cloneUser(u User) User {
	if u.Emails != nil {
		e := make([]string, len(u.Emails), cap(u.Emails))
		copy(e, u.Emails)
		u.Emails = e
	}
	if u.Attributes != nil {
		a := make(json.RawMessage, len(u.Attributes), cap(u.Attributes))
		copy(a, u.Attributes)
		u.Attributes = a
	}
	return u
}

// checkSameAsJSON decodes b with both decoders into copies of start and
// fails unless the results (values, nil-ness, capacities, error or not)
// are the same.
func checkSameAsJSON(t *testing.T, b []byte, start User) {
	t.Helper()
	want, got := cloneUser(start), cloneUser(start)
	wantErr := json.Unmarshal(b, &want)
	gotErr := DecodeUser(b, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("input %q: encoding/json error %v, DecodeUser error %v", b, wantErr, gotErr)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("input %q:\nencoding/json %#v\nDecodeUser    %#v", b, want, got)
	}
	if cap(want.Emails) != cap(got.Emails) || cap(want.Attributes) != cap(got.Attributes) {
		t.Fatalf("input %q: capacities differ: emails %d/%d, attributes %d/%d", b,
			cap(want.Emails), cap(got.Emails), cap(want.Attributes), cap(got.Attributes))
	}
}

func TestDecodeUserMatchesEncodingJSON(t *testing.T) {
	var inputs []string
	for _, u := range sampleUsers() {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	inputs = append(inputs,
		// Odd but valid: whitespace, key order, escapes, types encoding/json
		// rejects or converts.
		" {\n\t\"version\" : 5 ,\r\n \"id\":\"x\" } ",
		`{"id":"\u0041\ud83d\ude00\ud800\udc00\ud800x\udc00\u00e9\/\b\f\n\r\t"}`,
		`{"id":"bad utf8 \xff\xfe end","userName":"\xc3"}`,
		`{"attributes":  {"a" : [ 1 , {"b":"\u00e9"} ] }  ,"id":"x"}`,
		`{"attributes":null}`,
		`{"attributes":"x","Attributes":"y"}`,
		`{"ID":"upper","USERNAME":"case-folded"}`,
		`{"id":"a","id":"b"}`,
		`{"emails":["a","b"],"emails":["c"]}`,
		`{"emails":null}`,
		`{"emails":[]}`,
		`{"emails":["a","b","c","d","e","f","g"]}`,
		`{"emails":["a",1]}`,
		`{"emails":["a","b","c"]}`,
		`{"emails":["a","b","c","d","e"]}`,
		`{"emails":[`+strings.Repeat(`"e\u00e9",`, 40)+`"last"]}`,
		`{"id":"`+strings.Repeat("x", 250)+`\n\u00e9`+strings.Repeat("y", 300)+`","userName":"after the spill"}`,
		`{"displayName":"`+strings.Repeat("\u00e9", 200)+`"}`,
		`{"unknown":{"deep":[1,2,3]},"id":"x"}`,
		`{"version":1.0}`,
		`{"version":1e3}`,
		`{"version":-0}`,
		`{"version":9223372036854775807}`,
		`{"version":9223372036854775808}`,
		`{"version":"5"}`,
		`{"active":"true"}`,
		`{"active":null}`,
		`{"created":"2026-11-30T05:24:08Z","modified":"2026-11-30T05:24:08.5+01:00"}`,
		`{"created":null}`,
		`{"created":"not a time","id":"x"}`,
		`{"created":"2026-11-30T05:24:08\u005a"}`,
		`{"created":5}`,
		`{}`,
		`null`,
		`[]`,
		`"user"`,
		`{"id":"x"}{}`,
		`{"id":"x",}`,
		`{"id":"x"`,
		`{"id":"x\u12"}`,
		`{"id":"tab	in string"}`,
		`{"attributes":{"a":01}}`,
		`{"attributes":{"a":1.}}`,
		`{"attributes":{"a":tru}}`,
		`{"attributes":[1,]}`,
		`{"attributes":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`,
		`{"attributes":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`,
		``,
		` `,
	)
	starts := map[string]User{"zero": {}, "prefilled": prefilled()}
	for _, in := range inputs {
		for name, start := range starts {
			t.Run(name, func(t *testing.T) { checkSameAsJSON(t, []byte(in), start) })
		}
	}
}

// TestDecodeUserCopiesAttributes: the stores pass buffers that are reused
// after the call, so Attributes must not alias the input.
func TestDecodeUserCopiesAttributes(t *testing.T) {
	b := []byte(`{"id":"x","attributes":{"a":1}}`)
	var u User
	if err := DecodeUser(b, &u); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if string(u.Attributes) != `{"a":1}` {
		t.Fatalf("attributes changed with the input: %q", u.Attributes)
	}
}

func FuzzDecodeUser(f *testing.F) {
	for _, u := range sampleUsers() {
		b, err := json.Marshal(u)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
		// Mutations the fuzzer is slow to find: cut, case-changed key,
		// spaces, a repeated key.
		f.Add(b[:len(b)/2], false)
		f.Add([]byte(strings.Replace(string(b), `"userName"`, `"username"`, 1)), true)
		f.Add([]byte(strings.ReplaceAll(string(b), `,"`, ` , "`)), false)
		f.Add([]byte(strings.Replace(string(b), `{`, `{"id":"dup",`, 1)), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, prefill bool) {
		start := User{}
		if prefill {
			start = prefilled()
		}
		checkSameAsJSON(t, b, start)
	})
}

func BenchmarkDecodeUser(b *testing.B) {
	at := time.Date(2026, 11, 30, 5, 24, 8, 123456789, time.UTC)
	rec, err := json.Marshal(User{
		ID: "0f8fad5b-d9cb-469f-a165-70867728950e", UserName: "bob@example.com", ExternalID: "00u1a2b3c4d5",
		DisplayName: "Bob Example", Emails: []string{"bob@example.com", "bob.b@example.org"},
		Active: true, Source: "scim",
		Attributes: json.RawMessage(`{"name":{"givenName":"Bob","familyName":"Example"},"title":"Engineer","userType":"Employee"}`),
		Created:    at, Modified: at, Version: 7,
	})
	if err != nil {
		b.Fatal(err)
	}
	decoders := []struct {
		name   string
		decode func([]byte, *User) error
	}{
		{"encoding-json", func(b []byte, u *User) error { return json.Unmarshal(b, u) }},
		{"DecodeUser", DecodeUser},
	}
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				var u User
				if err := d.decode(rec, &u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeUserFastPath: the records the stores write take the fast path
// (the equality tests pass either way, so this guards the speed).
func TestDecodeUserFastPath(t *testing.T) {
	for _, u := range sampleUsers() {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var d userDecoder
		if !d.decode(b) {
			t.Errorf("record %s fell back to encoding/json", b)
		}
	}
}
