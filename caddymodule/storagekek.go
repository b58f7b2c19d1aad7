package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portcullis/portcullis/storage/keyring"
)

// The key encryption key (KEK) seals the keys the gateway generates (SAML
// SP key, assertion signing key, sign-in flow key) in the store, so that
// whoever can read the database (a backup, a dump, a read replica) cannot
// sign as the gateway. It is set on the storage block:
//
//	storage postgres {env.PORTCULLIS_DATABASE_URL} {
//		key_encryption_key {env.PORTCULLIS_KEY}
//	}
//
// Required with PostgreSQL (a shared database is read by more people and
// machines than one gateway's data directory), optional with Badger.

// keySealing is a storage module that may carry a KEK.
type keySealing interface {
	keyEncryptionKey() []byte
}

// storageKEK is the KEK of the storage module, or nil.
func storageKEK(mod any) []byte {
	if ks, ok := mod.(keySealing); ok {
		return ks.keyEncryptionKey()
	}
	return nil
}

// provisionKEK replaces placeholders in the configured KEK and parses it.
// An empty setting gives nil, an error when required.
func provisionKEK(configured, backend string, required bool) ([]byte, error) {
	if configured == "" {
		if required {
			return nil, fmt.Errorf("storage %s: key_encryption_key is required: with a shared database the generated keys are sealed at rest; "+
				"set it to 32 random bytes from the environment, e.g. key_encryption_key {env.PORTCULLIS_KEY} with PORTCULLIS_KEY=$(openssl rand -base64 32)", backend)
		}
		return nil, nil
	}
	v := caddy.NewReplacer().ReplaceKnown(configured, "")
	kek, err := keyring.ParseKEK(v)
	if err != nil {
		return nil, fmt.Errorf("storage %s: key_encryption_key: %v", backend, err)
	}
	return kek, nil
}

// unmarshalKEK reads the argument of a key_encryption_key line.
func unmarshalKEK(d *caddyfile.Dispenser, into *string) error {
	if *into != "" {
		return d.Err("key_encryption_key is set twice")
	}
	if !d.NextArg() {
		return d.Err("key_encryption_key needs a value, e.g. {env.PORTCULLIS_KEY}")
	}
	*into = d.Val()
	if *into == "" {
		return d.Err("key_encryption_key is empty")
	}
	return nil
}
