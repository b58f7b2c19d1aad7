package directory

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Which users a sync imports.
const (
	// UsersMappedGroups imports only the members (direct or nested) of the
	// tenant's mapped groups, and only those groups; a user who leaves
	// every mapped group is deactivated at the next sync.
	UsersMappedGroups = "mapped_groups"
	// UsersAll imports every user and every group of the domain.
	UsersAll = "all"
)

// Defaults.
const (
	DefaultInterval     = time.Hour
	DefaultActivityPoll = time.Minute
	// DefaultActivityOverlap is how far back each activity poll re-reads
	// before its cursor, because the Reports API shows admin events some
	// time after they happened (they are applied idempotently, so reading
	// one twice costs an API call, not a write).
	DefaultActivityOverlap = 10 * time.Minute
	// DefaultLeaseRetry is how often a replica that does not run the
	// schedule tries to take the pull lease: when the holder dies, the
	// schedule moves within about this long (plus the time the database
	// takes to notice the dead connection).
	DefaultLeaseRetry = 5 * time.Second
)

// LeasePrefix starts the default lease name, followed by the tenant.
const LeasePrefix = "directory.pull."

// OAuth scopes the service account needs (domain-wide delegation).
const (
	ScopeUserReadonly   = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeGroupReadonly  = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeMemberReadonly = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"
	ScopeAuditReadonly  = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
)

// Config configures the sync of one tenant from one Google Workspace.
type Config struct {
	Tenant string
	Store  storage.Store
	Logger *zap.Logger // nil: no logging

	// Domain or Customer (e.g. "my_customer") selects the directory; one
	// of them is required.
	Domain   string
	Customer string
	// Credentials is the service account key file's content (JSON). Its
	// token_uri is the token endpoint used.
	Credentials []byte
	// AdminEmail is the Workspace user the service account acts as.
	AdminEmail string
	// APIEndpoint overrides https://admin.googleapis.com/ (both the
	// Directory and the Reports API live under it), for a local fake.
	APIEndpoint string

	// Users is UsersMappedGroups (default) or UsersAll.
	Users string
	// MappedGroups are the tenant's map_group references. A Google group is
	// mapped when a reference equals its id or, case-insensitively, its
	// name: the same rule authz.GroupRef resolves references by once the
	// group is stored (id → externalId, name → displayName).
	MappedGroups []string

	// Interval is the full-sync period (default DefaultInterval).
	Interval time.Duration
	// ActivityPoll is the Reports API poll period; < 0 turns fast
	// deprovisioning off (default DefaultActivityPoll).
	ActivityPoll time.Duration
	// ActivityOverlap: see DefaultActivityOverlap.
	ActivityOverlap time.Duration

	// Retry bounds the backoff on rate limits and server errors.
	Retry RetryPolicy

	// Observer is told about deprovisionings and finished syncs; nil: none.
	Observer Observer

	// LeaseName names the lease under which the schedule runs, so that of
	// several replicas sharing Store one pulls (default LeasePrefix +
	// Tenant). A store that is no storage.Leaser (or Badger, which one
	// process opens) always grants it.
	LeaseName string
	// LeaseRetry: see DefaultLeaseRetry.
	LeaseRetry time.Duration
}

// Observer lets the embedder count what the sync did (the Caddy wiring
// turns it into metrics). Calls are made after the fact and must not block.
type Observer interface {
	// UserDeprovisioned reports a committed deactivation that ended the
	// user's sessions.
	UserDeprovisioned(userID string, committed time.Time)
	// SyncFinished reports a finished full sync (ok or failed), before
	// Sync returns it to its caller.
	SyncFinished(st Status)
}

// RetryPolicy is the backoff on 429, 403 rate-limit reasons and 5xx.
type RetryPolicy struct {
	// Attempts is how many times one call is tried (default 6).
	Attempts int
	// Base is the first backoff (default 1s); it doubles each attempt,
	// with full jitter, up to Max (default 32s). A Retry-After answer is
	// waited for instead, up to MaxRetryAfter (default 2m).
	Base, Max, MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = time.Second
	}
	if p.Max <= 0 {
		p.Max = 32 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 2 * time.Minute
	}
	return p
}

// check validates the config and fills defaults.
func (c *Config) check() error {
	var errs []error
	if c.Tenant == "" {
		errs = append(errs, errors.New("directory: a tenant is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("directory: a store is required"))
	}
	if (c.Domain == "") == (c.Customer == "") {
		errs = append(errs, errors.New("directory: exactly one of domain and customer is required"))
	}
	if len(c.Credentials) == 0 {
		errs = append(errs, errors.New("directory: the service account credentials are required"))
	}
	if c.AdminEmail == "" {
		errs = append(errs, errors.New("directory: admin_email (the user the service account acts as) is required"))
	}
	if c.APIEndpoint != "" {
		if u, err := url.Parse(c.APIEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("directory: api_endpoint %q is not an http(s) URL", c.APIEndpoint))
		}
	}
	switch c.Users {
	case "":
		c.Users = UsersMappedGroups
	case UsersMappedGroups, UsersAll:
	default:
		errs = append(errs, fmt.Errorf("directory: users must be %s or %s, not %q", UsersMappedGroups, UsersAll, c.Users))
	}
	if c.Users == UsersMappedGroups && len(c.MappedGroups) == 0 {
		errs = append(errs, errors.New("directory: users mapped_groups needs map_group lines (or use users all)"))
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("directory: interval %s is shorter than a minute", c.Interval))
	}
	if c.ActivityPoll == 0 {
		c.ActivityPoll = DefaultActivityPoll
	}
	if c.ActivityOverlap <= 0 {
		c.ActivityOverlap = DefaultActivityOverlap
	}
	if c.LeaseName == "" {
		c.LeaseName = LeasePrefix + c.Tenant
	}
	if c.LeaseRetry <= 0 {
		c.LeaseRetry = DefaultLeaseRetry
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Retry = c.Retry.withDefaults()
	return errors.Join(errs...)
}

// scopes are the OAuth scopes asked for.
func (c *Config) scopes() []string {
	s := []string{ScopeUserReadonly, ScopeGroupReadonly, ScopeMemberReadonly}
	if c.ActivityPoll > 0 {
		s = append(s, ScopeAuditReadonly)
	}
	return s
}
