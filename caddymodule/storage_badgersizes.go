package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/portcullis/portcullis/storage/badgerstore"
)

// The Badger store's memory sizes (storage badger { memtable_size ...;
// block_cache ...; mapped_memory ... }), for an operator who trades memory for the largest
// SCIM request (memtable) or for lookups in a store much larger than the
// default cache (block cache): README "Storage", docs/operations.md.

// unmarshalSize reads one size argument: bytes, or with a unit (16MiB,
// 32MB, 1GiB).
func unmarshalSize(d *caddyfile.Dispenser, dst *int64) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := humanize.ParseBytes(d.Val())
	if err != nil || n == 0 || n >= 1<<40 {
		return d.Errf("%s: %q is not a size (e.g. 16MiB)", name, d.Val())
	}
	*dst = int64(n)
	return nil
}

// unmarshalSizeOrOff is unmarshalSize that also takes "off" (-1) and,
// with auto, "auto" (0: the store's default, which grows with it).
func unmarshalSizeOrOff(d *caddyfile.Dispenser, dst *int64, auto bool) error {
	if d.NextArg() {
		switch {
		case d.Val() == "off":
			*dst = -1
			return nil
		case auto && d.Val() == "auto":
			*dst = 0
			return nil
		}
		d.Prev() // back to the option's name, for unmarshalSize
	}
	return unmarshalSize(d, dst)
}

// storeOptions are the sizes to open the store with (0: the default).
func (b *BadgerStorage) storeOptions() badgerstore.Options {
	return badgerstore.Options{MemTableSize: b.MemTableSize, BlockCacheSize: b.BlockCacheSize, MappedMemory: b.MappedMemory}
}

// checkSizes refuses sizes the store would refuse, at provisioning, so a
// config with one fails to load instead of failing at first use.
func (b *BadgerStorage) checkSizes() error {
	if b.MemTableSize < 0 {
		return fmt.Errorf("storage badger: memtable_size must not be negative")
	}
	if b.BlockCacheSize < -1 {
		return fmt.Errorf("storage badger: block_cache_size must be a size or -1 (off)")
	}
	if b.MappedMemory < -1 {
		return fmt.Errorf("storage badger: mapped_memory must be a size, 0 (auto) or -1 (off)")
	}
	if _, err := b.storeOptions().WithDefaults(); err != nil {
		return fmt.Errorf("storage badger: %w", err)
	}
	return nil
}
