package badgerstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
)

// TestTableIndexStart: the index offset read from a table's footer is
// where Badger's own index of that table starts: its length (Badger's
// TableInfo.IndexSz) runs from there to the footer, which is the two
// lengths and a checksum of a few bytes. A file that is no table is an
// error, not a guess.
func TestTableIndexStart(t *testing.T) {
	dir := t.TempDir()
	writeUsers(t, dir, defaultTableCompression, 3000) // closing flushes them into a table
	s, err := OpenWithOptions(dir, zap.NewNop(), Options{MappedMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tables := s.db.Tables()
	if len(tables) == 0 {
		t.Fatal("no table: the test shows nothing")
	}
	for _, ti := range tables {
		path := filepath.Join(dir, fmt.Sprintf("%06d.sst", ti.ID))
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		start, err := readTableIndexStart(path)
		if err != nil {
			t.Fatal(err)
		}
		footer := st.Size() - start - int64(ti.IndexSz)
		if start <= 0 || footer < 8 || footer > 64 {
			t.Errorf("table %d (%d bytes, index %d bytes): index at %d leaves a footer of %d bytes", ti.ID, st.Size(), ti.IndexSz, start, footer)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.sst")
	if err := os.WriteFile(junk, []byte{0xff, 0xff, 0xff, 0xff}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTableIndexStart(junk); err == nil {
		t.Error("a four-byte file has an index")
	}
}
