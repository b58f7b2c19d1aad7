package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// TestStorageBadgerAdaptation compares the adaptation of a Caddyfile that
// sizes the Badger store with its golden JSON (-update-adapt rewrites it).
func TestStorageBadgerAdaptation(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "storage_badger.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	adapted, err := gatewaytest.AdaptErr(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, adapted, "", "\t"); err != nil {
		t.Fatal(err)
	}
	got.WriteString("\n")
	golden := filepath.Join("testdata", "storage_badger.json")
	if *updateAdaptGolden {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-adapt to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("adapts to\n%s\nwant (%s)\n%s", got.Bytes(), golden, want)
	}
}

// TestStorageBadgerSizes: the size options parse with units, and bad
// values are refused with the option's name.
func TestStorageBadgerSizes(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		wantMemtable int64
		wantCache    int64
		wantErr      string // substring; "" for none
		wantMapped   int64
	}{
		{"none", "storage badger /data", 0, 0, "", 0},
		{"binary units", "storage badger /data {\n memtable_size 32MiB\n block_cache 64MiB\n mapped_memory 96MiB\n}", 32 << 20, 64 << 20, "", 96 << 20},
		{"decimal units and bytes", "storage badger /data {\n memtable_size 20MB\n block_cache 1048576\n}", 20_000_000, 1 << 20, "", 0},
		{"not a size", "storage badger /data {\n memtable_size lots\n}", 0, 0, "memtable_size", 0},
		{"zero", "storage badger /data {\n block_cache 0\n}", 0, 0, "block_cache", 0},
		{"missing value", "storage badger /data {\n block_cache\n}", 0, 0, "argument", 0},
		{"extra value", "storage badger /data {\n block_cache 1MiB 2MiB\n}", 0, 0, "argument", 0},
		{"mapped memory off", "storage badger /data {\n mapped_memory off\n}", 0, 0, "", -1},
		{"mapped memory auto", "storage badger /data {\n mapped_memory auto\n}", 0, 0, "", 0},
		{"block cache off", "storage badger /data {\n block_cache off\n}", 0, -1, "", 0},
		{"block cache auto is not a size", "storage badger /data {\n block_cache auto\n}", 0, 0, "block_cache", 0},
		{"mapped memory not a size", "storage badger /data {\n mapped_memory some\n}", 0, 0, "mapped_memory", 0},
		{"unknown option", "storage badger /data {\n index_cache 16MiB\n}", 0, 0, "index_cache", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(tt.in)
			d.Next() // "storage"
			var b BadgerStorage
			err := b.UnmarshalCaddyfile(d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.MemTableSize != tt.wantMemtable || b.BlockCacheSize != tt.wantCache || b.MappedMemory != tt.wantMapped {
				t.Errorf("sizes %d, %d, %d; want %d, %d, %d", b.MemTableSize, b.BlockCacheSize, b.MappedMemory, tt.wantMemtable, tt.wantCache, tt.wantMapped)
			}
		})
	}
}

// TestStorageBadgerSizesChecked: sizes the store would refuse fail the
// config at provisioning, not at first use.
func TestStorageBadgerSizesChecked(t *testing.T) {
	tests := []struct {
		name    string
		b       BadgerStorage
		wantErr bool
	}{
		{"defaults", BadgerStorage{}, false},
		{"set", BadgerStorage{MemTableSize: 64 << 20, BlockCacheSize: 256 << 20}, false},
		{"memtable too small", BadgerStorage{MemTableSize: 1000}, true},
		{"cache off", BadgerStorage{BlockCacheSize: -1}, false},
		{"cache negative", BadgerStorage{BlockCacheSize: -2}, true},
		{"cache too small", BadgerStorage{BlockCacheSize: 1000}, true},
		{"mapped memory off", BadgerStorage{MappedMemory: -1}, false},
		{"mapped memory negative", BadgerStorage{MappedMemory: -2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.b.checkSizes(); (err != nil) != tt.wantErr {
				t.Errorf("checkSizes() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
