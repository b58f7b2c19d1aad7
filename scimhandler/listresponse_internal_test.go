package scimhandler

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// TestListBodyMatchesWriteJSON: the hand-built ListResponse is byte for
// byte what writeJSON made of the same map, also from a body that held a
// longer page before (the pool's) and with a resource started and undone
// (a user the splice could not write).
func TestListBodyMatchesWriteJSON(t *testing.T) {
	cases := []struct {
		name       string
		total      int
		startIndex int
		resources  []json.RawMessage
	}{
		{"empty", 0, 1, []json.RawMessage{}},
		{"past the end", 3, 10, []json.RawMessage{}},
		{"two", 1000000, 500001, []json.RawMessage{
			json.RawMessage(`{"id":"a","userName":"<b>&x","groups":[{"value":"g"}]}`),
			json.RawMessage(`{"id":"b","displayName":"Ünïcode \u2028"}`),
			json.RawMessage("{\"id\":\"c\",\"displayName\":\"raw \u2028 \u2029\"}"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := httptest.NewRecorder()
			writeJSON(want, 200, map[string]any{
				"schemas":      []string{schemaListResponse},
				"totalResults": c.total,
				"startIndex":   c.startIndex,
				"itemsPerPage": len(c.resources),
				"Resources":    c.resources,
			})
			got := httptest.NewRecorder()
			body := newListBody()
			for range 3 {
				body.next()
				body.buf = append(body.buf, `{"id":"left over from the last page"}`...)
			}
			body.reset()
			for i, r := range c.resources {
				body.next()
				body.buf = append(body.buf, r...)
				if i == 0 {
					mark := body.next()
					body.buf = append(body.buf, `{"id":"half`...)
					body.undo(mark)
				}
			}
			body.write(got, c.total, c.startIndex)
			body.release()
			if got.Body.String() != want.Body.String() {
				t.Errorf("body\n got %s\nwant %s", got.Body, want.Body)
			}
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("status %d %q, want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
		})
	}
}
