package scimhandler

import (
	"encoding/json"
	"sort"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// PATCH (RFC 7644 §3.5.2) is applied to the resource's JSON document. The
// operations accept what real clients send: "op" in any case (Entra ID's
// "Replace"), no path with dotted or URN keys in the value, value filters
// that match nothing on add/replace (a new element is made from the
// filter's eq terms), and "remove" with a value list.

const (
	opAdd     = "add"
	opReplace = "replace"
	opRemove  = "remove"
)

// patchOp is one PATCH operation.
type patchOp struct {
	op       string
	path     string
	value    any
	hasValue bool
}

// maxPatchPaths bounds the attribute paths one PATCH may name (operations
// plus the keys of path-less values): each is parsed and applied in turn.
const maxPatchPaths = 1000

// parsePatchBody reads a PatchOp message.
func parsePatchBody(body map[string]any) ([]patchOp, error) {
	if _, v, ok := getField(body, "schemas"); ok {
		if err := checkSchemasValue(v); err != nil {
			return nil, err
		}
	}
	_, raw, ok := getField(body, "Operations")
	if !ok {
		return nil, errInvalidSyntax("a PATCH body needs an Operations array")
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, errInvalidSyntax("Operations must be a non-empty array")
	}
	ops := make([]patchOp, 0, len(list))
	paths := 0
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, errInvalidSyntax("operation %d is not an object", i+1)
		}
		_, opv, _ := getField(m, "op")
		name, _ := opv.(string)
		name = strings.ToLower(strings.TrimSpace(name))
		if name != opAdd && name != opReplace && name != opRemove {
			return nil, errInvalidSyntax("operation %d: op must be add, replace or remove, not %v", i+1, opv)
		}
		op := patchOp{op: name}
		if _, pv, ok := getField(m, "path"); ok && pv != nil {
			s, isStr := pv.(string)
			if !isStr {
				return nil, errInvalidPath("operation %d: path must be a string", i+1)
			}
			op.path = strings.TrimSpace(s)
		}
		_, op.value, op.hasValue = getField(m, "value")
		if op.value == nil {
			op.hasValue = false
		}
		if op.op == opAdd && !op.hasValue {
			return nil, errInvalidSyntax("operation %d: add needs a value", i+1)
		}
		paths++
		if m, ok := op.value.(map[string]any); ok && op.path == "" {
			paths += len(m)
			for _, v := range m {
				if inner, ok := v.(map[string]any); ok {
					paths += len(inner)
				}
			}
		}
		if paths > maxPatchPaths {
			return nil, errBadRequest(scimTypeTooMany, "a PATCH may name at most %d attribute paths", maxPatchPaths)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// patchTarget is a resolved PATCH path: an attribute (and sub-attribute),
// optionally narrowed by a value filter.
type patchTarget struct {
	ref        attrRef
	filter     filterNode
	filterExpr filter.Expression
}

// resolvePatchPath parses and resolves a PATCH path for rt.
func resolvePatchPath(rt *resourceType, path string) (patchTarget, error) {
	if err := checkFilterBounds(path); err != nil {
		se := err.(*scimError)
		return patchTarget{}, errInvalidPath("path: %s", se.detail)
	}
	p, err := parsePathCached(path)
	if err != nil {
		if d := diagnosePath(path); d != nil {
			return patchTarget{}, errInvalidPath("path: %s", d.describe(path))
		}
		return patchTarget{}, errInvalidPath("path cannot be parsed: expected an attribute path such as name.givenName or emails[type eq \"work\"].value")
	}
	ap := p.AttributePath
	if p.SubAttribute != nil {
		if ap.SubAttribute != nil {
			return patchTarget{}, errInvalidPath("path %q has two sub-attributes", path)
		}
		ap.SubAttribute = p.SubAttribute
	}
	ref, err := resolveAttrPath(rt, ap)
	if err != nil {
		return patchTarget{}, errInvalidPath("path %q: %v", path, err)
	}
	if err := checkNotForeign(rt, ref); err != nil {
		return patchTarget{}, err
	}
	t := patchTarget{ref: ref}
	if p.ValueExpression != nil {
		if ref.wholeExt || ref.def != nil && ref.def.Type != typeComplex {
			return patchTarget{}, errInvalidPath("path %q: only complex attributes take a value filter", path)
		}
		parent := ref.def
		if parent == nil {
			parent = &attribute{Name: ref.name, Type: typeComplex, MultiValued: true}
		}
		c := &filterCompiler{rt: rt, refs: map[string]bool{}}
		node, err := c.compile(p.ValueExpression, parent)
		if err != nil {
			return patchTarget{}, err
		}
		t.filter, t.filterExpr = node, p.ValueExpression
	}
	return t, nil
}

// checkWritable refuses explicit paths to read-only attributes.
func (t patchTarget) checkWritable() error {
	if t.ref.def.isReadOnly() || t.ref.subDef.isReadOnly() {
		return &scimError{status: 400, scimType: scimTypeMutability,
			detail: t.ref.display() + " is read-only"}
	}
	return nil
}

// applyPatch applies ops to doc in order.
func applyPatch(rt *resourceType, doc map[string]any, ops []patchOp) error {
	for _, op := range ops {
		if err := applyPatchOp(rt, doc, op); err != nil {
			return err
		}
	}
	return nil
}

func applyPatchOp(rt *resourceType, doc map[string]any, op patchOp) error {
	if op.path == "" {
		if op.op == opRemove {
			return errBadRequest(scimTypeNoTarget, "remove needs a path")
		}
		m, ok := op.value.(map[string]any)
		if !ok {
			return errInvalidValue("without a path, the value of %s must be an object of attributes", op.op)
		}
		return applyObject(rt, doc, op.op, m)
	}
	if strings.EqualFold(op.path, "schemas") {
		return nil // schemas are recomputed from the attributes present
	}
	t, err := resolvePatchPath(rt, op.path)
	if err != nil {
		return err
	}
	if err := t.checkWritable(); err != nil {
		return err
	}
	if op.op == opRemove {
		return removeAt(doc, t, op.value)
	}
	if !op.hasValue {
		// replace with no value: the attribute becomes unassigned.
		return removeAt(doc, t, nil)
	}
	return setAt(rt, doc, t, op.op, op.value)
}

// applyObject applies an add/replace without a path: each key of the value
// is an attribute path (Entra ID sends "name.givenName" and
// "urn:...:enterprise:2.0:User:department" keys), or an extension URN
// holding attributes. Read-only keys are ignored: Okta sends the group's
// id along with a new displayName.
func applyObject(rt *resourceType, doc map[string]any, opName string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch {
		case strings.EqualFold(k, "schemas"):
			continue
		case rt.isCoreURN(k):
			inner, ok := v.(map[string]any)
			if !ok {
				return errInvalidValue("%s must be an object", k)
			}
			if err := applyObject(rt, doc, opName, inner); err != nil {
				return err
			}
			continue
		}
		t, err := resolvePatchPath(rt, k)
		if err != nil {
			return err
		}
		if t.ref.def.isReadOnly() || t.ref.subDef.isReadOnly() {
			continue
		}
		// An unknown extension sent whole: "urn:example:ext:1.0": {...}.
		if t.ref.container != "" && t.ref.ext == nil && t.filter == nil {
			if inner, ok := v.(map[string]any); ok && t.ref.sub == "" {
				if err := setWholeUnknown(doc, k, opName, inner); err != nil {
					return err
				}
				continue
			}
		}
		if v == nil {
			if err := removeAt(doc, t, nil); err != nil {
				return err
			}
			continue
		}
		if err := setAt(rt, doc, t, opName, v); err != nil {
			return err
		}
	}
	return nil
}

func setWholeUnknown(doc map[string]any, key, opName string, v map[string]any) error {
	_, cur, _ := getField(doc, key)
	existing, ok := cur.(map[string]any)
	if !ok || opName == opReplace && existing == nil {
		setField(doc, key, cloneValue(v))
		return nil
	}
	for k, e := range v {
		if e == nil {
			deleteField(existing, k)
		} else {
			setField(existing, k, cloneValue(e))
		}
	}
	return nil
}

// isMulti says whether the attribute holds a list.
func isMulti(def *attribute, cur, v any) bool {
	if def != nil {
		return def.MultiValued
	}
	_, curList := cur.([]any)
	_, vList := v.([]any)
	return curList || vList
}

// elementDef is def's definition for one element of a multi-valued
// attribute.
func elementDef(def *attribute) *attribute {
	if def == nil || !def.MultiValued {
		return def
	}
	e := *def
	e.MultiValued = false
	return &e
}

func normalizeOrKeep(def *attribute, v any, path string) (any, error) {
	if def == nil {
		return cloneValue(v), nil
	}
	return normalizeValue(def, v, path)
}

// setAt applies add or replace of v at t.
func setAt(rt *resourceType, doc map[string]any, t patchTarget, opName string, v any) error {
	ref := t.ref
	if ref.wholeExt {
		m, ok := v.(map[string]any)
		if !ok {
			return errInvalidValue("%s must be an object", ref.container)
		}
		if ref.ext == nil {
			return setWholeUnknown(doc, ref.container, opName, m)
		}
		return setExtension(rt, doc, ref.ext, opName, m)
	}
	c := containerOf(doc, ref, true)
	defer pruneEmpty(doc, ref)
	key, cur, exists := getField(c, ref.name)
	if !exists {
		key = ref.name
	}
	if t.filter != nil {
		return setFiltered(c, key, cur, t, opName, v)
	}
	if ref.sub != "" {
		sv, err := normalizeOrKeep(ref.subDef, v, ref.display())
		if err != nil {
			return err
		}
		if isMulti(ref.def, cur, nil) {
			list := asList(cur)
			if len(list) == 0 {
				if sv != nil {
					c[key] = []any{map[string]any{ref.sub: sv}}
				}
				return nil
			}
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					setOrDelete(m, ref.sub, sv)
				}
			}
			return nil
		}
		parent, _ := cur.(map[string]any)
		if parent == nil {
			if sv == nil {
				return nil
			}
			parent = map[string]any{}
			c[key] = parent
		}
		setOrDelete(parent, ref.sub, sv)
		if len(parent) == 0 {
			delete(c, key)
		}
		return nil
	}
	nv, err := normalizeOrKeep(ref.def, v, ref.display())
	if err != nil {
		return err
	}
	if isMulti(ref.def, cur, v) {
		added := asList(nv)
		if opName == opReplace {
			if len(added) == 0 {
				delete(c, key)
			} else {
				c[key] = added
			}
			return nil
		}
		list := append([]any(nil), asList(cur)...)
		for _, e := range added {
			if isPrimary(e) {
				clearPrimary(list)
			}
			if !containsJSON(list, e) {
				list = append(list, e)
			}
		}
		if len(list) > 0 {
			c[key] = list
		}
		return nil
	}
	if nm, ok := nv.(map[string]any); ok {
		if existing, ok := cur.(map[string]any); ok {
			// A complex value merges: sub-attributes not given stay.
			for sk, sv := range nm {
				setField(existing, sk, sv)
			}
			return nil
		}
	}
	if nv == nil {
		delete(c, key)
		return nil
	}
	c[key] = nv
	return nil
}

// setFiltered applies add/replace to the elements a value filter selects.
func setFiltered(c map[string]any, key string, cur any, t patchTarget, opName string, v any) error {
	ref := t.ref
	list := append([]any(nil), asList(cur)...)
	elemDef := elementDef(ref.def)
	if _, isObject := v.(map[string]any); ref.sub == "" && !isObject && v != nil {
		// An element of a multi-valued complex attribute is an object; a
		// bare string could be any of its sub-attributes.
		return errInvalidValue("the value for %s must be an object, not %s", ref.display(), jsonTypeName(v))
	}
	var touched []int
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok || !t.filter.match(m) {
			continue
		}
		if ref.sub != "" {
			sv, err := normalizeOrKeep(ref.subDef, v, ref.display())
			if err != nil {
				return err
			}
			setOrDelete(m, ref.sub, sv)
			touched = append(touched, i)
			continue
		}
		nv, err := normalizeOrKeep(elemDef, v, ref.display())
		if err != nil {
			return err
		}
		nm, ok := nv.(map[string]any)
		if !ok {
			return errInvalidValue("the value for %s must be an object", ref.display())
		}
		if opName == opReplace {
			list[i] = nm
		} else {
			for sk, sv := range nm {
				setField(m, sk, sv)
			}
		}
		touched = append(touched, i)
	}
	if len(touched) == 0 {
		// Nothing matched: clients such as Entra ID replace
		// emails[type eq "work"].value on users without a work email and
		// expect one to be added. The element is built from the filter's
		// eq terms; other filters have no target (RFC 7644 §3.5.2.3).
		seed, ok := eqSeed(t.filterExpr, elemDef)
		if !ok {
			return errBadRequest(scimTypeNoTarget, "no value of %s matches the path filter", ref.name)
		}
		if ref.sub != "" {
			sv, err := normalizeOrKeep(ref.subDef, v, ref.display())
			if err != nil {
				return err
			}
			if sv == nil {
				return nil
			}
			seed[ref.sub] = sv
		} else {
			nv, err := normalizeOrKeep(elemDef, v, ref.display())
			if err != nil {
				return err
			}
			nm, ok := nv.(map[string]any)
			if !ok {
				return errInvalidValue("the value for %s must be an object", ref.display())
			}
			for sk, sv := range nm {
				seed[sk] = sv
			}
		}
		list = append(list, seed)
		touched = append(touched, len(list)-1)
	}
	for _, i := range touched {
		if isPrimary(list[i]) {
			for j, e := range list {
				if j != i && isPrimary(e) {
					e.(map[string]any)["primary"] = false
				}
			}
			break
		}
	}
	var kept []any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && len(m) == 0 {
			continue
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		delete(c, key)
	} else {
		c[key] = kept
	}
	return nil
}

// eqSeed builds an element from a filter made only of "attr eq value"
// terms joined by and.
func eqSeed(expr filter.Expression, def *attribute) (map[string]any, bool) {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		if !strings.EqualFold(string(e.Operator), string(filter.EQ)) || e.AttributePath.URIPrefix != nil || e.AttributePath.SubAttribute != nil {
			return nil, false
		}
		name := e.AttributePath.AttributeName
		sd := def.subAttr(name)
		if sd != nil {
			name = sd.Name
		}
		var v any
		switch cv := e.CompareValue.(type) {
		case string:
			v = unescapeFilterString(cv)
		case bool, json.Number:
			v = cv
		default:
			return nil, false
		}
		if sd != nil {
			nv, err := normalizeValue(sd, v, name)
			if err != nil || nv == nil {
				return nil, false
			}
			v = nv
		}
		return map[string]any{name: v}, true
	case *filter.LogicalExpression:
		if !strings.EqualFold(string(e.Operator), string(filter.AND)) {
			return nil, false
		}
		l, ok := eqSeed(e.Left, def)
		if !ok {
			return nil, false
		}
		r, ok := eqSeed(e.Right, def)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// removeAt applies remove at t. A value, when given for a multi-valued
// attribute, names the elements to remove (Entra ID removes members so).
func removeAt(doc map[string]any, t patchTarget, value any) error {
	ref := t.ref
	if ref.wholeExt {
		deleteField(doc, ref.container)
		return nil
	}
	c := containerOf(doc, ref, false)
	if c == nil {
		return nil
	}
	defer pruneEmpty(doc, ref)
	key, cur, exists := getField(c, ref.name)
	if !exists {
		return nil
	}
	if t.filter != nil {
		var kept []any
		for _, e := range asList(cur) {
			m, ok := e.(map[string]any)
			if !ok || !t.filter.match(m) {
				kept = append(kept, e)
				continue
			}
			if ref.sub != "" {
				deleteField(m, ref.sub)
				if len(m) > 0 {
					kept = append(kept, m)
				}
			}
		}
		setOrDeleteList(c, key, kept)
		return nil
	}
	if ref.sub != "" {
		if list, ok := cur.([]any); ok {
			var kept []any
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					deleteField(m, ref.sub)
					if len(m) == 0 {
						continue
					}
				}
				kept = append(kept, e)
			}
			setOrDeleteList(c, key, kept)
			return nil
		}
		if m, ok := cur.(map[string]any); ok {
			deleteField(m, ref.sub)
			if len(m) == 0 {
				delete(c, key)
			}
		}
		return nil
	}
	if list, ok := cur.([]any); ok && value != nil {
		var kept []any
		for _, e := range list {
			if !matchesAnyValue(ref.def, e, asList(value)) {
				kept = append(kept, e)
			}
		}
		setOrDeleteList(c, key, kept)
		return nil
	}
	delete(c, key)
	return nil
}

// matchesAnyValue says whether element e is one of the given values:
// elements with a "value" sub-attribute compare by it, others whole.
func matchesAnyValue(def *attribute, e any, given []any) bool {
	em, isMap := e.(map[string]any)
	for _, g := range given {
		gm, gIsMap := g.(map[string]any)
		if isMap && gIsMap {
			_, ev, eok := getField(em, "value")
			_, gv, gok := getField(gm, "value")
			if eok && gok {
				es, _ := ev.(string)
				gs, _ := gv.(string)
				vs := def.subAttr("value")
				if es != "" && (es == gs || vs != nil && !vs.CaseExact && strings.EqualFold(es, gs)) {
					return true
				}
				continue
			}
		}
		if jsonEqual(e, g) {
			return true
		}
	}
	return false
}

func setOrDelete(m map[string]any, key string, v any) {
	if v == nil {
		deleteField(m, key)
		return
	}
	setField(m, key, v)
}

func setOrDeleteList(c map[string]any, key string, list []any) {
	if len(list) == 0 {
		delete(c, key)
		return
	}
	c[key] = list
}

func isPrimary(e any) bool {
	m, ok := e.(map[string]any)
	if !ok {
		return false
	}
	p, _ := m["primary"].(bool)
	return p
}

func clearPrimary(list []any) {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && isPrimary(m) {
			m["primary"] = false
		}
	}
}

func containsJSON(list []any, v any) bool {
	for _, e := range list {
		if jsonEqual(e, v) {
			return true
		}
	}
	return false
}

// setExtension applies add/replace of a whole extension object: each key
// is one of the extension's attributes.
func setExtension(rt *resourceType, doc map[string]any, ext *schema, opName string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		def := findAttr(ext.Attributes, k)
		if def.isReadOnly() {
			continue
		}
		ref := attrRef{container: ext.ID, ext: ext, name: k, def: def}
		if def != nil {
			ref.name = def.Name
		}
		var err error
		if m[k] == nil {
			err = removeAt(doc, patchTarget{ref: ref}, nil)
		} else {
			err = setAt(rt, doc, patchTarget{ref: ref}, opName, m[k])
		}
		if err != nil {
			return err
		}
	}
	return nil
}
