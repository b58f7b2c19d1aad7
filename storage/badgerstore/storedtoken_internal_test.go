package badgerstore

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestStoredTokenDecodesWhatEncodingJSONWrote: storedToken reads back
// every SCIMToken as encoding/json stored it, and refuses what is not 32
// numbers from 0 to 255.
func TestStoredTokenDecodesWhatEncodingJSONWrote(t *testing.T) {
	hashes := [][32]byte{{}, {0: 255, 31: 1}}
	for range 50 {
		var h [32]byte
		rand.Read(h[:])
		hashes = append(hashes, h)
	}
	for _, h := range hashes {
		want := storage.SCIMToken{ID: storage.NewID(), Hash: h, Created: time.Now().UTC()}
		raw, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got storedToken
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got.ID != want.ID || [32]byte(got.Hash) != want.Hash || !got.Created.Equal(want.Created) {
			t.Fatalf("%s decoded as %+v", raw, got)
		}
	}
	for _, bad := range []string{
		`[]`, `[1,2,3]`, `"abc"`, `null`, `[256` + repeat(",0", 31) + `]`, `[01` + repeat(",0", 31) + `]`,
		`[-1` + repeat(",0", 31) + `]`, `[0` + repeat(",0", 32) + `]`, `[0` + repeat(",0", 30) + `]`,
		`[1.5` + repeat(",0", 31) + `]`, `[0` + repeat(",0", 31) + `,]`, `[0` + repeat(",0", 31),
	} {
		var h storedHash
		if err := h.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s: decoded as %v, want an error", bad, h)
		}
	}
	var h storedHash
	if err := h.UnmarshalJSON([]byte(" [ 7" + repeat(" , 7", 31) + " ] ")); err != nil || h[31] != 7 {
		t.Errorf("spaced array: %v, %v", h, err)
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
