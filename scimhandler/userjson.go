package scimhandler

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portcullis/portcullis/storage"
)

// A page of users without attributes/excludedAttributes spent most of its
// handler time decoding each user's stored attributes into map[string]any,
// adding id/schemas/meta/groups to the map, and encoding it again. The
// stored attributes are already JSON: userJSON splices them, value by
// value, between the typed fields, writing exactly the bytes the generic
// path (renderUser, then marshalResource) writes. It only splices values
// whose stored text is what appendDocJSON would write for their decoded
// form (no whitespace, object keys sorted and unique, strings without
// escapes); for anything else it says so and the caller takes the generic
// path (TestUserJSONMatchesGenericPath compares the two).

// userJSON writes user documents; one serves a page (it reuses its
// scratch space and is not safe for concurrent use).
type userJSON struct {
	fields []splicedField
	// The user being written.
	u           *storage.User
	base        string
	groups      []*storage.Group
	extensions  []string // present known extensions
	unknownURNs []string // URN keys of objects no extension names
}

// splicedField is one top-level attribute of the document being written.
type splicedField struct {
	key   string
	class int    // fieldOrdered, fieldPlain, fieldURN, fieldMeta
	order int    // position in the resource type's key order (fieldOrdered)
	raw   []byte // the stored value, or nil for a field the handler writes
	own   ownField
}

// ownField is a field of a user document written from storage.User.
type ownField int

const (
	ownSchemas ownField = iota
	ownID
	ownUserName
	ownActive
	ownExternalID
	ownDisplayName
	ownEmails
	ownGroups
	ownMeta
)

const (
	fieldOrdered = iota
	fieldPlain
	fieldURN
	fieldMeta
)

// userKeyOrder is userResource.keyOrder as positions.
var userKeyOrder = func() map[string]int {
	m := make(map[string]int, len(userResource.keyOrder))
	for i, k := range userResource.keyOrder {
		if _, dup := m[k]; !dup {
			m[k] = i
		}
	}
	return m
}()

// typedUserKeys are the attributes userAttributesOf sets or deletes from
// the typed fields of storage.User, or removes as server-owned.
var typedUserKeys = []string{"id", "meta", "groups", "password", "schemas",
	"userName", "active", "externalId", "displayName", "emails"}

// appendUser appends u's SCIM document with groups, as renderUser with
// groups and no projection followed by marshalResource would; ok is false
// (and dst unchanged in length) when u's stored attributes cannot be
// spliced.
func (w *userJSON) appendUser(dst []byte, u *storage.User, base string, groups []*storage.Group) ([]byte, bool) {
	w.fields, w.extensions, w.unknownURNs = w.fields[:0], w.extensions[:0], w.unknownURNs[:0]
	w.u, w.base, w.groups = u, base, groups
	hasEmails, ok := w.storedFields(u.Attributes)
	if !ok {
		return dst, false
	}
	for _, f := range w.fields {
		if f.class != fieldURN {
			continue
		}
		if userResource.extension(f.key) != nil {
			if string(f.raw) != "null" {
				w.extensions = append(w.extensions, f.key)
			}
		} else if f.raw[0] == '{' {
			w.unknownURNs = append(w.unknownURNs, f.key)
		}
	}
	slices.Sort(w.unknownURNs)
	w.add("schemas", ownSchemas)
	w.add("id", ownID)
	w.add("userName", ownUserName)
	w.add("active", ownActive)
	if u.ExternalID != "" {
		w.add("externalId", ownExternalID)
	}
	if u.DisplayName != "" {
		w.add("displayName", ownDisplayName)
	}
	if !hasEmails && len(u.Emails) > 0 {
		w.add("emails", ownEmails)
	}
	if len(groups) > 0 {
		w.add("groups", ownGroups)
	}
	w.add("meta", ownMeta)
	slices.SortFunc(w.fields, func(a, b splicedField) int {
		if a.class != b.class {
			return a.class - b.class
		}
		if a.class == fieldOrdered {
			return a.order - b.order
		}
		return strings.Compare(a.key, b.key)
	})
	dst = append(dst, '{')
	for i, f := range w.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.key)
		dst = append(dst, ':')
		if f.raw != nil {
			dst = append(dst, f.raw...)
		} else {
			dst = w.appendOwn(dst, f.own)
		}
	}
	return append(dst, '}'), true
}

// appendOwn writes a field from w.u.
func (w *userJSON) appendOwn(dst []byte, f ownField) []byte {
	u := w.u
	switch f {
	case ownSchemas:
		dst = append(dst, '[')
		dst = appendJSONString(dst, userResource.Schema.ID)
		for _, ext := range userResource.Extensions {
			if slices.Contains(w.extensions, ext.ID) {
				dst = append(dst, ',')
				dst = appendJSONString(dst, ext.ID)
			}
		}
		for _, k := range w.unknownURNs {
			dst = append(dst, ',')
			dst = appendJSONString(dst, k)
		}
		return append(dst, ']')
	case ownID:
		return appendJSONString(dst, u.ID)
	case ownUserName:
		return appendJSONString(dst, u.UserName)
	case ownActive:
		return strconv.AppendBool(dst, u.Active)
	case ownExternalID:
		return appendJSONString(dst, u.ExternalID)
	case ownDisplayName:
		return appendJSONString(dst, u.DisplayName)
	case ownEmails:
		dst = append(dst, '[')
		for i, e := range u.Emails {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"primary":`...)
			dst = strconv.AppendBool(dst, i == 0)
			dst = append(dst, `,"value":`...)
			dst = appendJSONString(dst, e)
			dst = append(dst, '}')
		}
		return append(dst, ']')
	case ownGroups:
		dst = append(dst, '[')
		for i, g := range w.groups {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"$ref":`...)
			dst = appendJSONPath(dst, w.base, groupResource.Endpoint, g.ID)
			dst = append(dst, `,"display":`...)
			dst = appendJSONString(dst, g.DisplayName)
			dst = append(dst, `,"type":"direct","value":`...)
			dst = appendJSONString(dst, g.ID)
			dst = append(dst, '}')
		}
		return append(dst, ']')
	}
	return appendUserMeta(dst, u, w.base)
}

// appendJSONPath writes the string base+endpoint+"/"+id without building it.
func appendJSONPath(dst []byte, base, endpoint, id string) []byte {
	if plainString(base, false) && plainString(id, false) {
		dst = append(dst, '"')
		dst = append(dst, base...)
		dst = append(dst, endpoint...)
		dst = append(dst, '/')
		dst = append(dst, id...)
		return append(dst, '"')
	}
	return appendJSONString(dst, base+endpoint+"/"+id)
}

// add adds a field the handler writes itself.
func (w *userJSON) add(key string, own ownField) {
	f := splicedField{key: key, own: own}
	f.class, f.order = userFieldClass(key)
	w.fields = append(w.fields, f)
}

// userFieldClass is where orderedKeys puts key in a user document.
func userFieldClass(key string) (class, order int) {
	if i, ok := userKeyOrder[key]; ok {
		return fieldOrdered, i
	}
	switch {
	case key == "meta":
		return fieldMeta, 0
	case isURNKey(key):
		return fieldURN, 0
	}
	return fieldPlain, 0
}

// storedFields adds the stored attributes userAttributesOf keeps to
// w.fields, and says whether they hold emails; ok is false when they are
// not spliceable as they are.
func (w *userJSON) storedFields(raw []byte) (hasEmails, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, true
	}
	if raw[0] != '{' {
		return false, false
	}
	i := 1
	if i < len(raw) && raw[i] == '}' {
		return false, i+1 == len(raw)
	}
	prev := ""
	for first := true; ; first = false {
		keyEnd, ok := scanPlainJSONString(raw, i)
		if !ok {
			return false, false
		}
		key := string(raw[i+1 : keyEnd-1])
		// Duplicate keys (the decoder keeps the last) and keys that differ
		// from a typed one only in case take the generic path.
		if (!first && key <= prev) || !plainString(key, false) {
			return false, false
		}
		prev = key
		if keyEnd >= len(raw) || raw[keyEnd] != ':' {
			return false, false
		}
		valEnd, ok := scanCanonicalJSON(raw, keyEnd+1, 0)
		if !ok || valEnd >= len(raw) {
			return false, false
		}
		typed := false
		for _, t := range typedUserKeys {
			if strings.EqualFold(key, t) {
				if key != t {
					return false, false
				}
				typed = true
			}
		}
		if isURNKey(key) {
			if ext := userResource.extension(key); ext != nil && ext.ID != key {
				return false, false
			}
		}
		switch {
		case key == "emails":
			hasEmails = true
			w.fields = append(w.fields, splicedField{key: key, class: fieldOrdered, order: userKeyOrder[key], raw: raw[keyEnd+1 : valEnd]})
		case !typed:
			f := splicedField{key: key, raw: raw[keyEnd+1 : valEnd]}
			f.class, f.order = userFieldClass(key)
			w.fields = append(w.fields, f)
		}
		switch raw[valEnd] {
		case ',':
			i = valEnd + 1
		case '}':
			return hasEmails, valEnd+1 == len(raw)
		default:
			return false, false
		}
	}
}

// appendUserMeta writes metaOf(userResource, ...) as appendDocJSON does.
func appendUserMeta(dst []byte, u *storage.User, base string) []byte {
	modified := u.Modified
	if modified.IsZero() {
		modified = u.Created
	}
	dst = append(dst, `{"created":"`...)
	dst = u.Created.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `","lastModified":"`...)
	dst = modified.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `","location":`...)
	dst = appendJSONPath(dst, base, userResource.Endpoint, u.ID)
	dst = append(dst, `,"resourceType":`...)
	dst = appendJSONString(dst, userResource.Name)
	dst = append(dst, `,"version":"W/\"`...)
	dst = strconv.AppendInt(dst, u.Version, 10)
	return append(dst, `\""}`...)
}

// appendJSONString writes s as appendDocJSON does without HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	if plainString(s, false) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	out, err := appendDocJSON(dst, s, false)
	if err != nil { // a string always encodes
		panic(err)
	}
	return out
}

// maxSpliceDepth bounds scanCanonicalJSON's recursion; deeper documents
// take the generic path.
const maxSpliceDepth = 32

// scanCanonicalJSON returns the end of the JSON value starting at b[i]
// when it is written exactly as appendDocJSON(…, false) writes its
// decoded form (UseNumber); ok is false otherwise.
func scanCanonicalJSON(b []byte, i, depth int) (end int, ok bool) {
	if i >= len(b) || depth > maxSpliceDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return scanPlainJSONString(b, i)
	case c == '{':
		i++
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		var prev []byte
		for first := true; ; first = false {
			keyEnd, ok := scanPlainJSONString(b, i)
			if !ok {
				return 0, false
			}
			key := b[i+1 : keyEnd-1]
			if !first && string(key) <= string(prev) {
				return 0, false
			}
			prev = key
			if keyEnd >= len(b) || b[keyEnd] != ':' {
				return 0, false
			}
			if i, ok = scanCanonicalJSON(b, keyEnd+1, depth+1); !ok || i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		i++
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = scanCanonicalJSON(b, i, depth+1); !ok || i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return scanJSONNumber(b, i)
	}
	return 0, false
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

// scanPlainJSONString returns the end of the string starting at b[i] when
// it has no escapes and encoding/json writes its content verbatim: valid
// UTF-8, no control characters, no U+2028 or U+2029.
func scanPlainJSONString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, true
		case c == '\\' || c < 0x20:
			return 0, false
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
				return 0, false
			}
			j += size
		}
	}
	return 0, false
}

// scanJSONNumber returns the end of the number starting at b[i]
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?): a json.Number keeps
// and writes its text as it is.
func scanJSONNumber(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}
