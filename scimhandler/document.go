package scimhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// A SCIM resource is handled as a JSON document: map[string]any as decoded
// with json.Decoder.UseNumber, so numbers keep their exact text. Attribute
// names are matched case-insensitively everywhere (RFC 7643 §2.1); stored
// documents use the schema's spelling.

// getField returns m's value for name, matching the key case-insensitively.
func getField(m map[string]any, name string) (key string, v any, ok bool) {
	if m == nil {
		return "", nil, false
	}
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// setField sets name in m, replacing any key that differs only in case.
func setField(m map[string]any, name string, v any) {
	deleteField(m, name)
	m[name] = v
}

// deleteField removes name from m, whatever the key's case.
func deleteField(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// asList returns v as a list: arrays as they are, a single value as a list
// of one, nil as nothing.
func asList(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	default:
		return []any{v}
	}
}

// isPresent implements the "pr" notion of a value: assigned, not null, not
// empty (RFC 7644 §3.4.2.2).
func isPresent(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case []any:
		for _, e := range t {
			if isPresent(e) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, e := range t {
			if isPresent(e) {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// decodeJSONObject decodes exactly one JSON object from r.
func decodeJSONObject(r io.Reader) (map[string]any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if isMaxBytesError(err) {
			return nil, err
		}
		if errors.Is(err, io.EOF) {
			return nil, errInvalidSyntax("request body is empty")
		}
		return nil, errInvalidSyntax("request body is not valid JSON: %v", err)
	}
	// Nothing but whitespace may follow the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if isMaxBytesError(err) {
			return nil, err
		}
		return nil, errInvalidSyntax("request body has data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errInvalidSyntax("request body must be a JSON object")
	}
	return m, nil
}

// decodeStored decodes a document the handler stored itself.
func decodeStored(raw []byte) (map[string]any, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("scimhandler: stored attributes are not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// cloneValue deep-copies a JSON value.
func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = cloneValue(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = cloneValue(e)
		}
		return c
	default:
		return v
	}
}

func cloneDoc(m map[string]any) map[string]any {
	return cloneValue(m).(map[string]any)
}

// jsonEqual compares two JSON values by their canonical encoding.
func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// orderedKeys lists doc's keys in response order: rt's schema order first,
// other plain attributes sorted, then extension URNs, then meta.
func orderedKeys(rt *resourceType, doc map[string]any) []string {
	keys := make([]string, 0, len(doc))
	seen := make(map[string]bool, len(doc))
	for _, k := range rt.keyOrder {
		if _, ok := doc[k]; ok {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var plain, urns []string
	for k := range doc {
		switch {
		case seen[k] || k == "meta":
		case isURNKey(k):
			urns = append(urns, k)
		default:
			plain = append(plain, k)
		}
	}
	sort.Strings(plain)
	sort.Strings(urns)
	keys = append(keys, plain...)
	keys = append(keys, urns...)
	if _, ok := doc["meta"]; ok {
		keys = append(keys, "meta")
	}
	return keys
}

// marshalJSON encodes v without escaping <, > and & (names such as
// "R&D" stay readable; the answers are never embedded in HTML).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// marshalResource encodes doc with its keys in response order.
func marshalResource(rt *resourceType, doc map[string]any) (json.RawMessage, error) {
	return appendResource(make([]byte, 0, 1024), rt, doc)
}

// appendResource is marshalResource appending to buf.
func appendResource(buf []byte, rt *resourceType, doc map[string]any) ([]byte, error) {
	buf = append(buf, '{')
	for i, k := range orderedKeys(rt, doc) {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendDocJSON(buf, k, false); err != nil {
			return nil, err
		}
		buf = append(buf, ':')
		if buf, err = appendDocJSON(buf, doc[k], false); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// attrRef is an attribute path (RFC 7644 §3.10) resolved against a
// resource type.
type attrRef struct {
	// container is "" for attributes at the top of the resource, or the
	// key of the extension object holding the attribute.
	container string
	ext       *schema // the known extension, when container names one
	// wholeExt: the path names an extension schema itself.
	wholeExt bool
	name     string     // attribute name, in the schema's spelling when known
	def      *attribute // nil when the attribute is not in the schema
	sub      string
	subDef   *attribute
}

// display is the path as text, for error details.
func (r attrRef) display() string {
	s := r.name
	if r.container != "" {
		s = r.container + ":" + s
	}
	if r.sub != "" {
		s += "." + r.sub
	}
	return s
}

// leaf is the definition of the values the path designates.
func (r attrRef) leaf() *attribute {
	if r.sub != "" {
		return r.subDef
	}
	return r.def
}

// isTop says whether the path names the top-level attribute name.
func (r attrRef) isTop(name string) bool {
	return r.container == "" && !r.wholeExt && strings.EqualFold(r.name, name)
}

var errPathNotComplex = errors.New("only complex attributes have sub-attributes")

// resolveAttrPath resolves a parsed attribute path against rt. Unknown
// attributes resolve with a nil def: the handler keeps what clients send
// even beyond the schema.
func resolveAttrPath(rt *resourceType, p filter.AttributePath) (attrRef, error) {
	uri, name, sub := p.URI(), p.AttributeName, p.SubAttributeName()
	ref := attrRef{name: name}
	if uri != "" {
		// "urn:...:enterprise:2.0:User" parses as URI "urn:...:2.0" and
		// attribute "User": the path then names the extension itself.
		full := uri + ":" + name
		if ext := rt.extension(full); ext != nil {
			if sub != "" {
				return attrRef{}, fmt.Errorf("%q names a schema, not an attribute", full+"."+sub)
			}
			return attrRef{container: ext.ID, ext: ext, wholeExt: true, name: ext.ID}, nil
		}
		if rt.isCoreURN(full) {
			return attrRef{}, fmt.Errorf("%q names the core schema, not an attribute", full)
		}
		switch ext := rt.extension(uri); {
		case rt.isCoreURN(uri):
			ref.def = rt.topAttr(name)
		case ext != nil:
			ref.container, ref.ext = ext.ID, ext
			ref.def = findAttr(ext.Attributes, name)
		default:
			ref.container = uri
		}
	} else {
		ref.def = rt.topAttr(name)
	}
	if ref.def != nil {
		ref.name = ref.def.Name
	}
	if sub != "" {
		if ref.def != nil && ref.def.Type != typeComplex {
			return attrRef{}, fmt.Errorf("%q: %w", ref.name+"."+sub, errPathNotComplex)
		}
		ref.sub = sub
		if sd := ref.def.subAttr(sub); sd != nil {
			ref.sub, ref.subDef = sd.Name, sd
		}
	}
	return ref, nil
}

// containerOf returns the object holding ref's attribute inside doc, or nil.
// With create, a missing extension object is created.
func containerOf(doc map[string]any, ref attrRef, create bool) map[string]any {
	if ref.container == "" {
		return doc
	}
	_, v, ok := getField(doc, ref.container)
	if m, isMap := v.(map[string]any); ok && isMap {
		return m
	}
	if !create {
		return nil
	}
	m := map[string]any{}
	setField(doc, ref.container, m)
	return m
}

// pruneEmpty removes ref's container when it became empty.
func pruneEmpty(doc map[string]any, ref attrRef) {
	if ref.container == "" {
		return
	}
	if c := containerOf(doc, ref, false); c != nil && len(c) == 0 {
		deleteField(doc, ref.container)
	}
}
