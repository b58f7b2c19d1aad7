package badgerstore

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// SchemaVersion is the layout of the keys and values this code writes. A
// store records the version it was last opened with under schemaKey; Open
// migrates an older store forward, one version at a time, and refuses a
// newer one (written by a later release) rather than misread it.
//
//	1  the layout of keys.go as first released (no schema key: a store
//	   with data and no schemaKey is version 1)
//	2  records its version under schemaKey; data as in 1
//	3  counts each group's membership keys in kindMemberCount shards
//	4  counts users and groups per id bucket (kindIDCount), not in fnv
//	   shards (kindCount), so a position is found from the counters
const SchemaVersion = 4

// currentSchemaVersion names the version the release fixture is written at.
const currentSchemaVersion = SchemaVersion

// nsMeta holds the store's own keys, outside every tenant's namespace.
const nsMeta = 'M'

// schemaKey holds the schema version as a decimal string.
var schemaKey = []byte{nsMeta, 's', 'c', 'h', 'e', 'm', 'a'}

// ErrNewerSchema is returned by Open and Restore for a store written by a
// newer release than this one.
var ErrNewerSchema = errors.New("badgerstore: the store was written by a newer Portcullis")

// A migration turns a store of version from into version from+1. It may
// run in as many transactions as it needs, but must be idempotent: if the
// process dies before the new version is recorded, it runs again.
type migration struct {
	from int
	what string // logged when it runs
	run  func(db *badger.DB) error
}

// migrations, in order; migrations[i].from is i+1.
var migrations = []migration{
	{from: 1, what: "record the schema version", run: func(*badger.DB) error { return nil }},
	{from: 2, what: "count the members of every group", run: countAllMembers},
	{from: 3, what: "count users and groups by id bucket", run: countByIDBucket},
}

// releaseFixtureName is the file under testdata/ of a store written by the
// release whose schema is version.
func releaseFixtureName(version int) string { return fmt.Sprintf("store-v%d.backup", version) }

// readSchemaVersion returns the recorded version, or 1 for a store with
// data and no version (the first release), or 0 for an empty store.
func readSchemaVersion(db *badger.DB) (int, error) {
	version := 0
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(schemaKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			empty, err := isEmpty(txn)
			if err == nil && !empty {
				version = 1
			}
			return err
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				return fmt.Errorf("badgerstore: schema version %q is not a positive number", v)
			}
			version = n
			return nil
		})
	})
	return version, err
}

// isEmpty says whether the database holds no key but the store's own.
func isEmpty(txn *badger.Txn) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if it.Item().Key()[0] != nsMeta {
			return false, nil
		}
	}
	return true, nil
}

func writeSchemaVersion(db *badger.DB, version int) error {
	return db.Update(func(txn *badger.Txn) error {
		return txn.Set(schemaKey, []byte(strconv.Itoa(version)))
	})
}

// newerSchemaError explains a store this binary must not open.
func newerSchemaError(dir string, version int) error {
	return fmt.Errorf("%w: %s has schema version %d and this binary knows versions up to %d; "+
		"run the release that wrote it (or a newer one), or restore a backup taken before the upgrade into a new directory",
		ErrNewerSchema, dir, version, SchemaVersion)
}

// upgradeSchema brings the store in db to SchemaVersion: an empty store is
// stamped, an older one migrated step by step (each step recorded, so a
// crash resumes where it stopped), a newer one refused.
func upgradeSchema(db *badger.DB, dir string, logger *zap.Logger) error {
	version, err := readSchemaVersion(db)
	if err != nil {
		return fmt.Errorf("badgerstore: reading the schema version of %s: %w", dir, err)
	}
	switch {
	case version == 0:
		return writeSchemaVersion(db, SchemaVersion)
	case version > SchemaVersion:
		return newerSchemaError(dir, version)
	}
	for ; version < SchemaVersion; version++ {
		m := migrations[version-1]
		logger.Info("migrating the store", zap.String("dir", dir),
			zap.Int("from", version), zap.Int("to", version+1), zap.String("change", m.what))
		if err := m.run(db); err != nil {
			return fmt.Errorf("badgerstore: migrating %s from schema version %d to %d: %w", dir, version, version+1, err)
		}
		if err := writeSchemaVersion(db, version+1); err != nil {
			return fmt.Errorf("badgerstore: recording schema version %d in %s: %w", version+1, dir, err)
		}
	}
	return nil
}
