-- Traffic points in time-partitioned tables, and stored batches under a
-- unique key.
--
-- traffic_fine holds the 10 s points in daily partitions, traffic_coarse
-- the 1 min points in weekly ones (weeks counted from the Unix epoch);
-- each partition is named <table>_p<YYYYMMDD of its first second, UTC>.
-- The store creates partitions ahead (at ingest for the batch's time,
-- and for the next period in maintenance) and drops a partition whole
-- once it is entirely past retention. Points below a group's horizon
-- (fine_before, coarse_before) are past retention: queries leave them out
-- until their partition goes.
--
-- traffic_batches holds each stored batch of a node under (node, epoch,
-- seq): the insert of that row decides whether a batch is stored, so a
-- batch delivered twice at once, to two admin nodes, is stored once. A
-- node's epoch grows when its node manager joins again and numbers its
-- batches from 1.

ALTER TABLE traffic_nodes ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

CREATE TABLE traffic_batches (
	node     text COLLATE "C" NOT NULL REFERENCES traffic_nodes (node) ON DELETE CASCADE,
	epoch    bigint NOT NULL,
	seq      bigint NOT NULL,
	received bigint NOT NULL,
	PRIMARY KEY (node, epoch, seq)
);
CREATE INDEX traffic_batches_received ON traffic_batches (received);

ALTER TABLE traffic_groups
	ADD COLUMN fine_before bigint NOT NULL DEFAULT 0,
	ADD COLUMN coarse_before bigint NOT NULL DEFAULT 0;

CREATE TABLE traffic_fine (
	group_name text COLLATE "C" NOT NULL,
	at         bigint NOT NULL,
	instance   text COLLATE "C" NOT NULL,
	series     bigint NOT NULL,
	counts     bigint[] NOT NULL,
	PRIMARY KEY (group_name, at, instance, series)
) PARTITION BY RANGE (at);

CREATE TABLE traffic_coarse (
	group_name text COLLATE "C" NOT NULL,
	at         bigint NOT NULL,
	instance   text COLLATE "C" NOT NULL,
	series     bigint NOT NULL,
	counts     bigint[] NOT NULL,
	PRIMARY KEY (group_name, at, instance, series)
) PARTITION BY RANGE (at);

-- A point's group is not a foreign key, which would cost a check per
-- point written: a group's points go with it by this trigger instead.
CREATE FUNCTION traffic_drop_points() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM traffic_fine WHERE group_name = OLD.group_name;
	DELETE FROM traffic_coarse WHERE group_name = OLD.group_name;
	RETURN NULL;
END
$$;
CREATE TRIGGER traffic_drop_points AFTER DELETE ON traffic_groups
	FOR EACH ROW EXECUTE FUNCTION traffic_drop_points();

-- The points of 0002's traffic_points move into partitions made for them.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT DISTINCT t.name, t.period, p.at - ((p.at % t.period) + t.period) % t.period AS lo
		FROM traffic_points p
		JOIN (VALUES (10, 'traffic_fine', 86400::bigint), (60, 'traffic_coarse', 604800::bigint)) AS t (resolution, name, period)
			ON t.resolution = p.resolution
	LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
			r.name || '_p' || to_char(to_timestamp(r.lo) AT TIME ZONE 'UTC', 'YYYYMMDD'), r.name, r.lo, r.lo + r.period);
	END LOOP;
END
$$;

INSERT INTO traffic_fine SELECT group_name, at, instance, series, counts FROM traffic_points WHERE resolution = 10;
INSERT INTO traffic_coarse SELECT group_name, at, instance, series, counts FROM traffic_points WHERE resolution = 60;
DROP TABLE traffic_points;
