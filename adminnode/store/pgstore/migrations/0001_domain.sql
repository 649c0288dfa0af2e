-- The domain's state. Each record is a JSON document (doc) beside the
-- columns that key it, relate it to others and order it; names sort
-- bytewise (COLLATE "C"), as in the bbolt store. Documents are json, not
-- jsonb: kept as written, and jsonb refuses the NUL a Go string may hold.

CREATE TABLE domain (
	id  int PRIMARY KEY CHECK (id = 1),
	doc json NOT NULL
);

CREATE TABLE groups (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

CREATE TABLE hosts (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

-- Instances hold their group and host: neither can go while they do.
CREATE TABLE instances (
	name       text COLLATE "C" PRIMARY KEY,
	group_name text COLLATE "C" NOT NULL REFERENCES groups (name),
	host_name  text COLLATE "C" NOT NULL REFERENCES hosts (name),
	doc        json NOT NULL
);
CREATE INDEX instances_group ON instances (group_name);
CREATE INDEX instances_host ON instances (host_name);

CREATE TABLE instance_states (
	instance text COLLATE "C" PRIMARY KEY REFERENCES instances (name) ON DELETE CASCADE,
	doc      json NOT NULL
);

CREATE TABLE join_tokens (
	id        text COLLATE "C" PRIMARY KEY,
	host_name text COLLATE "C" NOT NULL,
	doc       json NOT NULL
);

-- A deleted host's certificates stay, revoked.
CREATE TABLE node_certs (
	serial    text COLLATE "C" PRIMARY KEY,
	host_name text COLLATE "C" NOT NULL,
	doc       json NOT NULL
);
CREATE INDEX node_certs_host ON node_certs (host_name);

CREATE TABLE drafts (
	group_name text COLLATE "C" PRIMARY KEY REFERENCES groups (name) ON DELETE CASCADE,
	doc        json NOT NULL
);

-- A deployment's configuration and template are the exact bytes its
-- checksum and signature cover: bytea, beside the document.
CREATE TABLE deployments (
	group_name text COLLATE "C" NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
	number     bigint NOT NULL CHECK (number > 0),
	config     bytea NOT NULL,
	template   bytea,
	doc        json NOT NULL,
	PRIMARY KEY (group_name, number)
);

CREATE TABLE users (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

CREATE TABLE roles (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

CREATE TABLE role_bindings (
	id        text COLLATE "C" PRIMARY KEY,
	user_name text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	role_name text COLLATE "C" NOT NULL REFERENCES roles (name),
	doc       json NOT NULL
);
CREATE INDEX role_bindings_user ON role_bindings (user_name);
CREATE INDEX role_bindings_role ON role_bindings (role_name);

-- A deleted user's tokens stay, revoked: no foreign key.
CREATE TABLE tokens (
	id        text COLLATE "C" PRIMARY KEY,
	user_name text COLLATE "C" NOT NULL,
	doc       json NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_name);

-- The audit log's sequence is a counter row rather than a PostgreSQL
-- sequence: taking it locks the row until the entry commits, so entries
-- commit in Seq order and without gaps, and a reader paging by Seq never
-- misses one that commits late.
CREATE TABLE audit_seq (
	id  int PRIMARY KEY CHECK (id = 1),
	seq bigint NOT NULL
);
INSERT INTO audit_seq VALUES (1, 0);

-- at_ns is the entry's time in Unix nanoseconds: exact, so that the
-- filters' bounds compare as in Go.
CREATE TABLE audit (
	seq        bigint PRIMARY KEY,
	at_ns      bigint NOT NULL,
	user_name  text COLLATE "C" NOT NULL,
	action     text COLLATE "C" NOT NULL,
	group_name text COLLATE "C" NOT NULL,
	doc        json NOT NULL
);

CREATE TABLE environments (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);

CREATE TABLE environment_secrets (
	environment text COLLATE "C" NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
	name        text COLLATE "C" NOT NULL,
	doc         json NOT NULL,
	PRIMARY KEY (environment, name)
);

CREATE TABLE trusted_domains (
	name text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);
