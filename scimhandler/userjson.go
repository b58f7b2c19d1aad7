package scimhandler

import (
	"bytes"
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
// path (renderUser, then marshalResource) writes. Each stored value is
// copied in the form appendDocJSON writes for its decoded form (whitespace
// dropped, object keys sorted, duplicates resolved as the decoder does);
// for what it does not rewrite (strings with escapes, invalid JSON) it
// says so and the caller takes the generic path
// (TestUserJSONMatchesGenericPath and FuzzUserJSON compare the two).

// userJSON writes user documents; one serves a page (it reuses its
// scratch space and is not safe for concurrent use).
type userJSON struct {
	fields  []splicedField
	scratch []byte // the stored values, rewritten as appendDocJSON writes them
	// members and written are canonicalObject's scratch space.
	members []objectMember
	written []byte
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
// w.fields, each value in the form appendDocJSON writes (in w.scratch),
// and says whether they hold emails; ok is false when they are not
// spliceable.
func (w *userJSON) storedFields(raw []byte) (hasEmails, ok bool) {
	w.scratch = w.scratch[:0]
	i := skipSpace(raw, 0)
	if i == len(raw) || (len(raw)-i >= 4 && string(raw[i:i+4]) == "null" && skipSpace(raw, i+4) == len(raw)) {
		return false, true
	}
	if raw[i] != '{' {
		return false, false
	}
	if i = skipSpace(raw, i+1); i < len(raw) && raw[i] == '}' {
		return false, skipSpace(raw, i+1) == len(raw)
	}
	stored := len(w.fields)
	for {
		keyEnd, ok := scanPlainJSONString(raw, i)
		if !ok {
			return false, false
		}
		key := storedKey(raw[i+1 : keyEnd-1])
		if !plainString(key, false) {
			return false, false
		}
		// Duplicate keys (the decoder keeps the last) and keys that differ
		// from a typed one only in case take the generic path.
		for _, f := range w.fields[stored:] {
			if f.key == key {
				return false, false
			}
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return false, false
		}
		start := len(w.scratch)
		var valEnd int
		if w.scratch, valEnd, ok = w.canonicalJSON(w.scratch, raw, skipSpace(raw, i+1), 0); !ok {
			return false, false
		}
		value := w.scratch[start:len(w.scratch):len(w.scratch)]
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
			w.fields = append(w.fields, splicedField{key: key, class: fieldOrdered, order: userKeyOrder[key], raw: value})
		case !typed:
			f := splicedField{key: key, raw: value}
			f.class, f.order = userFieldClass(key)
			w.fields = append(w.fields, f)
		default:
			// Still recorded, for the duplicate check, as a field
			// written from the typed ones (dropped below).
			w.fields = append(w.fields, splicedField{key: key, class: -1})
		}
		i = skipSpace(raw, valEnd)
		if i >= len(raw) {
			return false, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			if skipSpace(raw, i+1) != len(raw) {
				return false, false
			}
			w.fields = slices.DeleteFunc(w.fields, func(f splicedField) bool { return f.class < 0 })
			return hasEmails, true
		default:
			return false, false
		}
	}
}

// storedKey is key as a string: the schema's own for the keys users
// have (no allocation for each of them on every user of a page), a copy
// for any other.
func storedKey(key []byte) string {
	if i, ok := userKeyOrder[string(key)]; ok {
		return userResource.keyOrder[i]
	}
	return string(key)
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

// canonicalJSON appends the JSON value starting at b[i] as appendDocJSON
// (without HTML escaping) writes its decoded form (UseNumber): whitespace
// dropped, object keys sorted, the last of duplicate keys kept, numbers
// and strings as they are. ok is false for what it does not rewrite
// (strings with escapes or characters encoding/json escapes, invalid
// JSON, deep nesting): the generic path takes those.
func (w *userJSON) canonicalJSON(dst, b []byte, i, depth int) (out []byte, end int, ok bool) {
	if i >= len(b) || depth > maxSpliceDepth {
		return dst, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, ok = scanPlainJSONString(b, i)
	case c == '{':
		return w.canonicalObject(dst, b, i, depth)
	case c == '[':
		dst = append(dst, '[')
		if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
			return append(dst, ']'), i + 1, true
		}
		for first := true; ; first = false {
			if !first {
				dst = append(dst, ',')
			}
			if dst, i, ok = w.canonicalJSON(dst, b, i, depth+1); !ok {
				return dst, 0, false
			}
			if i = skipSpace(b, i); i >= len(b) {
				return dst, 0, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case ']':
				return append(dst, ']'), i + 1, true
			default:
				return dst, 0, false
			}
		}
	case c == 't':
		end, ok = scanLiteral(b, i, "true")
	case c == 'f':
		end, ok = scanLiteral(b, i, "false")
	case c == 'n':
		end, ok = scanLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok = scanJSONNumber(b, i)
	}
	if !ok {
		return dst, 0, false
	}
	return append(dst, b[i:end]...), end, true
}

// objectMember is one member of an object canonicalObject rewrites: its
// key at [keyStart, keyEnd) of the input, and its canonical "key":value
// text at [start, end) of the output.
type objectMember struct {
	keyStart, keyEnd int
	start, end       int
}

// canonicalObject is canonicalJSON for an object. Its members are kept on
// w.members from base on (the objects nested in it push theirs above and
// take them off before returning), so a page's objects share one slice.
func (w *userJSON) canonicalObject(dst, b []byte, i, depth int) (out []byte, end int, ok bool) {
	open := len(dst)
	dst = append(dst, '{')
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return append(dst, '}'), i + 1, true
	}
	base := len(w.members)
	defer func() { w.members = w.members[:base] }()
	key := func(m objectMember) []byte { return b[m.keyStart:m.keyEnd] }
	sorted := true
	for {
		keyEnd, ok := scanPlainJSONString(b, i)
		if !ok {
			return dst, 0, false
		}
		m := objectMember{keyStart: i + 1, keyEnd: keyEnd - 1, start: len(dst)}
		if n := len(w.members); n > base {
			if bytes.Compare(key(m), key(w.members[n-1])) <= 0 {
				sorted = false
			}
			dst = append(dst, ',')
			m.start = len(dst)
		}
		dst = append(dst, b[i:keyEnd]...)
		dst = append(dst, ':')
		if i = skipSpace(b, keyEnd); i >= len(b) || b[i] != ':' {
			return dst, 0, false
		}
		if dst, i, ok = w.canonicalJSON(dst, b, skipSpace(b, i+1), depth+1); !ok {
			return dst, 0, false
		}
		m.end = len(dst)
		w.members = append(w.members, m)
		if i = skipSpace(b, i); i >= len(b) {
			return dst, 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			continue
		case '}':
		default:
			return dst, 0, false
		}
		break
	}
	if !sorted {
		// Sort the members written (stably: of equal keys, the last
		// wins, as when decoding) and write them again in that order.
		// The objects nested in this one are done, so w.written is free.
		w.written = append(w.written[:0], dst[open:]...)
		members := w.members[base:]
		slices.SortStableFunc(members, func(x, y objectMember) int { return bytes.Compare(key(x), key(y)) })
		dst = append(dst[:open], '{')
		for k, m := range members {
			if k+1 < len(members) && bytes.Equal(key(members[k+1]), key(m)) {
				continue
			}
			if len(dst) > open+1 {
				dst = append(dst, ',')
			}
			dst = append(dst, w.written[m.start-open:m.end-open]...)
		}
	}
	return append(dst, '}'), i + 1, true
}

// skipSpace skips JSON whitespace from b[i].
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
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
