// Package operator owns what an operator does to a tenant at runtime, as
// plain Go over the store: list users with their effective role and why,
// create and change manual users, list groups with their level, change the
// stored group mappings, list and end sessions, read the SCIM token's
// health, and disconnect the IdP. Every write is audited in the same
// transaction, with the actor the caller names ("admin" for the admin API,
// the signed-in user's userName for the console).
//
// The admin API and the CLI (caddymodule) and the web console (console)
// are thin layers over a Service: whatever one of them can do, the others
// do through the same method.
//
// # The model
//
//   - A user's Source says who manages it: storage.SourceSCIM, SourceGoogle,
//     SourceJIT (the IdP at sign-in) or SourceManual (an operator). An
//     IdP-managed user is locked: UpdateUser and DeleteUser refuse with a
//     *ManagedError (the admin API answers 409 with its message). A manual
//     user's role is set by hand (storage.User.Role) and does not follow
//     groups; it signs in through the tenant's IdP like everyone else and is
//     matched to its record by userName or verified email.
//   - Mappings come from the config (map_group, pinned: ConfigMappings) and
//     from the store (SetMapping / DeleteMapping, audited as
//     mapping.changed with before and after). Where both name the same
//     group, the config wins: SetMapping and DeleteMapping refuse such a
//     group with ErrPinnedByConfig. A stored mapping takes effect on the
//     next request of every affected user (mapping writes move the store's
//     Generation).
//   - Disconnect removes the SCIM token (pushes get 401), stops any
//     directory pull, and converts every IdP-managed user to manual with the
//     role they have at that moment pinned; nobody is signed out. One
//     idp.disconnected event plus one user.converted event per user.
//     Reconnecting (a new token) and pushing a user that exists as manual
//     adopts the manual record (same id; see the README for the rule):
//     never a duplicate, never an unaudited role change.
package operator
