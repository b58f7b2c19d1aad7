package scimhandler

import (
	"strings"
)

// projection implements the "attributes" and "excludedAttributes"
// parameters (RFC 7644 §3.4.2.5, §3.9): which attributes a response holds.
// id and schemas are always returned; password never is.
type projection struct {
	include *selection // nil: every attribute returned by default
	exclude *selection // nil: nothing excluded
}

// selection is a set of attribute paths, grouped by container (the
// top-level resource "" or an extension URN) and attribute; a nil sub-set
// means the whole attribute.
type selection struct {
	attrs map[string]map[string]map[string]bool // container → attribute → subs
	whole map[string]bool                       // extension containers selected whole
}

const maxProjectionLength = 4096

// parseProjection parses the comma-separated attribute lists.
func parseProjection(rt *resourceType, attributes, excluded []string) (*projection, error) {
	p := &projection{}
	var err error
	if p.include, err = parseSelection(rt, attributes, "attributes"); err != nil {
		return nil, err
	}
	if p.exclude, err = parseSelection(rt, excluded, "excludedAttributes"); err != nil {
		return nil, err
	}
	return p, nil
}

// splitAttrList splits "a,b, c" into its parts.
func splitAttrList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func parseSelection(rt *resourceType, paths []string, param string) (*selection, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	total := 0
	sel := &selection{attrs: map[string]map[string]map[string]bool{}, whole: map[string]bool{}}
	for _, p := range paths {
		total += len(p)
		if total > maxProjectionLength {
			return nil, errInvalidValue("%s is longer than %d bytes", param, maxProjectionLength)
		}
		ap, err := parseAttrPathCached(p)
		if err != nil {
			return nil, errInvalidValue("%s: %q is not an attribute path", param, p)
		}
		ref, err := resolveAttrPath(rt, ap)
		if err != nil {
			return nil, errInvalidValue("%s: %v", param, err)
		}
		container := strings.ToLower(ref.container)
		if ref.wholeExt {
			sel.whole[container] = true
			continue
		}
		byAttr := sel.attrs[container]
		if byAttr == nil {
			byAttr = map[string]map[string]bool{}
			sel.attrs[container] = byAttr
		}
		name := strings.ToLower(ref.name)
		subs, seen := byAttr[name]
		switch {
		case ref.sub == "":
			byAttr[name] = nil // whole attribute
		case seen && subs == nil:
			// already whole
		default:
			if subs == nil {
				subs = map[string]bool{}
				byAttr[name] = subs
			}
			subs[strings.ToLower(ref.sub)] = true
		}
	}
	return sel, nil
}

// has says whether the selection names attribute name of container at all
// (whole or some sub-attributes).
func (s *selection) has(container, name string) bool {
	if s == nil {
		return false
	}
	if s.whole[strings.ToLower(container)] {
		return true
	}
	_, ok := s.attrs[strings.ToLower(container)][strings.ToLower(name)]
	return ok
}

// wantsTop says whether a response under p contains top-level attribute
// name, so that costly attributes (groups, members) are only computed when
// returned.
func (p *projection) wantsTop(name string) bool {
	if p == nil {
		return true
	}
	if p.include != nil && !p.include.has("", name) {
		return false
	}
	if p.exclude != nil {
		subs, ok := p.exclude.attrs[""][strings.ToLower(name)]
		if ok && subs == nil {
			return false
		}
	}
	return true
}

// wantsSub says whether sub-attribute sub of top-level attribute name is
// returned.
func (p *projection) wantsSub(name, sub string) bool {
	if !p.wantsTop(name) {
		return false
	}
	if p == nil {
		return true
	}
	if p.include != nil {
		if subs := p.include.attrs[""][strings.ToLower(name)]; subs != nil && !subs[strings.ToLower(sub)] {
			return false
		}
	}
	if p.exclude != nil {
		if subs := p.exclude.attrs[""][strings.ToLower(name)]; subs != nil && subs[strings.ToLower(sub)] {
			return false
		}
	}
	return true
}

// returnsAll says whether p leaves every attribute returned by default.
func (p *projection) returnsAll() bool {
	return p == nil || (p.include == nil && p.exclude == nil)
}

// alwaysReturned are never removed by a projection.
func alwaysReturned(key string) bool {
	return strings.EqualFold(key, "id") || strings.EqualFold(key, "schemas")
}

// apply returns the projected copy of a rendered resource document.
func (p *projection) apply(doc map[string]any) map[string]any {
	if p == nil || (p.include == nil && p.exclude == nil) {
		return doc
	}
	out := doc
	if p.include != nil {
		out = map[string]any{}
		for k, v := range doc {
			if alwaysReturned(k) {
				out[k] = v
				continue
			}
			if isURNKey(k) {
				if p.include.whole[strings.ToLower(k)] {
					out[k] = v
				} else if inner, ok := v.(map[string]any); ok {
					if picked := pickAttrs(inner, p.include.attrs[strings.ToLower(k)]); len(picked) > 0 {
						out[k] = picked
					}
				}
				continue
			}
			if picked := pickAttrs(map[string]any{k: v}, p.include.attrs[""]); len(picked) > 0 {
				out[k] = picked[k]
			}
		}
	}
	if p.exclude != nil {
		res := make(map[string]any, len(out))
		for k, v := range out {
			if alwaysReturned(k) {
				res[k] = v
				continue
			}
			if isURNKey(k) {
				if p.exclude.whole[strings.ToLower(k)] {
					continue
				}
				if inner, ok := v.(map[string]any); ok {
					if kept := dropAttrs(inner, p.exclude.attrs[strings.ToLower(k)]); len(kept) > 0 {
						res[k] = kept
					}
					continue
				}
				res[k] = v
				continue
			}
			if kept := dropAttrs(map[string]any{k: v}, p.exclude.attrs[""]); len(kept) > 0 {
				res[k] = kept[k]
			}
		}
		out = res
	}
	return out
}

// pickAttrs keeps the selected attributes (and sub-attributes) of m.
func pickAttrs(m map[string]any, sel map[string]map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		subs, ok := sel[strings.ToLower(k)]
		if !ok {
			continue
		}
		if subs == nil {
			out[k] = v
			continue
		}
		if picked := mapElements(v, func(e map[string]any) map[string]any {
			r := map[string]any{}
			for sk, sv := range e {
				if subs[strings.ToLower(sk)] {
					r[sk] = sv
				}
			}
			return r
		}); picked != nil {
			out[k] = picked
		}
	}
	return out
}

// dropAttrs removes the selected attributes (and sub-attributes) of m.
func dropAttrs(m map[string]any, sel map[string]map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		subs, ok := sel[strings.ToLower(k)]
		switch {
		case !ok:
			out[k] = v
		case subs == nil:
			// excluded whole
		default:
			if kept := mapElements(v, func(e map[string]any) map[string]any {
				r := map[string]any{}
				for sk, sv := range e {
					if !subs[strings.ToLower(sk)] {
						r[sk] = sv
					}
				}
				return r
			}); kept != nil {
				out[k] = kept
			}
		}
	}
	return out
}

// mapElements applies fn to a complex value or to each element of a
// multi-valued one, dropping results that became empty; nil when nothing
// is left.
func mapElements(v any, fn func(map[string]any) map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		if r := fn(t); len(r) > 0 {
			return r
		}
		return nil
	case []any:
		var out []any
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				if r := fn(m); len(r) > 0 {
					out = append(out, r)
				}
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	default:
		return nil
	}
}
