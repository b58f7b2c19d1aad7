-- Stored group mappings (an operator's runtime mappings; config mappings
-- are not stored). Few per tenant, read whole; keyed by the raw group
-- reference as the operator gave it (id, externalId or displayName).
CREATE TABLE mappings (
	tenant    text COLLATE "C" NOT NULL,
	group_ref text COLLATE "C" NOT NULL,
	doc       json NOT NULL,
	PRIMARY KEY (tenant, group_ref)
);
