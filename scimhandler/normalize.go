package scimhandler

import (
	"encoding/json"
	"sort"
	"strings"
)

// Client documents are brought into one canonical shape before anything is
// stored or compared: attribute names take the schema's spelling, values
// take the schema's types where a client's mistake is unambiguous ("False"
// for false, a bare id for a complex "manager"), null means unassigned, and
// read-only attributes are dropped as RFC 7643 §2.2 asks.

// maxAttributes bounds the keys of a resource or of one of its objects:
// URN-qualified keys are parsed one by one.
const maxAttributes = 1000

// normalizeResource canonicalises a resource document received on POST,
// PUT, or built by PATCH. Keys whose attribute is read-only are ignored.
func normalizeResource(rt *resourceType, in map[string]any) (map[string]any, error) {
	if len(in) > maxAttributes {
		return nil, errInvalidValue("a resource may have at most %d attributes", maxAttributes)
	}
	out := make(map[string]any, len(in))
	// Keys are visited in order so that the outcome does not depend on map
	// iteration when two keys differ only in case.
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in[k]
		if v == nil {
			continue
		}
		switch {
		case strings.EqualFold(k, "schemas"):
			if err := checkSchemasValue(v); err != nil {
				return nil, err
			}
		case rt.extension(k) != nil:
			ext := rt.extension(k)
			m, ok := v.(map[string]any)
			if !ok {
				return nil, errInvalidValue("%s must be an object", ext.ID)
			}
			norm, err := normalizeAttrs(ext.Attributes, m, ext.ID+":")
			if err != nil {
				return nil, err
			}
			if len(norm) > 0 {
				mergeInto(out, ext.ID, norm)
			}
		case rt.isCoreURN(k):
			// A core-schema container, as some clients nest it.
			m, ok := v.(map[string]any)
			if !ok {
				return nil, errInvalidValue("%s must be an object", rt.Schema.ID)
			}
			norm, err := normalizeResource(rt, m)
			if err != nil {
				return nil, err
			}
			for nk, nv := range norm {
				out[nk] = nv
			}
		case isURNKey(k):
			// A URN-qualified attribute ("urn:...:User:department") or an
			// extension this service provider does not know, kept as sent.
			if reservedURN(k) {
				return nil, errInvalidValue("%q is not a schema of %s resources", truncate(k, 128), rt.Name)
			}
			ap, err := parseAttrPathCached(k)
			if err != nil {
				out[k] = v
				continue
			}
			ref, err := resolveAttrPath(rt, ap)
			if err != nil || ref.container != "" && ref.ext == nil {
				out[k] = v
				continue
			}
			if err := setNormalized(out, ref, v); err != nil {
				return nil, err
			}
		default:
			def := rt.topAttr(k)
			if def == nil {
				if err := checkNotForeign(rt, attrRef{name: k}); err != nil {
					return nil, errInvalidValue("%s", err.(*scimError).detail)
				}
				out[k] = v // an attribute beyond the schema, kept as sent
				continue
			}
			if def.isReadOnly() {
				continue
			}
			nv, err := normalizeValue(def, v, def.Name)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[def.Name] = nv
			}
		}
	}
	return out, nil
}

// setNormalized stores v at a resolved URN-qualified path of out.
func setNormalized(out map[string]any, ref attrRef, v any) error {
	if ref.def.isReadOnly() || ref.subDef.isReadOnly() {
		return nil
	}
	if ref.sub != "" {
		v = map[string]any{ref.sub: v}
	}
	var nv any = v
	if ref.def != nil {
		var err error
		if nv, err = normalizeValue(ref.def, v, ref.display()); err != nil {
			return err
		}
	}
	if nv == nil {
		return nil
	}
	c := containerOf(out, ref, true)
	if existing, ok := c[ref.name].(map[string]any); ok {
		if m, ok := nv.(map[string]any); ok {
			for sk, sv := range m {
				existing[sk] = sv
			}
			return nil
		}
	}
	c[ref.name] = nv
	return nil
}

func mergeInto(out map[string]any, key string, m map[string]any) {
	if existing, ok := out[key].(map[string]any); ok {
		for k, v := range m {
			existing[k] = v
		}
		return
	}
	out[key] = m
}

// normalizeAttrs canonicalises an object whose keys are attributes of defs.
func normalizeAttrs(defs []*attribute, in map[string]any, pathPrefix string) (map[string]any, error) {
	if len(in) > maxAttributes {
		return nil, errInvalidValue("%s may have at most %d attributes", strings.TrimSuffix(pathPrefix, "."), maxAttributes)
	}
	out := make(map[string]any, len(in))
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in[k]
		if v == nil || strings.EqualFold(k, "schemas") {
			continue
		}
		def := findAttr(defs, k)
		if def == nil {
			out[k] = v
			continue
		}
		if def.isReadOnly() {
			continue
		}
		nv, err := normalizeValue(def, v, pathPrefix+def.Name)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[def.Name] = nv
		}
	}
	return out, nil
}

func checkSchemasValue(v any) error {
	list, ok := v.([]any)
	if !ok {
		return errInvalidSyntax("schemas must be an array of schema URNs")
	}
	for _, e := range list {
		if _, ok := e.(string); !ok {
			return errInvalidSyntax("schemas must be an array of schema URNs")
		}
	}
	return nil
}

// normalizeValue canonicalises v as a value of def. nil means unassigned.
// Identical values of a multi-valued attribute are kept once, as a PATCH
// add keeps them (see setAt): a client listing an email twice means it once.
func normalizeValue(def *attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !def.MultiValued {
		return normalizeSingle(def, v, path)
	}
	if def.Type == typeComplex {
		// Each element must be an object. A lone object stands for a
		// one-element list (PATCH clients send one to add one value);
		// a bare string does not: unlike a manager's id, it could be any
		// of the element's sub-attributes.
		if err := checkComplexList(v, path); err != nil {
			return nil, err
		}
	} else if _, isMap := v.(map[string]any); isMap {
		return nil, errInvalidValue("%s must be an array of %ss, not an object", path, def.Type)
	}
	var out []any
	for _, e := range asList(v) {
		ne, err := normalizeSingle(def, e, path)
		if err != nil {
			return nil, err
		}
		if ne != nil && !containsJSON(out, ne) {
			out = append(out, ne)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	keepOnePrimary(out)
	return out, nil
}

// checkComplexList refuses a value of a multi-valued complex attribute
// that is not an object or an array of objects (nulls aside).
func checkComplexList(v any, path string) error {
	switch t := v.(type) {
	case map[string]any:
		return nil
	case []any:
		for _, e := range t {
			if _, ok := e.(map[string]any); !ok && e != nil {
				return errInvalidValue("%s must be an array of objects, not an array of %s", path, jsonTypePlural(e))
			}
		}
		return nil
	default:
		return errInvalidValue("%s must be an array of objects, not %s", path, jsonTypeName(v))
	}
}

// jsonTypeName names the JSON type of a decoded value, for error details.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return "a value of another type"
	}
}

// jsonTypePlural is jsonTypeName for the elements of an array.
func jsonTypePlural(v any) string {
	switch v.(type) {
	case string:
		return "strings"
	case bool:
		return "booleans"
	case json.Number, float64:
		return "numbers"
	case []any:
		return "arrays"
	default:
		return "values of another type"
	}
}

// normalizeSingle canonicalises one (non-list) value of def.
func normalizeSingle(def *attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch def.Type {
	case typeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			// Entra ID sends a manager as a bare id: that is its value.
			if s, isStr := v.(string); isStr && def.valueSub() != nil && !def.MultiValued {
				m = map[string]any{"value": s}
			} else {
				return nil, errInvalidValue("%s must be an object, not %s", path, jsonTypeName(v))
			}
		}
		norm, err := normalizeAttrs(def.SubAttributes, m, path+".")
		if err != nil {
			return nil, err
		}
		if len(norm) == 0 {
			return nil, nil
		}
		return norm, nil
	case typeBoolean:
		switch t := v.(type) {
		case bool:
			return t, nil
		case string:
			// Entra ID sends "True"/"False".
			switch strings.ToLower(strings.TrimSpace(t)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			return nil, errInvalidValue("%s must be true or false, not the string %q", path, truncate(t, 64))
		}
		return nil, errInvalidValue("%s must be true or false, not %s", path, jsonTypeName(v))
	case typeInteger, typeDecimal:
		switch t := v.(type) {
		case json.Number:
			if def.Type == typeInteger {
				if _, err := t.Int64(); err != nil {
					return nil, errInvalidValue("%s must be an integer", path)
				}
			}
			return t, nil
		case string:
			n := json.Number(strings.TrimSpace(t))
			if _, err := n.Float64(); err == nil {
				return normalizeSingle(def, n, path)
			}
		}
		return nil, errInvalidValue("%s must be a number, not %s", path, jsonTypeName(v))
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, errInvalidValue("%s must be a dateTime string, not %s", path, jsonTypeName(v))
		}
		if _, ok := parseDateTime(s); !ok {
			return nil, errInvalidValue("%s: %q is not a dateTime", path, s)
		}
		return s, nil
	default: // string, reference, binary
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, errInvalidValue("%s must be a string, not %s", path, jsonTypeName(v))
	}
}

// keepOnePrimary leaves primary=true on the first element that has it
// (RFC 7643 §2.4: at most one primary value).
func keepOnePrimary(list []any) {
	seen := false
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if p, ok := m["primary"].(bool); ok && p {
			if seen {
				m["primary"] = false
			}
			seen = true
		}
	}
}

// Attributes beyond the schema are kept (custom attributes and extensions
// of the client), except names that belong to the other resource type or
// to the SCIM namespaces this service provider defines: those are client
// mistakes (a password on a Group, members on a User) and are refused.

// reservedURN says whether urn lies in a SCIM namespace whose schemas are
// all known here (core schemas and protocol messages).
func reservedURN(urn string) bool {
	l := strings.ToLower(urn)
	return strings.HasPrefix(l, "urn:ietf:params:scim:schemas:core:") || strings.HasPrefix(l, "urn:ietf:params:scim:api:")
}

// checkNotForeign refuses a written attribute path that is not rt's but
// another resource type's, or in a reserved namespace.
func checkNotForeign(rt *resourceType, ref attrRef) error {
	if ref.container != "" && ref.ext == nil && reservedURN(ref.container) {
		return errInvalidPath("%q is not a schema of %s resources", truncate(ref.container, 128), rt.Name)
	}
	if ref.container != "" || ref.def != nil {
		return nil
	}
	for _, other := range resourceTypes {
		if other != rt && other.topAttr(ref.name) != nil {
			return errInvalidPath("%s is not an attribute of %s resources", ref.name, rt.Name)
		}
	}
	return nil
}
