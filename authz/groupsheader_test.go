package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGroupsHeaderEncoding(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{"none", nil, ""},
		{"one plain", []string{"admins"}, "admins"},
		{"plain with inner spaces", []string{"Domain Admins", "eng"}, "Domain Admins, eng"},
		{"comma", []string{"R&D, Europe", "admins"}, `"R&D, Europe", admins`},
		{"double quote", []string{`say "hi"`}, `"say \"hi\""`},
		{"backslash", []string{`DOMAIN\users`}, `"DOMAIN\\users"`},
		{"leading space", []string{" padded"}, `" padded"`},
		{"trailing tab", []string{"padded\t"}, `"padded\t"`},
		{"empty name", []string{""}, `""`},
		{"control character", []string{"a\x01b"}, `"a\u0001b"`},
		{"newline", []string{"two\nlines"}, `"two\nlines"`},
		{"DEL", []string{"a\x7fb"}, `"a\u007fb"`},
		{"utf-8 stays raw", []string{"Ingénieurs", "日本"}, "Ingénieurs, 日本"},
		{"utf-8 quoted stays raw", []string{"Ingé, nieurs"}, `"Ingé, nieurs"`},
		{"html is not escaped", []string{"<a>&, b"}, `"<a>&, b"`},
		{"quote at start only", []string{`"quoted`}, `"\"quoted"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EncodeGroups(tc.names)
			if got != tc.want {
				t.Fatalf("EncodeGroups(%q) = %q, want %q", tc.names, got, tc.want)
			}
			if !validFieldValue(got) {
				t.Fatalf("EncodeGroups(%q) = %q is not a valid HTTP field value", tc.names, got)
			}
			back, err := DecodeGroups(got)
			if err != nil {
				t.Fatalf("DecodeGroups(%q): %v", got, err)
			}
			if !reflect.DeepEqual(back, tc.names) && !(len(back) == 0 && len(tc.names) == 0) {
				t.Fatalf("DecodeGroups(%q) = %q, want %q", got, back, tc.names)
			}
		})
	}
}

func TestDecodeGroups(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "a,b", want: []string{"a", "b"}},
		{in: " a ,\tb\t", want: []string{"a", "b"}},
		{in: `"a,b" , c`, want: []string{"a,b", "c"}},
		{in: `"x\u0041"`, want: []string{"xA"}},
		{in: "a,,b", err: true},
		{in: "a,", err: true},
		{in: ",a", err: true},
		{in: `"unterminated`, err: true},
		{in: `"a"b`, err: true},
		{in: `"a" "b"`, err: true},
		{in: `plain"quote`, err: true},
		{in: `back\slash`, err: true},
		{in: `"bad \q escape"`, err: true},
		{in: "\"raw \x01 control\"", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := DecodeGroups(tc.in)
			if tc.err {
				if !errors.Is(err, ErrGroupsHeader) {
					t.Fatalf("DecodeGroups(%q) = %q, %v; want an ErrGroupsHeader", tc.in, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeGroups(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// validFieldValue is RFC 9110's field-value: no control characters but
// tab, no DEL; obs-text (bytes >= 0x80) allowed.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7F {
			return false
		}
	}
	return true
}

// FuzzGroupsHeader checks that any list of names encodes to a valid field
// value that decodes back to the same names, and that whatever DecodeGroups
// accepts re-encodes to something that decodes the same.
func FuzzGroupsHeader(f *testing.F) {
	for _, seed := range []string{
		"admins", "a\x00b", "R&D, Europe\x00admins", `say "hi"`, " x ", "", "\x00", "é\x00\\", "a\x7f",
		`"a,b", c`, "\xff\xfe",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		// As a list of names, NUL separated.
		names := strings.Split(data, "\x00")
		enc := EncodeGroups(names)
		if !validFieldValue(enc) {
			t.Fatalf("EncodeGroups(%q) = %q: invalid field value", names, enc)
		}
		dec, err := DecodeGroups(enc)
		if err != nil {
			t.Fatalf("DecodeGroups(EncodeGroups(%q) = %q): %v", names, enc, err)
		}
		if len(dec) != len(names) {
			t.Fatalf("round trip of %q gave %q", names, dec)
		}
		for i := range names {
			// encoding/json makes invalid UTF-8 in a quoted name U+FFFD;
			// names from the store are always UTF-8.
			if dec[i] != names[i] && (utf8.ValidString(names[i]) || plainGroupName(names[i])) {
				t.Fatalf("round trip of %q gave %q", names, dec)
			}
		}
		// As a header value a client or upstream might send.
		got, err := DecodeGroups(data)
		if err != nil {
			return
		}
		again, err := DecodeGroups(EncodeGroups(got))
		if err != nil {
			t.Fatalf("re-encoding %q (decoded from %q): %v", got, data, err)
		}
		if len(again) != len(got) {
			t.Fatalf("re-encoding %q gave %q", got, again)
		}
		for i := range got {
			if again[i] != got[i] && utf8.ValidString(got[i]) {
				t.Fatalf("re-encoding %q gave %q", got, again)
			}
		}
	})
}
