package operator

import (
	"errors"
	"time"
)

// This file is the contract the admin API, the CLI and the console are
// written against. The implementation lives in the other files.

// Actors of audit events written through the operator.
const (
	// ActorAdmin is the actor of the admin API and the CLI.
	ActorAdmin = "admin"
)

// Errors callers map to answers.
var (
	// ErrNotFound: no such user, group, mapping or session (404).
	ErrNotFound = errors.New("operator: not found")
	// ErrPinnedByConfig: the group's mapping comes from the config
	// (map_group) and cannot be changed at runtime (409).
	ErrPinnedByConfig = errors.New("operator: the group is mapped in the config (map_group), which wins; change it there")
	// ErrInvalid wraps a bad argument: unknown role, empty userName, ... (400).
	ErrInvalid = errors.New("operator: invalid request")
	// ErrConflict: a userName taken by another user, a duplicate group (409).
	ErrConflict = errors.New("operator: conflict")
	// ErrNoToken: the tenant has never had a SCIM token (404 on the token
	// status).
	ErrNoToken = errors.New("operator: no SCIM token was ever made for this tenant")
)

// ManagedError refuses a manual change to a user the IdP manages (409).
type ManagedError struct {
	UserID string
	Source string // scim, google, jit
	// Message names the IdP and what to do instead, e.g. "alice is
	// managed by your IdP over SCIM: change her in the IdP, or disconnect
	// the IdP to manage users here".
	Message string
}

func (e *ManagedError) Error() string { return e.Message }

// UserQuery selects a page of users.
type UserQuery struct {
	// Filter matches userName, displayName or email (case-insensitive
	// substring on userName and displayName, prefix on email); "" all.
	Filter string
	// Source keeps users of this source only ("" every source).
	Source string
	// Cursor continues a listing (the previous page's Next).
	Cursor string
	// Limit is the page size (default 50, at most 500).
	Limit int
}

// GroupBrief names a group.
type GroupBrief struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// User is one user as the operator sees it.
type User struct {
	ID          string       `json:"id"`
	UserName    string       `json:"userName"`
	DisplayName string       `json:"displayName,omitempty"`
	Emails      []string     `json:"emails,omitempty"`
	Active      bool         `json:"active"`
	Source      string       `json:"source"`
	Role        string       `json:"role,omitempty"` // effective role
	Groups      []GroupBrief `json:"groups"`
	LastSignIn  *time.Time   `json:"lastSignIn,omitempty"`
	Sessions    int          `json:"sessions"` // live sessions
}

// RoleReason says why a user has their role.
type RoleReason struct {
	Role string `json:"role,omitempty"`
	// From is "group" (a mapped group granted it), "default" (in no
	// mapped group), "manual" (set by hand on a manual user) or "none"
	// (require_mapped_group and no mapped group: refused).
	From string `json:"from"`
	// Group is the mapped group that granted the role (From "group"), and
	// MappingFrom whether that mapping is "config" or "stored".
	Group       *GroupBrief `json:"group,omitempty"`
	MappingFrom string      `json:"mappingFrom,omitempty"`
	// Text says it in a sentence, for the console and the CLI.
	Text string `json:"text"`
	// Routes are the tenant's identity routes and whether the user gets
	// through each (only when the service knows the routes: Config.Routes).
	Routes []RouteAccess `json:"routes,omitempty"`
}

// UserDetail is one user with the reason for their role.
type UserDetail struct {
	User
	RoleReason RoleReason `json:"roleReason"`
}

// NewUser is a manual user to create.
type NewUser struct {
	UserName    string `json:"userName"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
	Role        string `json:"role"` // one of the tenant's roles ("" when the tenant has none)
}

// UserChange is a change to a manual user; nil fields stay as they are.
type UserChange struct {
	Role   *string `json:"role,omitempty"`
	Active *bool   `json:"active,omitempty"`
}

// Group is one group the tenant knows.
type Group struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	// Source: scim, google, jit (from a claim at sign-in) or manual
	// (declared by an operator ahead of its first sign-in).
	Source  string `json:"source"`
	Members int    `json:"members"`
	// Level is the role the group grants, and LevelFrom where that comes
	// from: "config" (map_group), "stored" (a runtime mapping) or
	// "default" (unmapped: the default level).
	Level     string `json:"level,omitempty"`
	LevelFrom string `json:"levelFrom"`
}

// Mapping is one group → role mapping.
type Mapping struct {
	Group string `json:"group"` // id, externalId or displayName, as in map_group
	Role  string `json:"role"`
}

// Mappings is the tenant's role model as the operator sees it.
type Mappings struct {
	Roles   []string  `json:"roles"`
	Default string    `json:"default"`
	Config  []Mapping `json:"config"`
	Stored  []Mapping `json:"stored"`
}

// Session is one live session of a user. ID is a handle for ending it (not
// the session id, and not its at-rest hash).
type Session struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"lastSeen"`
	Expires    time.Time `json:"expires"`
	Protocol   string    `json:"protocol"`
	ClientAddr string    `json:"clientAddress,omitempty"` // at sign-in
	UserAgent  string    `json:"userAgent,omitempty"`     // at sign-in
}

// TokenStatus is the SCIM token's health; never the token.
type TokenStatus struct {
	// Status: "active", "disabled" (SCIM disabled or disconnected).
	Status  string     `json:"status"`
	Created time.Time  `json:"created"`
	Rotated *time.Time `json:"rotated,omitempty"`
	// Disabled is when the token was disabled (Status "disabled").
	Disabled *time.Time `json:"disabled,omitempty"`
	LastUsed *Use       `json:"lastUsed,omitempty"`
	// Requests and failures (refused tokens) in the last 24 hours.
	Requests24h int `json:"requests24h"`
	Failures24h int `json:"failures24h"`
}

// Use is one use of the token.
type Use struct {
	Time       time.Time `json:"time"`
	ClientAddr string    `json:"clientAddress"`
	UserAgent  string    `json:"userAgent"`
	// Client names a recognisable IdP from the User-Agent ("Microsoft
	// Entra ID", "Okta", ...), "" when unknown.
	Client string `json:"client,omitempty"`
}

// Overview is a tenant at a glance, for the console's first page.
type Overview struct {
	Tenant    string       `json:"tenant"`
	Connected bool         `json:"connected"` // an IdP pushes (token) or is pulled
	Token     *TokenStatus `json:"token,omitempty"`
	Users     int          `json:"users"`
	Groups    int          `json:"groups"`
}

// The Service methods (implemented in the other files of the package):
//
//	New(Config) (*Service, error)
//	(*Service) Overview(ctx) (*Overview, error)
//	(*Service) ListUsers(ctx, UserQuery) (users []User, next string, err error)
//	(*Service) User(ctx, id) (*UserDetail, error)
//	(*Service) CreateManualUser(ctx, actor, NewUser) (*UserDetail, error)
//	(*Service) UpdateUser(ctx, actor, id, UserChange) (*UserDetail, error)   // *ManagedError for IdP-managed users
//	(*Service) DeleteUser(ctx, actor, id) error                               // *ManagedError for IdP-managed users
//	(*Service) ListGroups(ctx) ([]Group, error)
//	(*Service) DeclareGroup(ctx, actor, claimValue string) (*Group, error)   // a claim-sourced group mapped before anyone arrives
//	(*Service) Mappings(ctx) (*Mappings, error)
//	(*Service) SetMapping(ctx, actor, group, role string) error              // ErrPinnedByConfig, ErrInvalid
//	(*Service) DeleteMapping(ctx, actor, group string) error                 // ErrPinnedByConfig, ErrNotFound
//	(*Service) Sessions(ctx, userID) ([]Session, error)
//	(*Service) EndSession(ctx, actor, userID, sessionID string) error
//	(*Service) EndUserSessions(ctx, actor, userID) (int, error)
//	(*Service) EndTenantSessions(ctx, actor) (int, error)
//	(*Service) TokenStatus(ctx) (*TokenStatus, error)                        // ErrNoToken
//	(*Service) Disconnect(ctx, actor) (converted int, err error)

// Token statuses (TokenStatus.Status).
const (
	TokenActive   = "active"
	TokenDisabled = "disabled"
)
