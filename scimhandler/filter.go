package scimhandler

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"
)

// Bounds on filters: a filter is parsed by a backtracking parser and
// evaluated recursively, so its size and nesting are capped before either.
const (
	maxFilterLength = 4096
	maxFilterDepth  = 32
)

// compiledFilter is a parsed filter whose attribute paths are resolved
// against a resource type. The filter-parser library parses; this file
// evaluates over the resource's JSON representation.
type compiledFilter struct {
	root filterNode
	// refs holds the lower-cased top-level attributes the filter reads
	// ("groups", "members", "members.display"), so callers know what a
	// rendered document must contain before the filter can judge it.
	refs map[string]bool
}

// filterNode is one node of a compiled filter, matched against a scope: the
// resource document, or one element of a multi-valued attribute inside a
// value path.
type filterNode interface {
	match(scope map[string]any) bool
}

// parseFilter parses, bounds-checks and resolves a filter for rt.
func parseFilter(rt *resourceType, text string) (*compiledFilter, error) {
	// Spaces around a filter are a client's slip, not a different filter.
	text = strings.Trim(text, " ")
	if err := checkFilterBounds(text); err != nil {
		return nil, err
	}
	rewritten, valuePaths := extractValuePathSubAttrs(text)
	expr, err := parseFilterCached(rewritten)
	if err != nil {
		return nil, filterSyntaxErr(text)
	}
	c := &filterCompiler{rt: rt, text: text, valuePaths: valuePaths, refs: map[string]bool{}}
	root, err := c.compile(expr, nil)
	if err != nil {
		return nil, err
	}
	return &compiledFilter{root: root, refs: c.refs}, nil
}

func (f *compiledFilter) match(doc map[string]any) bool { return f.root.match(doc) }

// checkFilterBounds rejects filters over maxFilterLength bytes or nested
// deeper than maxFilterDepth parentheses and brackets.
func checkFilterBounds(text string) error {
	if len(text) > maxFilterLength {
		return errInvalidFilter("filter is %d bytes long; at most %d are accepted", len(text), maxFilterLength)
	}
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '"':
			i = skipString(text, i) - 1
		case '(', '[':
			depth++
			if depth > maxFilterDepth {
				return errInvalidFilter("filter nests deeper than %d levels", maxFilterDepth)
			}
		case ')', ']':
			depth--
		}
	}
	return nil
}

// skipString returns the index just past the JSON string starting at i.
func skipString(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// filterSyntaxErr is the invalidFilter answer to a filter the parser
// refused: what is wrong and where, in the client's terms (see
// filterdiagnose.go), never the parser's own message.
func filterSyntaxErr(text string) *scimError {
	if d := diagnoseFilter(text); d != nil {
		return errInvalidFilter("filter: %s", d.describe(text))
	}
	return errInvalidFilter("filter cannot be parsed: expected comparisons such as userName eq \"value\" joined by and, or, not and parentheses")
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '$'
}
func isPathChar(c byte) bool { return isNameChar(c) || c == '.' || c == ':' }

// extractValuePathSubAttrs supports `emails[type eq "work"].value eq "x"`,
// which Entra ID sends but the RFC filter grammar (and so the parser) lacks:
// each `attr[...].sub` is replaced by a placeholder attribute `<p>N.sub` and
// the value path text is kept aside, to be parsed on its own when the
// placeholder is compiled.
func extractValuePathSubAttrs(text string) (string, map[string]string) {
	if !strings.Contains(text, "].") {
		return text, nil
	}
	prefix := "pcvaluepath"
	for strings.Contains(strings.ToLower(text), prefix) {
		prefix += "x"
	}
	var b strings.Builder
	paths := map[string]string{}
	last := 0
	for i := 0; i < len(text); {
		switch text[i] {
		case '"':
			i = skipString(text, i)
		case '[':
			j := i + 1
			for j < len(text) && text[j] != ']' {
				if text[j] == '"' {
					j = skipString(text, j)
					continue
				}
				j++
			}
			if j >= len(text) {
				i = len(text)
				continue
			}
			k := j + 1
			if k+1 < len(text) && text[k] == '.' && isAlpha(text[k+1]) {
				m := k + 1
				for m < len(text) && isNameChar(text[m]) {
					m++
				}
				start := i
				for start > last && text[start-1] == ' ' {
					start--
				}
				for start > last && isPathChar(text[start-1]) {
					start--
				}
				name := prefix + strconv.Itoa(len(paths))
				b.WriteString(text[last:start])
				b.WriteString(name)
				b.WriteString(text[k:m])
				paths[name] = text[start : j+1]
				last, i = m, m
				continue
			}
			i = j + 1
		default:
			i++
		}
	}
	b.WriteString(text[last:])
	return b.String(), paths
}

type filterCompiler struct {
	rt         *resourceType
	text       string // the filter as the client sent it, for error messages
	valuePaths map[string]string
	refs       map[string]bool
}

// compile turns a parsed expression into filterNodes. parent is nil at the
// resource level, or the multi-valued attribute whose elements a value
// path filters.
func (c *filterCompiler) compile(expr filter.Expression, parent *attribute) (filterNode, error) {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		l, err := c.compile(e.Left, parent)
		if err != nil {
			return nil, err
		}
		r, err := c.compile(e.Right, parent)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(string(e.Operator), string(filter.OR)) {
			return &orNode{l, r}, nil
		}
		return &andNode{l, r}, nil
	case *filter.NotExpression:
		x, err := c.compile(e.Expression, parent)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case *filter.ValuePath:
		if parent != nil {
			return nil, errInvalidFilter("value paths cannot nest: %s", e)
		}
		return c.compileValuePath(e)
	case *filter.AttributeExpression:
		if parent == nil && e.AttributePath.URIPrefix == nil {
			if vpText, ok := c.valuePaths[e.AttributePath.AttributeName]; ok {
				return c.compileValuePathSub(e, vpText)
			}
		}
		return c.compileCompare(e, parent)
	default:
		return nil, errInvalidFilter("unsupported filter expression")
	}
}

func (c *filterCompiler) resolve(p filter.AttributePath, parent *attribute) (attrRef, error) {
	if parent != nil {
		// Inside brackets, names are sub-attributes of the parent.
		if p.URIPrefix != nil || p.SubAttribute != nil {
			return attrRef{}, errInvalidFilter("%q is not a sub-attribute of %s", p.String(), parent.Name)
		}
		ref := attrRef{name: p.AttributeName, def: parent.subAttr(p.AttributeName)}
		if ref.def != nil {
			ref.name = ref.def.Name
		}
		return ref, nil
	}
	ref, err := resolveAttrPath(c.rt, p)
	if err != nil {
		return attrRef{}, errInvalidFilter("%v", err)
	}
	if ref.wholeExt {
		return attrRef{}, errInvalidFilter("%q names a schema; filter on one of its attributes", p.String())
	}
	if ref.container == "" {
		c.refs[strings.ToLower(ref.name)] = true
		if ref.sub != "" {
			c.refs[strings.ToLower(ref.name+"."+ref.sub)] = true
		}
	}
	return ref, nil
}

func (c *filterCompiler) compileValuePath(e *filter.ValuePath) (*valuePathNode, error) {
	ref, err := c.resolve(e.AttributePath, nil)
	if err != nil {
		return nil, err
	}
	if ref.sub != "" {
		return nil, errInvalidFilter("%q: a value path filters a multi-valued attribute, not a sub-attribute", e.String())
	}
	if ref.def != nil && ref.def.Type != typeComplex {
		return nil, errInvalidFilter("%q: %s is not a complex attribute", e.String(), ref.name)
	}
	parent := ref.def
	if parent == nil {
		parent = &attribute{Name: ref.name, Type: typeComplex, MultiValued: true}
	}
	inner, err := c.compile(e.ValueFilter, parent)
	if err != nil {
		return nil, err
	}
	// Filters inside members[...] may read the members' display names.
	if ref.isTop("members") {
		c.refs["members.display"] = true
	}
	return &valuePathNode{ref: ref, inner: inner}, nil
}

// compileValuePathSub compiles `attr[filter].sub op value`.
func (c *filterCompiler) compileValuePathSub(e *filter.AttributeExpression, vpText string) (filterNode, error) {
	vp, err := parseValuePathCached(vpText)
	if err != nil {
		return nil, filterSyntaxErr(c.text)
	}
	vpNode, err := c.compileValuePath(&vp)
	if err != nil {
		return nil, err
	}
	subName := e.AttributePath.SubAttributeName()
	elemDef := vpNode.ref.def
	if elemDef == nil {
		elemDef = &attribute{Name: vpNode.ref.name, Type: typeComplex, MultiValued: true}
	}
	cmp, err := c.compileCompare(&filter.AttributeExpression{
		AttributePath: filter.AttributePath{AttributeName: subName},
		Operator:      e.Operator,
		CompareValue:  e.CompareValue,
	}, elemDef)
	if err != nil {
		return nil, err
	}
	vpNode.inner = &andNode{vpNode.inner, cmp}
	return vpNode, nil
}

func (c *filterCompiler) compileCompare(e *filter.AttributeExpression, parent *attribute) (filterNode, error) {
	ref, err := c.resolve(e.AttributePath, parent)
	if err != nil {
		return nil, err
	}
	n := &compareNode{ref: ref, op: filter.CompareOperator(strings.ToLower(string(e.Operator)))}
	leaf := ref.leaf()
	if ref.sub == "" && ref.def != nil && ref.def.Type == typeComplex {
		// "emails co x" compares the value sub-attribute.
		if vs := ref.def.valueSub(); vs != nil {
			n.viaValue, leaf = true, vs
		} else if n.op != filter.PR {
			return nil, errInvalidFilter("%s is complex: compare one of its sub-attributes", ref.display())
		}
	}
	n.leaf = leaf
	if n.op == filter.PR {
		return n, nil
	}
	if err := n.setValue(e.CompareValue); err != nil {
		return nil, err
	}
	return n, nil
}

type andNode struct{ l, r filterNode }
type orNode struct{ l, r filterNode }
type notNode struct{ x filterNode }

func (n *andNode) match(s map[string]any) bool { return n.l.match(s) && n.r.match(s) }
func (n *orNode) match(s map[string]any) bool  { return n.l.match(s) || n.r.match(s) }
func (n *notNode) match(s map[string]any) bool { return !n.x.match(s) }

// valuePathNode matches when one element of a multi-valued attribute
// matches the inner filter (RFC 7644 §3.4.2.2, "[]" grouping).
type valuePathNode struct {
	ref   attrRef
	inner filterNode
}

func (n *valuePathNode) match(scope map[string]any) bool {
	c := containerOf(scope, n.ref, false)
	_, v, _ := getField(c, n.ref.name)
	for _, e := range asList(v) {
		if m, ok := e.(map[string]any); ok && n.inner.match(m) {
			return true
		}
	}
	return false
}

// compareNode is one attribute comparison.
type compareNode struct {
	ref      attrRef
	leaf     *attribute // definition of the compared values; nil if unknown
	viaValue bool       // complex attribute compared by its "value"
	op       filter.CompareOperator

	isNull bool
	raw    string // the compare value's string form as given
	str    string // string form of the compare value, lower-cased unless caseExact
	num    float64
	isNum  bool
	boolV  bool
	isBool bool
	tm     time.Time
	isTime bool
}

func (n *compareNode) caseExact() bool { return n.leaf != nil && n.leaf.CaseExact }

func (n *compareNode) leafType() attrType {
	if n.leaf == nil {
		return ""
	}
	return n.leaf.Type
}

// setValue checks the compare value against the attribute's type and keeps
// it in the forms evaluation needs.
func (n *compareNode) setValue(v any) error {
	t := n.leafType()
	ordering := n.op == filter.GT || n.op == filter.GE || n.op == filter.LT || n.op == filter.LE
	substring := n.op == filter.CO || n.op == filter.SW || n.op == filter.EW
	switch n.op {
	case filter.EQ, filter.NE, filter.CO, filter.SW, filter.EW, filter.GT, filter.GE, filter.LT, filter.LE:
	default:
		return errInvalidFilter("unknown operator %q", n.op)
	}
	switch t {
	case typeBoolean:
		if ordering || substring {
			return errInvalidFilter("%s is boolean: only eq and ne apply", n.ref.display())
		}
	case typeBinary:
		if ordering {
			return errInvalidFilter("%s is binary: ordering operators do not apply", n.ref.display())
		}
	}
	switch cv := v.(type) {
	case nil:
		if n.op != filter.EQ && n.op != filter.NE {
			return errInvalidFilter("null can only be compared with eq or ne")
		}
		n.isNull = true
		return nil
	case bool:
		n.boolV, n.isBool = cv, true
		n.str = strconv.FormatBool(cv)
	case json.Number:
		f, err := cv.Float64()
		if err != nil {
			return errInvalidFilter("number %s is out of range", cv)
		}
		n.num, n.isNum = f, true
		n.str = cv.String()
	case string:
		n.str = unescapeFilterString(cv)
		if t == typeBoolean {
			switch strings.ToLower(n.str) {
			case "true", "false":
				n.boolV, n.isBool = strings.EqualFold(n.str, "true"), true
			default:
				return errInvalidFilter("%s is boolean: compare it with true or false", n.ref.display())
			}
		}
		if t == typeInteger || t == typeDecimal {
			if f, err := strconv.ParseFloat(n.str, 64); err == nil {
				n.num, n.isNum = f, true
			}
		}
		if t == typeDateTime {
			tm, ok := parseDateTime(n.str)
			if !ok && !substring {
				return errInvalidFilter("%q is not a dateTime (e.g. 2024-05-13T04:42:34Z)", n.str)
			}
			n.tm, n.isTime = tm, ok
		}
	default:
		return errInvalidFilter("unsupported compare value %v", v)
	}
	if t == typeBoolean && !n.isBool {
		return errInvalidFilter("%s is boolean: compare it with true or false", n.ref.display())
	}
	n.raw = n.str
	if !n.caseExact() {
		n.str = strings.ToLower(n.str)
	}
	return nil
}

// unescapeFilterString decodes JSON escapes, which the parser leaves in.
func unescapeFilterString(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		return raw
	}
	return s
}

// parseDateTime parses an xsd:dateTime as SCIM uses it.
func parseDateTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// values lists the values the node's path designates in scope, with
// multi-valued attributes flattened.
func (n *compareNode) values(scope map[string]any) []any {
	c := containerOf(scope, n.ref, false)
	_, v, ok := getField(c, n.ref.name)
	if !ok {
		return nil
	}
	sub := n.ref.sub
	if n.viaValue {
		sub = "value"
	}
	if sub == "" {
		return asList(v)
	}
	var out []any
	for _, e := range asList(v) {
		if m, ok := e.(map[string]any); ok {
			if _, sv, ok := getField(m, sub); ok {
				out = append(out, asList(sv)...)
			}
		}
	}
	return out
}

func (n *compareNode) match(scope map[string]any) bool {
	vals := n.values(scope)
	switch {
	case n.op == filter.PR:
		for _, v := range vals {
			if isPresent(v) {
				return true
			}
		}
		return false
	case n.isNull:
		present := false
		for _, v := range vals {
			if isPresent(v) {
				present = true
			}
		}
		return present == (n.op == filter.NE)
	case n.op == filter.NE:
		// ne holds when no value equals: an absent attribute is not equal.
		for _, v := range vals {
			if n.compare(filter.EQ, v) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if n.compare(n.op, v) {
			return true
		}
	}
	return false
}

// compare applies op to one attribute value.
func (n *compareNode) compare(op filter.CompareOperator, v any) bool {
	switch av := v.(type) {
	case nil:
		return false
	case bool:
		if !n.isBool {
			return n.compareStrings(op, strconv.FormatBool(av))
		}
		return op == filter.EQ && av == n.boolV
	case json.Number:
		if n.isNum {
			if f, err := av.Float64(); err == nil {
				return compareOrdered(op, f, n.num)
			}
		}
		return n.compareStrings(op, av.String())
	case float64:
		if n.isNum {
			return compareOrdered(op, av, n.num)
		}
		return n.compareStrings(op, strconv.FormatFloat(av, 'g', -1, 64))
	case string:
		if n.isBool {
			return op == filter.EQ && strings.EqualFold(av, strconv.FormatBool(n.boolV))
		}
		if n.isTime && op != filter.CO && op != filter.SW && op != filter.EW {
			if t, ok := parseDateTime(av); ok {
				return compareTimes(op, t, n.tm)
			}
		}
		if n.isNum && (n.leafType() == typeInteger || n.leafType() == typeDecimal) {
			if f, err := strconv.ParseFloat(av, 64); err == nil {
				return compareOrdered(op, f, n.num)
			}
		}
		return n.compareStrings(op, av)
	default:
		// Objects and arrays are only matched through sub-attributes.
		return false
	}
}

func (n *compareNode) compareStrings(op filter.CompareOperator, s string) bool {
	if !n.caseExact() {
		s = strings.ToLower(s)
	}
	switch op {
	case filter.EQ:
		return s == n.str
	case filter.CO:
		return strings.Contains(s, n.str)
	case filter.SW:
		return strings.HasPrefix(s, n.str)
	case filter.EW:
		return strings.HasSuffix(s, n.str)
	default:
		return compareOrdered(op, s, n.str)
	}
}

func compareOrdered[T int | float64 | string](op filter.CompareOperator, a, b T) bool {
	switch op {
	case filter.EQ:
		return a == b
	case filter.GT:
		return a > b
	case filter.GE:
		return a >= b
	case filter.LT:
		return a < b
	case filter.LE:
		return a <= b
	}
	return false
}

func compareTimes(op filter.CompareOperator, a, b time.Time) bool {
	return compareOrdered(op, a.Compare(b), 0)
}

// String is for debugging and test failure messages.
func (n *compareNode) String() string {
	return fmt.Sprintf("%s %s %q", n.ref.display(), n.op, n.str)
}
