package caddymodule

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/postgres"
)

func init() {
	caddy.RegisterModule(PostgresStorage{})
}

// PostgresStorage is the shared backend: several gateways on one
// PostgreSQL database (see storage/postgres).
type PostgresStorage struct {
	// URL is the database's postgres:// URL or libpq connection string.
	// Placeholders such as {env.PORTCULLIS_DATABASE_URL} are replaced at
	// provisioning, so the password need not be in the config.
	URL string `json:"url,omitempty"`
	// PoolSize bounds the connections of the pool (0: max(4, CPUs)).
	PoolSize int `json:"pool_size,omitempty"`
	// StatementTimeout makes the server cancel a statement running longer
	// (0: the server's setting).
	StatementTimeout caddy.Duration `json:"statement_timeout,omitempty"`
	// PollInterval is how often a replica whose change notifications are
	// cut reads the change versions instead (0: 2s), which bounds how late
	// it honours another replica's revocation meanwhile.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`
	// StaleIfError is how long identities cached before the database
	// became unreachable keep being served (0: DefaultStaleIfError);
	// after it, their requests are refused until the database is back.
	StaleIfError caddy.Duration `json:"stale_if_error,omitempty"`
	// KeyEncryptionKey seals the generated keys at rest (storagekek.go):
	// 32 bytes in hex or base64, typically {env.PORTCULLIS_KEY}. Required.
	KeyEncryptionKey string `json:"key_encryption_key,omitempty"`

	url string // URL with placeholders replaced
	key string
	kek []byte
}

// openTimeout bounds connecting and migrating at provisioning: a config
// load must fail, not hang, when the database is unreachable.
const openTimeout = 30 * time.Second

// CaddyModule returns the Caddy module information.
func (PostgresStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portcullis.storage.postgres",
		New: func() caddy.Module { return new(PostgresStorage) },
	}
}

// Provision replaces placeholders in the URL and checks it parses.
func (p *PostgresStorage) Provision(caddy.Context) error {
	p.url = caddy.NewReplacer().ReplaceKnown(p.URL, "")
	if p.url == "" {
		return errors.New("storage postgres: no database URL (did its {env.*} placeholder name an unset variable?)")
	}
	if p.PoolSize < 0 {
		return errors.New("storage postgres: pool_size must not be negative")
	}
	cfg, err := pgx.ParseConfig(p.url)
	if err != nil {
		// Not err itself: its message may quote the URL, password included.
		return errors.New("storage postgres: the database URL does not parse")
	}
	// The key names the database without its password (it is logged);
	// the hash tells apart configs that differ in anything else.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", p.url, p.PoolSize, p.StatementTimeout, p.PollInterval))
	p.key = fmt.Sprintf("postgres:%s@%s:%d/%s#%x", cfg.User, cfg.Host, cfg.Port, cfg.Database, sum[:6])
	p.kek, err = provisionKEK(p.KeyEncryptionKey, "postgres", true)
	return err
}

func (p *PostgresStorage) keyEncryptionKey() []byte { return p.kek }

// StoreKey implements StoreOpener.
func (p *PostgresStorage) StoreKey() string { return p.key }

// OpenStore implements StoreOpener.
func (p *PostgresStorage) OpenStore(logger *zap.Logger) (storage.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	return postgres.Open(ctx, postgres.Options{
		URL:              p.url,
		PoolSize:         p.PoolSize,
		StatementTimeout: time.Duration(p.StatementTimeout),
		PollInterval:     time.Duration(p.PollInterval),
		Logger:           logger,
	})
}

// UnmarshalCaddyfile sets up the backend from Caddyfile tokens. Syntax:
//
//	storage postgres <url> {
//		pool_size <n>
//		statement_timeout <duration>
//		poll_interval <duration>
//		stale_if_error <duration>
//		key_encryption_key <key>
//	}
func (p *PostgresStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // backend name
	if !d.NextArg() {
		return d.Err("storage postgres needs the database URL, e.g. {env.PORTCULLIS_DATABASE_URL}")
	}
	p.URL = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "pool_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return d.Errf("pool_size must be a positive number, found %q", d.Val())
			}
			p.PoolSize = n
		case "statement_timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("statement_timeout must be a positive duration, found %q", d.Val())
			}
			p.StatementTimeout = caddy.Duration(dur)
		case "poll_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("poll_interval must be a positive duration, found %q", d.Val())
			}
			p.PollInterval = caddy.Duration(dur)
		case "stale_if_error":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur < 0 {
				return d.Errf("stale_if_error must be a duration (0 or more), found %q", d.Val())
			}
			// 0 written out means "never serve stale": keep it apart
			// from the unset default.
			p.StaleIfError = caddy.Duration(max(dur, 1))
		case "key_encryption_key":
			if err := unmarshalKEK(d, &p.KeyEncryptionKey); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized storage postgres option %q (expected pool_size, statement_timeout, poll_interval, stale_if_error or key_encryption_key)", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// DefaultStaleIfError is how long cached identities outlive a database
// outage unless stale_if_error says otherwise: long enough to ride out a
// failover or a restart of the database, short enough that a deactivation
// the gateway could not learn of is honoured soon after.
const DefaultStaleIfError = 30 * time.Second

// staleIfError implements staleWindow.
func (p *PostgresStorage) staleIfError() time.Duration {
	if p.StaleIfError == 0 {
		return DefaultStaleIfError
	}
	return time.Duration(p.StaleIfError)
}

// Interface guards
var (
	_ staleWindow           = (*PostgresStorage)(nil)
	_ caddy.Provisioner     = (*PostgresStorage)(nil)
	_ StoreOpener           = (*PostgresStorage)(nil)
	_ caddyfile.Unmarshaler = (*PostgresStorage)(nil)
)
