package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The X-Remote-Groups value: see "The groups header" in the package doc.

// groupsSeparator joins the items. A comma followed by a space reads well and
// is what a client that splits on commas and trims expects.
const groupsSeparator = ", "

// ErrGroupsHeader is wrapped by every DecodeGroups error.
var ErrGroupsHeader = errors.New("authz: malformed groups header")

// EncodeGroups returns the groups header value for names, in their order.
// A name is written as is unless plainGroupName says it must be quoted, in
// which case it is written as a JSON string (RFC 8259). No names give "".
func EncodeGroups(names []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString(groupsSeparator)
		}
		if plainGroupName(name) {
			b.WriteString(name)
			continue
		}
		b.Write(quoteGroupName(name))
	}
	return b.String()
}

// plainGroupName says whether name can travel unquoted: it is not empty,
// does not start or end with a space or tab (which a reader trims), and has
// no comma (the separator), double quote (which opens a quoted item),
// backslash, or control character (which HTTP forbids in a field value).
// Bytes above 0x7F (UTF-8 text) are plain: HTTP carries them as obs-text.
func plainGroupName(name string) bool {
	if name == "" || isOWS(name[0]) || isOWS(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == 0x7F || c == ',' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// quoteGroupName writes name as a JSON string. HTML escaping is off so '<'
// stays '<'; DEL, which JSON leaves raw but HTTP forbids, is escaped too.
// encoding/json turns invalid UTF-8 into U+FFFD, so a quoted name that is
// not UTF-8 does not round-trip; names come from SCIM or directory JSON,
// which is always UTF-8.
func quoteGroupName(name string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(name); err != nil {
		// Encoding a string cannot fail.
		panic(fmt.Sprintf("authz: quoting a group name: %v", err))
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if bytes.IndexByte(out, 0x7F) >= 0 {
		out = bytes.ReplaceAll(out, []byte{0x7F}, []byte(`\u007f`))
	}
	return out
}

// DecodeGroups parses a groups header value written by EncodeGroups (or by
// hand following the same rules). "" gives no names. Items are separated by
// commas with optional spaces or tabs around them; an item that starts with
// '"' is a JSON string, any other item is the name itself and may not
// contain '"' or '\'. An empty item is an error.
func DecodeGroups(value string) ([]string, error) {
	var names []string
	i := skipOWS(value, 0)
	if i == len(value) {
		return nil, nil
	}
	for {
		if value[i] == '"' {
			dec := json.NewDecoder(strings.NewReader(value[i:]))
			var name string
			if err := dec.Decode(&name); err != nil {
				return nil, fmt.Errorf("%w: item at byte %d: %v", ErrGroupsHeader, i, err)
			}
			names = append(names, name)
			i += int(dec.InputOffset())
		} else {
			end := strings.IndexByte(value[i:], ',')
			if end < 0 {
				end = len(value)
			} else {
				end += i
			}
			name := strings.TrimRight(value[i:end], " \t")
			if name == "" {
				return nil, fmt.Errorf("%w: empty item at byte %d", ErrGroupsHeader, i)
			}
			if strings.ContainsAny(name, "\"\\") {
				return nil, fmt.Errorf("%w: unquoted item at byte %d contains '\"' or '\\'", ErrGroupsHeader, i)
			}
			names = append(names, name)
			i = end
		}
		i = skipOWS(value, i)
		if i == len(value) {
			return names, nil
		}
		if value[i] != ',' {
			return nil, fmt.Errorf("%w: expected ',' at byte %d", ErrGroupsHeader, i)
		}
		i = skipOWS(value, i+1)
		if i == len(value) {
			return nil, fmt.Errorf("%w: empty item after the last ','", ErrGroupsHeader)
		}
	}
}

func skipOWS(s string, i int) int {
	for i < len(s) && isOWS(s[i]) {
		i++
	}
	return i
}
