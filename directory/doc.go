// Package directory pulls a tenant's users and groups from Google
// Workspace's Admin SDK Directory API into the store, through the same
// storage operations and audit events as SCIM (actor and source "google"),
// and deprovisions between full syncs from the Reports API's admin
// activities. It is plain Go: the Caddy wiring builds a Config per tenant,
// calls New, Start and Stop, and serves Sync/Trigger/Status on the admin
// API.
//
// A full sync (at Start, every Interval, on Sync or Trigger; one at a
// time per tenant, later callers join it):
//
//  1. groups.list (200 a page): every group (users all) or the mapped ones
//     (users mapped_groups), created or renamed as each page arrives;
//  2. mapped_groups only: members.list of each mapped group, the union of
//     which is the set of users to import;
//  3. users.list (500 a page): each page's creates and updates in one
//     transaction. Suspended or archived → active false, which ends the
//     user's sessions in the same transaction as SCIM deactivation does;
//  4. members.list (200 a page) with includeDerivedMembership=true for
//     each imported group: Google flattens nested groups, and the store
//     keeps each group's members as the users in it directly or through
//     nesting (authz reads a user's direct groups). Nested groups, CUSTOMER
//     members and external addresses (no user of the domain) are not
//     stored as members;
//  5. only when every listing above completed: Google users of the store
//     not imported are deactivated (record kept, audited), Google groups
//     not imported are deleted. A failed listing stops the sync first, so
//     a partial failure never deactivates or deletes.
//
// Every write is planned in a read-only snapshot and a write transaction is
// opened only for a non-empty plan: a sync that finds nothing changed
// writes nothing (no fsync, no Generation move). Memory holds a page of
// each listing plus one id per imported user and group.
//
// Google ids are the link: a stored user's externalId is Google's user id
// (userName the primary email, emails the primary then the aliases), a
// stored group's externalId is Google's group id (displayName its name).
// A user first created at sign-in (jit) under the same userName is taken
// over; one managed by another source is skipped and counted.
//
// Failures: 429, 403 rateLimitExceeded/userRateLimitExceeded/quotaExceeded
// and 5xx are retried with exponential backoff and full jitter, or after
// the Retry-After Google sends. A token failure (token endpoint, key, or
// delegation refused; an API 401) fails the sync at once; every failure is
// in Status and in a sync.failed audit event, and touches no user.
//
// Fast deprovisioning: PollActivity (every ActivityPoll) lists admin
// activities since the previous poll minus ActivityOverlap, and for
// SUSPEND_USER, ARCHIVE_USER, DELETE_USER, REMOVE_GROUP_MEMBER and
// DELETE_GROUP refetches the user (users.get) or checks membership
// (members.hasMember, which sees nesting) or the group (groups.get) and
// applies what the Directory says now. A user's access so ends at the next
// poll after Google reports the event; Google's own reporting lag (minutes,
// sometimes more) adds to that, which the overlap absorbs up to its length
// and the full sync backs up beyond it.
package directory
