// Package scimhandler owns Portcullis's SCIM 2.0 service provider (RFC 7643,
// RFC 7644) for one tenant over plain net/http: bearer-token checks (with
// failed attempts limited and audited per client address), the Users and
// Groups resources, discovery (ServiceProviderConfig, Schemas,
// ResourceTypes), filters, PATCH, projection, ETags, and the SCIM token's
// issue/rotate/disable operations. Every change it makes is one storage
// transaction that also holds its audit events.
//
// It accepts what real provisioning clients send (Microsoft Entra ID, Okta,
// JumpCloud, ...) even where that strays from the RFC, and answers every
// client mistake with an RFC 7644 §3.12 error body, never a 500.
package scimhandler
