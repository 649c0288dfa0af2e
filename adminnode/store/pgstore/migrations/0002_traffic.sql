-- The domain's traffic. A point is an instance's counts of one series at
-- a time (Unix seconds) and resolution (10 or 60 s); counts are a bigint
-- array: requests, bytes in, bytes out, latency sum in microseconds, then
-- the latency buckets. Series are numbered per group (traffic_series),
-- labels counted against the group's limits (traffic_labels).

CREATE TABLE traffic_nodes (
	node text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

CREATE TABLE traffic_groups (
	group_name       text COLLATE "C" PRIMARY KEY REFERENCES groups (name) ON DELETE CASCADE,
	watermark        bigint NOT NULL DEFAULT 0,
	routes           int NOT NULL DEFAULT 0,
	consumers        int NOT NULL DEFAULT 0,
	folded_routes    bigint NOT NULL DEFAULT 0,
	folded_consumers bigint NOT NULL DEFAULT 0,
	last_series      bigint NOT NULL DEFAULT 0
);

-- kind 'r' is a service's route, 'c' a consumer (service '').
CREATE TABLE traffic_labels (
	group_name text COLLATE "C" NOT NULL REFERENCES traffic_groups (group_name) ON DELETE CASCADE,
	kind       text COLLATE "C" NOT NULL,
	service    text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	seen       bigint NOT NULL,
	PRIMARY KEY (group_name, kind, service, name)
);

CREATE TABLE traffic_series (
	group_name text COLLATE "C" NOT NULL REFERENCES traffic_groups (group_name) ON DELETE CASCADE,
	id         bigint NOT NULL,
	service    text COLLATE "C" NOT NULL,
	route      text COLLATE "C" NOT NULL,
	consumer   text COLLATE "C" NOT NULL,
	class      text COLLATE "C" NOT NULL,
	seen       bigint NOT NULL,
	PRIMARY KEY (group_name, id),
	UNIQUE (group_name, service, route, consumer, class)
);

CREATE TABLE traffic_points (
	group_name text COLLATE "C" NOT NULL REFERENCES traffic_groups (group_name) ON DELETE CASCADE,
	resolution int NOT NULL,
	at         bigint NOT NULL,
	instance   text COLLATE "C" NOT NULL,
	series     bigint NOT NULL,
	counts     bigint[] NOT NULL,
	PRIMARY KEY (group_name, resolution, at, instance, series)
);

CREATE TABLE traffic_totals (
	group_name text COLLATE "C" NOT NULL REFERENCES traffic_groups (group_name) ON DELETE CASCADE,
	service    text COLLATE "C" NOT NULL,
	class      text COLLATE "C" NOT NULL,
	counts     bigint[] NOT NULL,
	PRIMARY KEY (group_name, service, class)
);

-- traffic_add adds counts element by element; a NULL is no counts yet.
CREATE FUNCTION traffic_add(a bigint[], b bigint[]) RETURNS bigint[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
	FROM unnest(a, b) WITH ORDINALITY AS t (x, y, i)
$$;

CREATE AGGREGATE traffic_sum(bigint[]) (SFUNC = traffic_add, STYPE = bigint[]);
