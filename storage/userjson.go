package storage

import (
	"encoding/json"
	"math/bits"
	"reflect"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeUser decodes a stored user record into u with exactly the result of
// json.Unmarshal(b, u): the same field values (also into a u already filled,
// whose fields absent from b keep their values and whose Emails and
// Attributes backing arrays are reused as encoding/json reuses them), and an
// error exactly when encoding/json gives one.
//
// Why it exists: listing users decodes every record of a page, and
// encoding/json (a validation pass, then reflection) was a fifth of the
// gateway's CPU at a million users. The records the stores write are
// json.Marshal of a User, so one pass over a known shape decodes them.
// Anything that shape does not cover — a key that is not exactly one of
// User's (encoding/json also matches keys case-insensitively), a repeated
// key, null, a value of another type, a number that is not a plain
// integer, deep nesting, any syntax error — goes to json.Unmarshal, which
// then decides (its error is the one returned). The fast path writes
// nothing to u until the whole record has been read, so that fallback
// starts from the caller's u. The string fields it sets share one
// allocation, so one kept field keeps the record's strings (not its
// Attributes, which are a copy of their own).
func DecodeUser(b []byte, u *User) error {
	var d userDecoder
	if d.decode(b) {
		d.commit(u)
		return nil
	}
	return json.Unmarshal(b, u)
}

// The fields of User, as bits of userDecoder.seen.
const (
	userFieldID = iota
	userFieldUserName
	userFieldExternalID
	userFieldDisplayName
	userFieldEmails
	userFieldActive
	userFieldSource
	userFieldPasswordHash
	userFieldRole
	userFieldAttributes
	userFieldCreated
	userFieldModified
	userFieldVersion
)

// userFieldOf maps a key, exactly as json.Marshal writes it, to its field;
// -1 for any other key, which the fast path leaves to encoding/json.
func userFieldOf(key []byte) int {
	switch string(key) {
	case "id":
		return userFieldID
	case "userName":
		return userFieldUserName
	case "externalId":
		return userFieldExternalID
	case "displayName":
		return userFieldDisplayName
	case "emails":
		return userFieldEmails
	case "active":
		return userFieldActive
	case "source":
		return userFieldSource
	case "passwordHash":
		return userFieldPasswordHash
	case "role":
		return userFieldRole
	case "attributes":
		return userFieldAttributes
	case "created":
		return userFieldCreated
	case "modified":
		return userFieldModified
	case "version":
		return userFieldVersion
	}
	return -1
}

// userDecoder holds a record read by the fast path until it is complete.
// The record's strings are unquoted back to back (see put) and become one
// string at the end: one allocation for all of them, not one each.
type userDecoder struct {
	seen uint16 // bit per userField* read

	// The strings are in local[:nLocal] while they fit, else in spilled:
	// the decoder lives on the stack, and a slice into its own array kept
	// in it would move it to the heap.
	local   [256]byte
	nLocal  int
	spilled []byte

	strs [userFieldVersion + 1]span // the string fields' values

	// Emails, the same way: emailsLocal[:nEmails], else emailsSpilled.
	emailsLocal   [8]span
	nEmails       int
	emailsSpilled []span

	active     bool
	attributes []byte // a slice of the input; commit copies it
	created    time.Time
	modified   time.Time
	version    int64
}

// span is the unquoted strings' [start:end].
type span struct{ start, end int }

// put appends p to the unquoted strings.
func (d *userDecoder) put(p []byte) {
	if d.spilled == nil {
		if d.nLocal+len(p) <= len(d.local) {
			d.nLocal += copy(d.local[d.nLocal:], p)
			return
		}
		d.spilled = make([]byte, d.nLocal, 2*(d.nLocal+len(p)))
		copy(d.spilled, d.local[:d.nLocal])
	}
	d.spilled = append(d.spilled, p...)
}

func (d *userDecoder) putRune(r rune) {
	var enc [utf8.UTFMax]byte
	d.put(enc[:utf8.EncodeRune(enc[:], r)])
}

// strsLen is the length of the unquoted strings so far.
func (d *userDecoder) strsLen() int {
	if d.spilled != nil {
		return len(d.spilled)
	}
	return d.nLocal
}

// allStrings gives the unquoted strings as one new string.
func (d *userDecoder) allStrings() string {
	if d.spilled != nil {
		return string(d.spilled)
	}
	return string(d.local[:d.nLocal])
}

func (d *userDecoder) addEmail(sp span) {
	if d.emailsSpilled == nil {
		if d.nEmails < len(d.emailsLocal) {
			d.emailsLocal[d.nEmails] = sp
			d.nEmails++
			return
		}
		d.emailsSpilled = append(make([]span, 0, 2*d.nEmails), d.emailsLocal[:d.nEmails]...)
	}
	d.emailsSpilled = append(d.emailsSpilled, sp)
}

// emails gives the spans of the emails read.
func (d *userDecoder) emails() []span {
	if d.emailsSpilled != nil {
		return d.emailsSpilled
	}
	return d.emailsLocal[:d.nEmails]
}

// commit sets the fields read into u the way encoding/json sets them.
func (d *userDecoder) commit(u *User) {
	all := d.allStrings()
	strs := [...]struct {
		field int
		dst   *string
	}{
		{userFieldID, &u.ID},
		{userFieldUserName, &u.UserName},
		{userFieldExternalID, &u.ExternalID},
		{userFieldDisplayName, &u.DisplayName},
		{userFieldSource, &u.Source},
		{userFieldPasswordHash, &u.PasswordHash},
		{userFieldRole, &u.Role},
	}
	for _, s := range strs {
		if d.has(s.field) {
			sp := d.strs[s.field]
			*s.dst = all[sp.start:sp.end]
		}
	}
	if d.has(userFieldEmails) {
		u.Emails = d.commitEmails(u.Emails, all)
	}
	if d.has(userFieldActive) {
		u.Active = d.active
	}
	if d.has(userFieldAttributes) {
		// json.RawMessage.UnmarshalJSON: append to the old array, so the
		// value is a copy (the input may be a store's buffer).
		u.Attributes = append(u.Attributes[:0], d.attributes...)
	}
	if d.has(userFieldCreated) {
		u.Created = d.created
	}
	if d.has(userFieldModified) {
		u.Modified = d.modified
	}
	if d.has(userFieldVersion) {
		u.Version = d.version
	}
}

// commitEmails gives what encoding/json leaves in the slice dst after
// decoding the emails array into it: dst's array overwritten and grown as
// reflect.Value.Grow grows it, then cut to the array's length; an empty
// array gives an empty, non-nil slice.
func (d *userDecoder) commitEmails(dst []string, all string) []string {
	emails := d.emails()
	n := len(emails)
	if n == 0 {
		return []string{}
	}
	if cap(dst) == 0 && n <= 32 {
		// Growing by one from empty doubles the capacity up to 32 strings
		// (past that the size classes make it uneven): allocate that
		// capacity at once.
		out := make([]string, n, 1<<bits.Len(uint(n-1)))
		for i, sp := range emails {
			out[i] = all[sp.start:sp.end]
		}
		return out
	}
	// encoding/json's own loop, so the array grows exactly as it does.
	v := reflect.ValueOf(&dst).Elem()
	for i, sp := range emails {
		if i >= v.Cap() {
			v.Grow(1)
		}
		if i >= v.Len() {
			v.SetLen(i + 1)
		}
		v.Index(i).SetString(all[sp.start:sp.end])
	}
	v.SetLen(n)
	return dst
}

func (d *userDecoder) has(field int) bool { return d.seen&(1<<field) != 0 }

// decode reads b as one JSON object of User's keys; false means b is
// anything else and encoding/json must decide.
func (d *userDecoder) decode(b []byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return false
		}
		field := userFieldOf(b[i+1 : j])
		if field < 0 || d.has(field) {
			return false
		}
		d.seen |= 1 << field
		i = skipSpace(b, j+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i = d.value(field, b, i); i < 0 {
			return false
		}
		var more bool
		if i, more = nextElement(b, i, '}'); !more {
			return i >= 0 && skipSpace(b, i) == len(b)
		}
	}
}

// nextElement reads what follows an element of an object or array (end
// is its closing byte): i is the start of the next element when more,
// else the index after the container, or -1 when b is not JSON there.
func nextElement(b []byte, i int, end byte) (next int, more bool) {
	i = skipSpace(b, i)
	if i < len(b) {
		switch b[i] {
		case ',':
			return skipSpace(b, i+1), true
		case end:
			return i + 1, false
		}
	}
	return -1, false
}

// value reads the value of field starting at b[i] and gives the index
// after it, or -1.
func (d *userDecoder) value(field int, b []byte, i int) int {
	switch field {
	case userFieldEmails:
		return d.readEmails(b, i)
	case userFieldActive:
		return d.readBool(b, i)
	case userFieldAttributes:
		if i < len(b) && b[i] == 'n' {
			return -1 // null: left to encoding/json
		}
		end := skipValue(b, i, 0)
		if end < 0 {
			return -1
		}
		d.attributes = b[i:end]
		return end
	case userFieldCreated:
		return readTime(b, i, &d.created)
	case userFieldModified:
		return readTime(b, i, &d.modified)
	case userFieldVersion:
		return d.readVersion(b, i)
	}
	sp, next := d.readString(b, i)
	d.strs[field] = sp
	return next
}

func (d *userDecoder) readEmails(b []byte, i int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		sp, next := d.readString(b, i)
		if next < 0 {
			return -1
		}
		d.addEmail(sp)
		var more bool
		if i, more = nextElement(b, next, ']'); !more {
			return i
		}
	}
}

func (d *userDecoder) readBool(b []byte, i int) int {
	switch {
	case hasLiteral(b, i, "true"):
		d.active = true
		return i + 4
	case hasLiteral(b, i, "false"):
		d.active = false
		return i + 5
	}
	return -1
}

// readVersion takes a plain integer that fits int64, as
// strconv.ParseInt (what encoding/json uses) reads it; fractions,
// exponents and overflows are left to encoding/json. A leading zero
// followed by a digit is caught by the caller, which wants a delimiter
// next.
func (d *userDecoder) readVersion(b []byte, i int) int {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := i
	i = skipDigits(b, i)
	if n := i - digits; n == 0 || (n > 1 && b[digits] == '0') {
		return -1
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return -1
	}
	v, err := strconv.ParseInt(string(b[start:i]), 10, 64)
	if err != nil {
		return -1
	}
	d.version = v
	return i
}

// readTime hands the quoted value, as encoding/json does, to
// time.Time.UnmarshalJSON. A value with an escape, or one it refuses, is
// left to encoding/json.
func readTime(b []byte, i int, t *time.Time) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	j := i + 1
	for j < len(b) && plainStringByte[b[j]] {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return -1
	}
	if t.UnmarshalJSON(b[i:j+1]) != nil {
		return -1
	}
	return j + 1
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// readString unquotes the JSON string at b[i] into d's strings as encoding/json
// unquotes it (invalid UTF-8 and lone surrogates become U+FFFD); next is
// the index after it, or -1 when b[i:] does not start with a valid string.
func (d *userDecoder) readString(b []byte, i int) (sp span, next int) {
	if i >= len(b) || b[i] != '"' {
		return span{}, -1
	}
	start := i + 1
	j := start
	for j < len(b) && b[j] < utf8.RuneSelf && plainStringByte[b[j]] {
		j++
	}
	sp.start = d.strsLen()
	d.put(b[start:j])
	if j < len(b) && b[j] == '"' {
		next = j + 1
	} else {
		next = d.unquoteSlow(b, j)
	}
	sp.end = d.strsLen()
	return sp, next
}

// unquoteSlow finishes readString for a string with escapes or non-ASCII
// bytes from b[r:]; it gives the index after the string, or -1.
func (d *userDecoder) unquoteSlow(b []byte, r int) int {
	for r < len(b) {
		c := b[r]
		switch {
		case c == '"':
			return r + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if r+1 >= len(b) {
				return -1
			}
			switch e := b[r+1]; e {
			case '"', '\\', '/':
				d.put([]byte{e})
			case 'b':
				d.put([]byte{'\b'})
			case 'f':
				d.put([]byte{'\f'})
			case 'n':
				d.put([]byte{'\n'})
			case 'r':
				d.put([]byte{'\r'})
			case 't':
				d.put([]byte{'\t'})
			case 'u':
				rr := hex4(b, r)
				if rr < 0 {
					return -1
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, hex4(b, r)); dec != unicode.ReplacementChar {
						d.putRune(dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				d.putRune(rr)
				continue
			default:
				return -1
			}
			r += 2
		case c < utf8.RuneSelf:
			d.put(b[r : r+1])
			r++
		default:
			rr, size := utf8.DecodeRune(b[r:])
			if rr == utf8.RuneError && size == 1 {
				d.putRune(utf8.RuneError)
			} else {
				d.put(b[r : r+size])
			}
			r += size
		}
	}
	return -1
}

// hex4 decodes `\uXXXX` at b[i:], or gives -1.
func hex4(b []byte, i int) rune {
	if len(b)-i < 6 || b[i] != '\\' || b[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// maxSkipDepth bounds the nesting skipValue follows; deeper values (and
// encoding/json's own depth limit) are left to encoding/json.
const maxSkipDepth = 100

// skipValue checks that b[i:] starts with one valid JSON value and gives
// the index after it, or -1.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		if depth >= maxSkipDepth {
			return -1
		}
		return skipContainer(b, i, depth)
	case c == '-' || ('0' <= c && c <= '9'):
		return skipNumber(b, i)
	case hasLiteral(b, i, "true"):
		return i + 4
	case hasLiteral(b, i, "false"):
		return i + 5
	case hasLiteral(b, i, "null"):
		return i + 4
	}
	return -1
}

// skipContainer skips the object or array at b[i].
func skipContainer(b []byte, i, depth int) int {
	object := b[i] == '{'
	end := byte(']')
	if object {
		end = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == end {
		return i + 1
	}
	for {
		if object {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = skipString(b, i); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i = skipValue(b, i, depth+1); i < 0 {
			return -1
		}
		var more bool
		if i, more = nextElement(b, i, end); !more {
			return i
		}
	}
}

// skipString skips the string at b[i], checking its escapes; encoding/json
// accepts any other byte but controls, valid UTF-8 or not.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(b, i) < 0 {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default:
			i++
		}
	}
	return -1
}

// plainStringByte says which bytes stand for themselves inside a JSON
// string: all but controls, the quote and the backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipNumber skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
