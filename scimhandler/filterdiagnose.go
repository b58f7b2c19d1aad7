package scimhandler

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The filter-parser library backtracks, so when a filter does not parse
// its error names the first byte and the parser's own types ("expected
// op.Or or[func ...]", or a U+FFFD for the end of input), which tells a
// client nothing. This file walks the RFC 7644 §3.4.2.2 grammar (with the
// extensions filter.go accepts: "attr[filter].sub op value") over the same
// text, only after the library refused it, to say what is wrong in the
// client's terms: the 1-based character position and what was expected
// there.

// filterOperators are the comparison operators of RFC 7644 §3.4.2.2.
var filterOperators = []string{"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}

const expectedOperators = "eq, ne, co, sw, ew, gt, ge, lt, le or pr"

// filterSyntaxError is a located syntax error in a filter or PATCH path.
type filterSyntaxError struct {
	pos int // byte offset into the text
	msg string
}

// describe renders the error for the client, with a 1-based character
// position.
func (e *filterSyntaxError) describe(text string) string {
	pos := e.pos
	if pos > len(text) {
		pos = len(text)
	}
	return fmt.Sprintf("%s at position %d", e.msg, utf8.RuneCountInString(text[:pos])+1)
}

// filterScanner is a recursive-descent checker of filter syntax.
type filterScanner struct {
	s   string
	pos int
}

// diagnoseFilter returns the first syntax error of a filter, or nil when
// the grammar accepts it.
func diagnoseFilter(text string) *filterSyntaxError {
	sc := &filterScanner{s: text}
	if err := sc.orExpr(false); err != nil {
		return err
	}
	return sc.trailing("'and', 'or' or the end of the filter")
}

// diagnosePath returns the first syntax error of a PATCH path
// (attrPath, or attrPath "[" valFilter "]" ["." subAttr]), or nil.
func diagnosePath(text string) *filterSyntaxError {
	sc := &filterScanner{s: text}
	if err := sc.attrPath(); err != nil {
		return err
	}
	if sc.peek() == '[' {
		if err := sc.bracket(); err != nil {
			return err
		}
		if sc.peek() == '.' {
			sc.pos++
			if err := sc.attrName("sub-attribute"); err != nil {
				return err
			}
		}
	}
	return sc.trailing("the end of the path")
}

// trailing reports what follows a complete expression.
func (sc *filterScanner) trailing(expected string) *filterSyntaxError {
	if sc.pos >= len(sc.s) {
		return nil
	}
	sc.skipSpacesForMessage()
	switch c := sc.s[sc.pos]; c {
	case ')':
		return sc.errf("unbalanced ')': no '(' is open")
	case ']':
		return sc.errf("unbalanced ']': no '[' is open")
	case ' ':
		return sc.errf("unexpected space; expected %s", expected)
	default:
		return sc.errf("unexpected %s; expected %s", sc.found(), expected)
	}
}

func (sc *filterScanner) errf(format string, args ...any) *filterSyntaxError {
	return &filterSyntaxError{pos: sc.pos, msg: fmt.Sprintf(format, args...)}
}

func (sc *filterScanner) errAt(pos int, format string, args ...any) *filterSyntaxError {
	return &filterSyntaxError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

func (sc *filterScanner) peek() byte {
	if sc.pos < len(sc.s) {
		return sc.s[sc.pos]
	}
	return 0
}

// found quotes what stands at the current position, for messages: the
// next name-like word, or else one character, or "the end of the filter".
// Bytes that are not valid UTF-8 are shown as escapes, never as U+FFFD.
func (sc *filterScanner) found() string {
	if sc.pos >= len(sc.s) {
		return "the end of the filter"
	}
	end := sc.pos
	for end < len(sc.s) && end-sc.pos < 24 && isPathChar(sc.s[end]) {
		end++
	}
	if end == sc.pos {
		_, n := utf8.DecodeRuneInString(sc.s[sc.pos:])
		end += n
	}
	return quoteForClient(sc.s[sc.pos:end])
}

// skipSpacesForMessage moves past spaces so that an error names the
// unexpected word, not the space before it.
func (sc *filterScanner) skipSpacesForMessage() {
	for sc.pos < len(sc.s)-1 && sc.s[sc.pos] == ' ' {
		sc.pos++
	}
}

// quoteForClient quotes s with single quotes, escaping control characters
// and invalid UTF-8 so that no replacement character reaches the client.
func quoteForClient(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`) // sent as such: shown escaped too
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// spaces consumes one or more spaces; it reports whether there were any.
func (sc *filterScanner) spaces() bool {
	start := sc.pos
	for sc.pos < len(sc.s) && sc.s[sc.pos] == ' ' {
		sc.pos++
	}
	return sc.pos > start
}

// word returns the run of letters at pos (not consumed).
func (sc *filterScanner) word() string {
	end := sc.pos
	for end < len(sc.s) && isAlpha(sc.s[end]) {
		end++
	}
	return sc.s[sc.pos:end]
}

// orExpr: andExpr *(SP "or" SP andExpr)
func (sc *filterScanner) orExpr(inBrackets bool) *filterSyntaxError {
	return sc.logical("or", func() *filterSyntaxError {
		return sc.logical("and", func() *filterSyntaxError { return sc.unary(inBrackets) })
	})
}

// logical parses operand *(SP op SP operand), leaving pos after the last
// operand.
func (sc *filterScanner) logical(op string, operand func() *filterSyntaxError) *filterSyntaxError {
	if err := operand(); err != nil {
		return err
	}
	for {
		save := sc.pos
		if !sc.spaces() {
			return nil
		}
		w := sc.word()
		if !strings.EqualFold(w, op) {
			sc.pos = save
			return nil
		}
		sc.pos += len(w)
		opPos := sc.pos
		if sc.pos >= len(sc.s) {
			return sc.errf("expected a filter after '%s'", w)
		}
		if !sc.spaces() {
			return sc.errf("expected a space after '%s'", w)
		}
		if sc.pos >= len(sc.s) {
			return sc.errAt(opPos, "expected a filter after '%s'", w)
		}
		if err := operand(); err != nil {
			return err
		}
	}
}

// unary: "not" ["("filter")"] / "(" filter ")" / attribute expression
func (sc *filterScanner) unary(inBrackets bool) *filterSyntaxError {
	if sc.pos >= len(sc.s) {
		return sc.errf("expected a filter such as userName eq \"value\"")
	}
	if w := sc.word(); strings.EqualFold(w, "not") {
		save := sc.pos
		sc.pos += len(w)
		sc.spaces()
		if sc.peek() == '(' {
			return sc.paren(inBrackets)
		}
		if sc.pos >= len(sc.s) || sc.pos == save+len(w) && isPathChar(sc.peek()) {
			// "not" at the end, or an attribute whose name starts with "not".
			if sc.pos >= len(sc.s) {
				return sc.errf("expected '(' after 'not'")
			}
			sc.pos = save
		} else {
			return sc.errf("expected '(' after 'not', found %s", sc.found())
		}
	}
	if sc.peek() == '(' {
		return sc.paren(inBrackets)
	}
	return sc.attrExpr(inBrackets)
}

// paren: "(" filter ")"
func (sc *filterScanner) paren(inBrackets bool) *filterSyntaxError {
	open := sc.pos
	sc.pos++
	if err := sc.orExpr(inBrackets); err != nil {
		return err
	}
	if sc.peek() != ')' {
		if sc.pos >= len(sc.s) {
			return sc.errf("unbalanced '(': the '(' at position %d is never closed", utf8.RuneCountInString(sc.s[:open])+1)
		}
		sc.skipSpacesForMessage()
		return sc.errf("expected ')' to close the '(' at position %d, found %s", utf8.RuneCountInString(sc.s[:open])+1, sc.found())
	}
	sc.pos++
	return nil
}

// bracket: "[" valFilter "]"
func (sc *filterScanner) bracket() *filterSyntaxError {
	open := sc.pos
	sc.pos++
	if err := sc.orExpr(true); err != nil {
		return err
	}
	if sc.peek() != ']' {
		if sc.pos >= len(sc.s) {
			return sc.errf("unbalanced '[': the '[' at position %d is never closed", utf8.RuneCountInString(sc.s[:open])+1)
		}
		sc.skipSpacesForMessage()
		return sc.errf("expected ']' to close the '[' at position %d, found %s", utf8.RuneCountInString(sc.s[:open])+1, sc.found())
	}
	sc.pos++
	return nil
}

// attrExpr: attrPath SP "pr" / attrPath SP compareOp SP compValue /
// attrPath "[" valFilter "]" ["." subAttr SP compareOp SP compValue]
func (sc *filterScanner) attrExpr(inBrackets bool) *filterSyntaxError {
	pathStart := sc.pos
	if err := sc.attrPath(); err != nil {
		return err
	}
	if sc.peek() == '[' {
		if inBrackets {
			return sc.errf("value paths cannot nest: '[' inside '[...]'")
		}
		if err := sc.bracket(); err != nil {
			return err
		}
		if sc.peek() != '.' {
			return nil // a value path is a whole expression
		}
		sc.pos++
		pathStart = sc.pos
		if err := sc.attrName("sub-attribute"); err != nil {
			return err
		}
	}
	path := sc.s[pathStart:sc.pos]
	if sc.pos >= len(sc.s) {
		return sc.errf("expected an operator (%s) after '%s'", expectedOperators, path)
	}
	if !sc.spaces() {
		return sc.errf("expected a space and an operator after '%s', found %s", path, sc.found())
	}
	if sc.pos >= len(sc.s) {
		return sc.errf("expected an operator (%s) after '%s'", expectedOperators, path)
	}
	op := sc.word()
	known := false
	for _, o := range filterOperators {
		known = known || strings.EqualFold(op, o)
	}
	if !known {
		if op == "" {
			return sc.errf("expected an operator (%s) after '%s', found %s", expectedOperators, path, sc.found())
		}
		return sc.errf("unknown operator %s; expected %s", quoteForClient(op), expectedOperators)
	}
	sc.pos += len(op)
	if strings.EqualFold(op, "pr") {
		return nil
	}
	if sc.pos >= len(sc.s) {
		return sc.errf("expected a value after '%s'", op)
	}
	if c := sc.peek(); c == ')' || c == ']' {
		return sc.errf("expected a value after '%s'", op)
	}
	if !sc.spaces() {
		return sc.errf("expected a space after '%s', found %s", op, sc.found())
	}
	if sc.pos >= len(sc.s) {
		return sc.errf("expected a value after '%s'", op)
	}
	return sc.compValue(op)
}

// compValue: "false" / "null" / "true" / number / string
func (sc *filterScanner) compValue(op string) *filterSyntaxError {
	c := sc.peek()
	switch {
	case c == '"':
		return sc.str()
	case c == '-' || c >= '0' && c <= '9':
		return sc.number()
	case isAlpha(c):
		w := sc.word()
		for _, lit := range []string{"true", "false", "null"} {
			if strings.EqualFold(w, lit) {
				sc.pos += len(w)
				return nil
			}
		}
	}
	return sc.errf("expected a value after '%s' (a \"quoted string\", a number, true, false or null), found %s", op, sc.found())
}

// str checks a JSON string literal.
func (sc *filterScanner) str() *filterSyntaxError {
	start := sc.pos
	for i := sc.pos + 1; i < len(sc.s); i++ {
		switch c := sc.s[i]; {
		case c == '"':
			sc.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(sc.s) {
				break
			}
			switch e := sc.s[i+1]; e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(sc.s) || !isHex4(sc.s[i+2:i+6]) {
					return sc.errAt(i, "invalid escape in a string: \\u takes four hex digits")
				}
				i += 5
			default:
				return sc.errAt(i, "invalid escape %s in a string", quoteForClient(sc.s[i:i+2]))
			}
		case c < 0x20:
			return sc.errAt(i, "control character in a string (escape it)")
		}
	}
	return sc.errAt(start, "unterminated string: the '\"' here is never closed")
}

func isHex4(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return len(s) == 4
}

// number checks a JSON number.
func (sc *filterScanner) number() *filterSyntaxError {
	start := sc.pos
	i := sc.pos
	if sc.s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(sc.s) && sc.s[i] >= '0' && sc.s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	intStart := i
	if digits() == 0 {
		return sc.errAt(start, "expected a number, found %s", quoteForClient(sc.s[start:min(i+1, len(sc.s))]))
	}
	if sc.s[intStart] == '0' && i-intStart > 1 {
		return sc.errAt(start, "a number cannot start with 0")
	}
	if i < len(sc.s) && sc.s[i] == '.' {
		i++
		if digits() == 0 {
			return sc.errAt(i, "expected digits after the decimal point")
		}
	}
	if i < len(sc.s) && (sc.s[i] == 'e' || sc.s[i] == 'E') {
		i++
		if i < len(sc.s) && (sc.s[i] == '+' || sc.s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return sc.errAt(i, "expected digits in the number's exponent")
		}
	}
	sc.pos = i
	return nil
}

// attrPath: [URI ":"] ATTRNAME ["." ATTRNAME]
func (sc *filterScanner) attrPath() *filterSyntaxError {
	start := sc.pos
	end := start
	for end < len(sc.s) && isPathChar(sc.s[end]) {
		end++
	}
	if end == start {
		if sc.pos >= len(sc.s) {
			return sc.errf("expected an attribute name")
		}
		return sc.errf("expected an attribute name, found %s", sc.found())
	}
	text := sc.s[start:end]
	name := text
	if i := strings.LastIndexByte(text, ':'); i >= 0 {
		if !strings.HasPrefix(strings.ToLower(text), "urn:") {
			return sc.errf("bad attribute path %s: only a schema URN (urn:...) may contain ':'", quoteForClient(text))
		}
		if j := strings.Index(text, "::"); j >= 0 {
			return sc.errAt(start+j+1, "bad attribute path: empty segment in the schema URN %s", quoteForClient(text[:i]))
		}
		name = text[i+1:]
		sc.pos = start + i + 1
		if name == "" {
			return sc.errf("bad attribute path %s: expected an attribute name after the schema URN", quoteForClient(text))
		}
	}
	if err := sc.attrName("attribute"); err != nil {
		return err
	}
	if sc.peek() == '.' {
		sc.pos++
		if err := sc.attrName("sub-attribute"); err != nil {
			return err
		}
		if sc.peek() == '.' {
			return sc.errf("bad attribute path %s: at most one sub-attribute (name.sub) may follow an attribute", quoteForClient(name))
		}
	}
	return nil
}

// attrName: ALPHA *(nameChar), "$ref" included.
func (sc *filterScanner) attrName(what string) *filterSyntaxError {
	if sc.pos >= len(sc.s) {
		return sc.errf("expected a %s name", what)
	}
	c := sc.s[sc.pos]
	if !isAlpha(c) && c != '$' {
		if c == '.' {
			return sc.errf("bad attribute path: expected a %s name, found '.'", what)
		}
		return sc.errf("expected a %s name starting with a letter, found %s", what, sc.found())
	}
	for sc.pos < len(sc.s) && isNameChar(sc.s[sc.pos]) {
		sc.pos++
	}
	return nil
}
