-- Gateway releases (docs/upgrades.md): the binary as bytea beside its
-- document. A group's pinned release and rollout live in the group's
-- document; a release they need cannot be deleted (checked by the store,
-- in the deleting transaction, under a lock of the groups table).

CREATE TABLE releases (
	version text COLLATE "C" PRIMARY KEY,
	content bytea NOT NULL,
	doc     json NOT NULL
);

CREATE CONSTRAINT TRIGGER note_change AFTER INSERT OR UPDATE OR DELETE ON releases
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_change();
