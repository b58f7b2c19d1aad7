package scimhandler

import (
	"net/http"
	"strings"
)

// Discovery endpoints (RFC 7644 §4) describe exactly what this handler
// does: PATCH, filters (bounded by maxResults), sorting and ETags are
// supported; bulk and password changes are not (a password is accepted and
// discarded).

func (h *Handler) serviceProviderConfig(req *request) error {
	writeJSON(req.w, http.StatusOK, map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with the tenant's SCIM bearer token, sent as 'Authorization: Bearer <token>'.",
			"specUri":     "https://www.rfc-editor.org/info/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     req.base + "/ServiceProviderConfig",
		},
	})
	return nil
}

// refuseFilter implements RFC 7644 §4: discovery endpoints do not filter,
// and say so rather than return unfiltered results.
func refuseFilter(r *http.Request) error {
	if r.URL.Query().Has("filter") {
		return &scimError{status: http.StatusForbidden, detail: "discovery endpoints do not support filtering"}
	}
	return nil
}

func schemaRepresentation(s *schema, base string) map[string]any {
	return map[string]any{
		"schemas":     []string{schemaSchema},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  s.Attributes,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     base + "/Schemas/" + s.ID,
		},
	}
}

func (h *Handler) schemas(req *request, rest []string) error {
	return serveDiscovery(req, rest, allSchemas, "schema",
		func(s *schema) string { return s.ID }, schemaRepresentation)
}

// serveDiscovery answers a discovery endpoint (Schemas, ResourceTypes): the
// whole list, or the one item whose id (case-insensitive) is rest[0].
func serveDiscovery[T any](req *request, rest []string, items []T, what string, id func(T) string, render func(T, string) map[string]any) error {
	if err := refuseFilter(req.r); err != nil {
		return err
	}
	if len(rest) == 1 {
		for _, it := range items {
			if strings.EqualFold(id(it), rest[0]) {
				writeJSON(req.w, http.StatusOK, render(it, req.base))
				return nil
			}
		}
		return errNotFound("%s %q not found", what, truncate(rest[0], 128))
	}
	var out []any
	for _, it := range items {
		out = append(out, render(it, req.base))
	}
	writeDiscoveryList(req, out)
	return nil
}

func resourceTypeRepresentation(rt *resourceType, base string) map[string]any {
	exts := []any{}
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	return map[string]any{
		"schemas":          []string{schemaResourceType},
		"id":               rt.Name,
		"name":             rt.Name,
		"endpoint":         rt.Endpoint,
		"description":      rt.Description,
		"schema":           rt.Schema.ID,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     base + "/ResourceTypes/" + rt.Name,
		},
	}
}

func (h *Handler) resourceTypes(req *request, rest []string) error {
	return serveDiscovery(req, rest, resourceTypes, "resource type",
		func(rt *resourceType) string { return rt.Name }, resourceTypeRepresentation)
}

func writeDiscoveryList(req *request, resources []any) {
	writeJSON(req.w, http.StatusOK, map[string]any{
		"schemas":      []string{schemaListResponse},
		"totalResults": len(resources),
		"startIndex":   1,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}
