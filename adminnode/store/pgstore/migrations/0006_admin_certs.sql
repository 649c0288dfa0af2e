-- The HTTPS certificate of each admin node, as that node last recorded it
-- (at start, after a renewal, and at intervals), so that every admin node
-- lists those of all (GET /certificates). Not watched: no note_change.

CREATE TABLE admin_certs (
	node text COLLATE "C" PRIMARY KEY,
	doc  json NOT NULL
);
