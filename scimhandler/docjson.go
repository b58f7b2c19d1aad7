package scimhandler

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// SCIM documents are map[string]any, and encoding/json encodes a map
// through reflection, allocating for every key and value it sorts: on a
// SCIM create that was the largest source of allocations after the store
// itself (the attributes stored, the document answered). appendDocJSON
// writes the values a decoded document holds directly and leaves anything
// else to encoding/json, so the bytes are exactly what encoding/json
// writes (TestDocJSONMatchesEncodingJSON, FuzzDocJSON).

// marshalDoc is json.Marshal(doc).
func marshalDoc(doc map[string]any) ([]byte, error) {
	return appendDocJSON(nil, doc, true)
}

// appendDocJSON appends the JSON encoding of v: map keys sorted, and the
// HTML characters <, > and & escaped when escapeHTML, as json.Marshal does
// (a json.Encoder with SetEscapeHTML(false) does not).
func appendDocJSON(dst []byte, v any, escapeHTML bool) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if t {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		if plainString(t, escapeHTML) {
			dst = append(dst, '"')
			dst = append(dst, t...)
			return append(dst, '"'), nil
		}
	case map[string]any:
		if t == nil {
			return append(dst, "null"...), nil
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, strings.Compare)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendDocJSON(dst, k, escapeHTML); err != nil {
				return nil, err
			}
			dst = append(dst, ':')
			if dst, err = appendDocJSON(dst, t[k], escapeHTML); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		if t == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendDocJSON(dst, e, escapeHTML); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	// Numbers, strings that need escaping, and any other type.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// plainString says whether s is written verbatim between quotes: printable
// ASCII other than the quote and the backslash (and <, >, & when HTML is
// escaped).
func plainString(s string, escapeHTML bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
		if escapeHTML && (c == '<' || c == '>' || c == '&') {
			return false
		}
	}
	return true
}
