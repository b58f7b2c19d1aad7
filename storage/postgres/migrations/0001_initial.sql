-- 0001: the initial schema.
--
-- Every table is keyed by tenant first, so tenants never see each other's
-- rows. Ids and other keys are text in the "C" collation: byte order, the
-- order Go compares strings in, which is what scans and cursors promise.
-- Values that are looked up but may be long (userName, email, externalId,
-- displayName, record keys) are indexed by their SHA-256 (the *_key bytea
-- columns, computed by the store from the case-folded value where the
-- lookup is case-insensitive): a btree entry is limited to ~2.7 KB, and a
-- 32-byte key keeps the indexes small. Readers re-check the real value in
-- the record, so a hash collision can never return a wrong match.
-- Records are kept whole as JSON in doc (json, not jsonb: it keeps the
-- bytes the store wrote, which SCIM attributes round-trip through).

-- The change version of each tenant: bumped in the same transaction as
-- every write a cache relies on (see changefeed.go).
CREATE TABLE tenant_versions (
	tenant  text COLLATE "C" PRIMARY KEY,
	version bigint NOT NULL
);

CREATE TABLE users (
	tenant          text COLLATE "C" NOT NULL,
	id              text COLLATE "C" NOT NULL,
	user_name_key   bytea NOT NULL,
	external_id_key bytea,
	doc             json NOT NULL,
	PRIMARY KEY (tenant, id)
);
-- userName is unique per tenant, case-insensitively.
CREATE UNIQUE INDEX users_user_name ON users (tenant, user_name_key);
CREATE INDEX users_external_id ON users (tenant, external_id_key, id) WHERE external_id_key IS NOT NULL;

CREATE TABLE user_emails (
	tenant    text COLLATE "C" NOT NULL,
	email_key bytea NOT NULL,
	user_id   text COLLATE "C" NOT NULL,
	PRIMARY KEY (tenant, email_key, user_id),
	FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, id) ON DELETE CASCADE
);
CREATE INDEX user_emails_user ON user_emails (tenant, user_id);

CREATE TABLE groups (
	tenant           text COLLATE "C" NOT NULL,
	id               text COLLATE "C" NOT NULL,
	display_name_key bytea NOT NULL,
	external_id_key  bytea,
	doc              json NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX groups_display_name ON groups (tenant, display_name_key, id);
CREATE INDEX groups_external_id ON groups (tenant, external_id_key, id) WHERE external_id_key IS NOT NULL;

-- Memberships, read both ways: members of a group (primary key) and groups
-- of a member (memberships_member). A member need not exist (the IdP may
-- send a group before its users); the group must, and deleting it removes
-- its memberships in the same statement (ON DELETE CASCADE).
CREATE TABLE memberships (
	tenant      text COLLATE "C" NOT NULL,
	group_id    text COLLATE "C" NOT NULL,
	member_id   text COLLATE "C" NOT NULL,
	member_type text NOT NULL CHECK (member_type IN ('User', 'Group')),
	PRIMARY KEY (tenant, group_id, member_id),
	FOREIGN KEY (tenant, group_id) REFERENCES groups (tenant, id) ON DELETE CASCADE
);
CREATE INDEX memberships_member ON memberships (tenant, member_id, group_id);

CREATE TABLE scim_tokens (
	tenant text COLLATE "C" PRIMARY KEY,
	doc    json NOT NULL
);

-- Sessions by the SHA-256 of their id (the cookie holds the id itself).
CREATE TABLE sessions (
	tenant     text COLLATE "C" NOT NULL,
	id_hash    bytea NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	expires_at timestamptz,
	doc        json NOT NULL,
	PRIMARY KEY (tenant, id_hash)
);
CREATE INDEX sessions_user ON sessions (tenant, user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;

-- Short-lived keyed records; key_hash is the SHA-256 of kind, NUL, key.
CREATE TABLE records (
	tenant     text COLLATE "C" NOT NULL,
	key_hash   bytea NOT NULL,
	kind       text NOT NULL,
	key        text NOT NULL,
	value      bytea NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (tenant, key_hash)
);
CREATE INDEX records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;

-- Audit events; ids sort by time (16 hex digits of Unix nanoseconds, then
-- 16 random ones), so the primary key serves newest-first pages, cursors
-- and time windows.
CREATE TABLE events (
	tenant text COLLATE "C" NOT NULL,
	id     text COLLATE "C" NOT NULL,
	type   text NOT NULL,
	doc    json NOT NULL,
	PRIMARY KEY (tenant, id)
);

-- The number of each tenant's events, in shards so that concurrent
-- appenders rarely update the same row (see retention.go).
CREATE TABLE event_counts (
	tenant text COLLATE "C" NOT NULL,
	shard  integer NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, shard)
);
