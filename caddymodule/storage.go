package caddymodule

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

func init() {
	caddy.RegisterModule(BadgerStorage{})
}

// StoreOpener is a storage backend module (namespace portcullis.storage).
// The app asks it for a key first: configs whose openers give the same key
// share one open store, so a config reload never reopens (or locks out)
// the store the running config is using.
type StoreOpener interface {
	// StoreKey identifies the underlying store, e.g. "badger:/abs/dir".
	StoreKey() string
	// OpenStore opens the store; it is called once per key per process.
	OpenStore(logger *zap.Logger) (storage.Store, error)
}

// openStores holds every store open in this process, keyed by StoreKey and
// counted by the apps using it. Caddy provisions the new config's app
// before it stops the old one, so on reload the count goes 1 → 2 → 1 and
// the store stays open; the last Cleanup closes it.
var openStores = caddy.NewUsagePool()

// sharedStore lets the usage pool close the store when its count hits zero.
type sharedStore struct {
	storage.Store
}

// Destruct implements caddy.Destructor.
func (s sharedStore) Destruct() error { return s.Close() }

// acquireStore returns the open store for opener's key, opening it if no
// config holds it yet. Every successful call must be matched by one
// releaseStore(key).
func acquireStore(opener StoreOpener, logger *zap.Logger) (storage.Store, string, error) {
	key := opener.StoreKey()
	val, loaded, err := openStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := opener.OpenStore(logger)
		if err != nil {
			return nil, err
		}
		return sharedStore{st}, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("opening store %s: %w", key, err)
	}
	if loaded {
		logger.Debug("reusing open store", zap.String("store", key))
	} else {
		logger.Info("opened store", zap.String("store", key))
	}
	return val.(sharedStore).Store, key, nil
}

// releaseStore drops one use of the store; the last use closes it.
func releaseStore(key string, logger *zap.Logger) error {
	closed, err := openStores.Delete(key)
	if closed {
		logger.Info("closed store", zap.String("store", key), zap.Error(err))
	}
	return err
}

// BadgerStorage is the embedded default backend: a Badger database in a
// directory of its own.
type BadgerStorage struct {
	// Dir is the database directory. Relative paths are relative to the
	// working directory. Default: "portcullis" under Caddy's data
	// directory (e.g. ~/.local/share/caddy/portcullis).
	Dir string `json:"dir,omitempty"`
	// KeyEncryptionKey, optional, seals the generated keys at rest
	// (storagekek.go): 32 bytes in hex or base64, typically
	// {env.PORTCULLIS_KEY}.
	KeyEncryptionKey string `json:"key_encryption_key,omitempty"`
	// MemTableSize and BlockCacheSize size the store's memory, in bytes
	// (0: badgerstore.DefaultOptions); see storage_badgersizes.go.
	// BlockCacheSize -1 (Caddyfile "off", the default): no block cache.
	MemTableSize   int64 `json:"memtable_size,omitempty"`
	BlockCacheSize int64 `json:"block_cache_size,omitempty"`
	// MappedMemory bounds the resident pages of the store's mapped files
	// (badgerstore.Options.MappedMemory), in bytes; 0 (Caddyfile "auto",
	// the default): a quarter of the store's size on disk, between 48
	// and 256 MiB; -1 (Caddyfile "off"): never trim them.
	MappedMemory int64 `json:"mapped_memory,omitempty"`

	absDir string
	kek    []byte
}

// CaddyModule returns the Caddy module information.
func (BadgerStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portcullis.storage.badger",
		New: func() caddy.Module { return new(BadgerStorage) },
	}
}

// Provision resolves the directory once, so the key does not depend on a
// later change of working directory.
func (b *BadgerStorage) Provision(caddy.Context) error {
	dir := b.Dir
	if dir == "" {
		dir = defaultBadgerDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("badger storage directory %q: %w", dir, err)
	}
	b.absDir = abs
	if b.kek, err = provisionKEK(b.KeyEncryptionKey, "badger", false); err != nil {
		return err
	}
	return b.checkSizes()
}

func (b *BadgerStorage) keyEncryptionKey() []byte { return b.kek }

// defaultBadgerDir is where the store lives when the config names none.
func defaultBadgerDir() string {
	return filepath.Join(caddy.AppDataDir(), "portcullis")
}

// StoreKey implements StoreOpener.
func (b *BadgerStorage) StoreKey() string { return "badger:" + b.absDir }

// OpenStore implements StoreOpener.
func (b *BadgerStorage) OpenStore(logger *zap.Logger) (storage.Store, error) {
	st, err := badgerstore.OpenWithOptions(b.absDir, logger, b.storeOptions())
	if err != nil {
		return nil, err
	}
	return st, nil
}

// UnmarshalCaddyfile sets up the backend from Caddyfile tokens. Syntax:
//
//	storage badger [<dir>] {
//		key_encryption_key <key>
//		memtable_size <size>   # e.g. 10MiB
//		block_cache <size>|off # e.g. 32MiB; default off
//		mapped_memory <size>|auto|off
//	}
func (b *BadgerStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // backend name
	if d.NextArg() {
		b.Dir = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "key_encryption_key":
			if err := unmarshalKEK(d, &b.KeyEncryptionKey); err != nil {
				return err
			}
		case "memtable_size":
			if err := unmarshalSize(d, &b.MemTableSize); err != nil {
				return err
			}
		case "block_cache":
			if err := unmarshalSizeOrOff(d, &b.BlockCacheSize, false); err != nil {
				return err
			}
		case "mapped_memory":
			if err := unmarshalSizeOrOff(d, &b.MappedMemory, true); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized storage badger option %q (expected key_encryption_key, memtable_size, block_cache or mapped_memory)", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*BadgerStorage)(nil)
	_ StoreOpener           = (*BadgerStorage)(nil)
	_ caddyfile.Unmarshaler = (*BadgerStorage)(nil)
	_ caddy.Destructor      = sharedStore{}
)
