package operator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// Config configures one tenant's Service.
type Config struct {
	Tenant string
	Store  storage.Store
	// Roles is the tenant's role model as configured: levels, default,
	// require_mapped_group and the map_group lines (pinned: ConfigMappings).
	Roles authz.Roles
	// Usage is the SCIM endpoint's in-memory usage counts (the tenant's
	// scimhandler.Config.Usage, or Handler.Usage()); nil: requests and
	// failures read as 0 and the last use comes from the store only.
	Usage *scimhandler.UsageTracker
	// StopPull, when set, stops the tenant's directory pull (Google); the
	// disconnect calls it before converting users. Nil: nothing is pulled.
	StopPull func(ctx context.Context) error
	// IdleTimeout is the sessions' idle limit (sso's); sessions idle for
	// longer are not listed. 0: none.
	IdleTimeout time.Duration
	// Routes, when set, lists the routes the tenant's identity handlers
	// guard, read at each user detail (the config may reload); a user's
	// role reason then says which of them the user gets through. Nil: no
	// routes are reported.
	Routes func() []RoutePolicy
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is the operator's side of one tenant. Safe for concurrent use.
type Service struct {
	tenant   string
	store    storage.Store
	roles    authz.Roles
	usage    *scimhandler.UsageTracker
	stopPull func(ctx context.Context) error
	idle     time.Duration
	routes   func() []RoutePolicy
	logger   *zap.Logger
	now      func() time.Time

	// table caches the role table of one store generation.
	table atomic.Pointer[generationTable]
	// search is the in-memory index of filtered listings (userindex.go).
	search userSearch
}

type generationTable struct {
	gen   uint64
	table *authz.RoleTable
}

// New checks cfg and returns the tenant's Service.
func New(cfg Config) (*Service, error) {
	if cfg.Tenant == "" || cfg.Store == nil {
		return nil, errors.New("operator: Config.Tenant and Config.Store are required")
	}
	if err := cfg.Roles.Validate(); err != nil {
		return nil, fmt.Errorf("operator: tenant %q roles: %w", cfg.Tenant, err)
	}
	s := &Service{
		tenant:   cfg.Tenant,
		store:    cfg.Store,
		roles:    cfg.Roles,
		usage:    cfg.Usage,
		stopPull: cfg.StopPull,
		idle:     cfg.IdleTimeout,
		routes:   cfg.Routes,
		logger:   cfg.Logger,
		now:      cfg.Now,
	}
	s.roles.Levels = append([]string(nil), cfg.Roles.Levels...)
	s.roles.Mappings = append([]authz.GroupMapping(nil), cfg.Roles.Mappings...)
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Tenant is the tenant the service acts on.
func (s *Service) Tenant() string { return s.tenant }

// view runs fn in a snapshot with the role table of its generation.
func (s *Service) view(ctx context.Context, fn func(tx storage.ReadTx, t *authz.RoleTable) error) error {
	gen := s.store.Generation(s.tenant)
	return s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		t, err := s.roleTable(tx, gen)
		if err != nil {
			return err
		}
		return fn(tx, t)
	})
}

// roleTable returns the table of gen, built in tx (opened after gen was
// read, so never older) when the cached one is of another generation.
func (s *Service) roleTable(tx storage.ReadTx, gen uint64) (*authz.RoleTable, error) {
	if c := s.table.Load(); c != nil && c.gen == gen {
		return c.table, nil
	}
	t, err := authz.BuildRoleTable(tx, s.roles)
	if err != nil {
		return nil, err
	}
	s.table.Store(&generationTable{gen: gen, table: t})
	return t, nil
}

// Overview is the tenant at a glance.
func (s *Service) Overview(ctx context.Context) (*Overview, error) {
	o := &Overview{Tenant: s.tenant}
	err := s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		var err error
		if o.Users, err = tx.CountUsers(); err != nil {
			return err
		}
		o.Groups, err = tx.CountGroups()
		return err
	})
	if err != nil {
		return nil, err
	}
	tok, err := s.TokenStatus(ctx)
	switch {
	case errors.Is(err, ErrNoToken):
	case err != nil:
		return nil, err
	default:
		o.Token = tok
		o.Connected = tok.Status == TokenActive
	}
	if s.stopPull != nil {
		o.Connected = true
	}
	return o, nil
}
