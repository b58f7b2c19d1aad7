-- 0003: users and groups counted per id bucket.
--
-- SCIM asks for the total on every page, and a page at startIndex 50,000
-- must not step over 50,000 index entries: count(*) and OFFSET over a
-- tenant of 100,000 users take ~20 ms each. So each tenant's users and
-- groups are counted per bucket, the first two characters of the id
-- (left(id, 2): a prefix, so buckets sort as their ids do). Generated ids
-- are random UUIDs: 256 buckets of even size. The total is the sum of a
-- few hundred small rows; a position is found from the running sum of the
-- buckets, then an OFFSET within one bucket (see positions.go).
--
-- Triggers keep the counts in the transaction that inserts or deletes the
-- record (the store's statements, cascades included), so no write path
-- has to remember them. Two concurrent creates in one bucket serialise on
-- its row (one retries, as the store retries any serialization failure);
-- across 256 buckets that is rare.
CREATE TABLE record_counts (
	tenant text COLLATE "C" NOT NULL,
	kind   "char" NOT NULL CHECK (kind IN ('u', 'g')),
	bucket text COLLATE "C" NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, kind, bucket)
);

CREATE FUNCTION count_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO record_counts (tenant, kind, bucket, n)
		VALUES (NEW.tenant, TG_ARGV[0]::"char", left(NEW.id, 2), 1)
		ON CONFLICT (tenant, kind, bucket) DO UPDATE SET n = record_counts.n + 1;
	ELSE
		UPDATE record_counts SET n = n - 1
		WHERE tenant = OLD.tenant AND kind = TG_ARGV[0]::"char" AND bucket = left(OLD.id, 2);
	END IF;
	RETURN NULL;
END
$$;

-- Writers of an older binary (another replica) wait while the existing
-- rows are counted and the triggers made, so none is missed or counted
-- twice.
LOCK TABLE users, groups IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO record_counts (tenant, kind, bucket, n)
SELECT tenant, 'u', left(id, 2), count(*) FROM users GROUP BY tenant, left(id, 2);
INSERT INTO record_counts (tenant, kind, bucket, n)
SELECT tenant, 'g', left(id, 2), count(*) FROM groups GROUP BY tenant, left(id, 2);

CREATE TRIGGER users_counted AFTER INSERT OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION count_record('u');
CREATE TRIGGER groups_counted AFTER INSERT OR DELETE ON groups
	FOR EACH ROW EXECUTE FUNCTION count_record('g');
