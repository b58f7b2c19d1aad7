// Package authz owns what the gateway decides on every proxied request:
// who the caller is (session, user, groups), which role their groups give
// them in the tenant, whether the route's policy lets them in, and the
// identity headers and signed assertion the upstream receives. It is plain
// net/http: the Caddy handler in caddymodule is a thin wrapper around Gate.
//
// # Pieces
//
//   - Roles: one tenant's ordered levels, group mappings and default role.
//   - Identities: one per tenant, shared by all its routes. It resolves a
//     request to an Identity through a SessionResolver (package sso) and a
//     cache keyed by the session id's hash. An entry remembers the store
//     generation it was read at; every write that can change access
//     (users, groups, memberships, tokens, ended sessions: the store
//     decides, see storage.Store.Generation) moves the generation, so the
//     next request reloads and a SCIM change (user deactivated or deleted,
//     group membership changed, mapping target renamed) takes effect on
//     the very next request. Audit events, new sessions and sign-in
//     records do not move it.
//   - Live requests: a request that passed a gate is followed until its
//     handler returns (liverequests.go), and ended — its context
//     cancelled, an upgraded connection closed — when its session loses
//     access, within liveCheckInterval.
//   - Gate: one per route. Strips forged identity headers, applies the
//     Policy (public, require <role>, allow_groups), answers the refused,
//     and sets the identity headers.
//   - AssertionSigner: signs the X-Remote-Assertion JWT and serves the JWKS.
//
// # Roles
//
// A user's role is the highest level granted by a mapping whose group they
// are a direct member of. A mapping names its group by id, externalId or
// displayName (see GroupRef for the order), so a mapping by id or
// externalId survives a rename in the IdP. A user in no mapped group gets
// the default level (the lowest unless set), or, with RequireMappedGroup,
// is refused.
//
// # Losing access
//
// A deactivated user (active false), and with RequireMappedGroup a user in
// no mapped group, is refused on their next request: the gate ends all
// their sessions (storage.Tx.DeleteSessionsOf) and records an
// access.denied audit event (actor "system", once: only the transaction
// that ended sessions writes it), then answers 403 (JSON for non-browsers).
// The gate does not set such a user's Active flag: the IdP owns it, and an
// unmapped user added back to a mapped group must get in again without the
// IdP having to reactivate someone it never deactivated. Their next
// request has no session and goes to sign-in, where the IdP (or the 403
// after it) decides. A deleted user's sessions are gone with them, so their
// next request is unauthenticated.
//
// # Headers
//
// On every request, public routes included, every header the client sent
// whose name starts with the prefix (default X-Remote-), or equals a
// configured identity header name, is removed: the name is compared
// ignoring case, with '_' equal to '-' (CGI and PHP read X_Remote_User and
// X-Remote-User as the same variable), under every key the header map
// holds it at. Trailers are cleaned the same way. Then, for an identified
// caller, the gate sets (names configurable, see HeaderNames):
//
//	X-Remote-User       userName
//	X-Remote-Email      primary email (omitted when none)
//	X-Remote-Name       display name (omitted when none)
//	X-Remote-Groups     display names of the user's direct groups (omitted when none)
//	X-Remote-Role       the role (omitted when the tenant has no roles)
//	X-Remote-Assertion  signed JWT, on routes configured with an audience
//
// Control characters in user names are replaced with U+FFFD, since HTTP
// cannot carry them.
//
// # The groups header
//
// X-Remote-Groups is the group display names, sorted, separated by ", ".
// A name is written as is, unless it is empty, starts or ends with a space
// or tab, or contains a comma, a double quote, a backslash or a control
// character: then it is written as a JSON string (RFC 8259), quotes
// included. For example the groups `admins`, `R&D, Europe` and `say "hi"`
// travel as
//
//	"R&D, Europe", admins, "say \"hi\""
//
// So an app that splits on commas and trims spaces reads ordinary names
// right, and a strict reader decodes every name exactly: split on commas
// outside quotes, trim spaces and tabs, JSON-decode an item that starts
// with '"', take any other item as is. For printable ASCII, the quoted form
// is the same as an RFC 8941 sf-string. Non-ASCII names are UTF-8, raw in
// either form. DecodeGroups is the reference reader; EncodeGroups the
// writer.
//
// # Signed assertion
//
// For backends that verify rather than trust the network, a route with an
// assertion audience also gets X-Remote-Assertion: a JWT signed with ES256
// (header kid = the RFC 7638 thumbprint), claims iss (the configured
// issuer), sub (user id), aud (the route's audience), iat, nbf, exp
// (default 60 s later), preferred_username, email, name, groups, role and
// tenant. The key is generated once per tenant and kept in the store
// (record kind "assertion-key"), so restarts keep it; JWKSHandler serves
// the public key. A backend verifies with any JOSE library against the
// JWKS URL, checking iss, aud and exp. An assertion is reused for the same
// session and audience until half its lifetime has passed, and never
// across a store write, so it always carries the current role.
//
// # Speed
//
// A request with a cached, current session costs one map lookup under a
// read lock, the generation and expiry checks, the policy check and the
// header writes: the groups header, placeholders and assertion are computed
// when the entry is loaded, not per request. The cache is bounded
// (random eviction when full). BenchmarkGate measures it.
package authz
