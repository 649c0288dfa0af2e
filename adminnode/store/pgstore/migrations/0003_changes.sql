-- Wake-ups across admin nodes. Every transaction that writes one of the
-- tables below counts one change (change_counter) and notifies channel
-- gatehouse_changes once per table, with "table:count" as payload. The
-- triggers are deferred: they run at commit, after every other statement,
-- so the counter's row lock is the last one a transaction takes and two
-- writers cannot deadlock on it; the notification leaves only if the
-- transaction commits. Admin nodes LISTEN, and compare the counter every
-- few seconds so that a lost notification only delays them.

CREATE TABLE change_counter (
	id int PRIMARY KEY CHECK (id = 1),
	n  bigint NOT NULL
);
INSERT INTO change_counter VALUES (1, 0);

CREATE FUNCTION note_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF coalesce(current_setting('gatehouse.change_n', true), '') = '' THEN
		UPDATE change_counter SET n = change_counter.n + 1 WHERE id = 1 RETURNING change_counter.n INTO n;
		PERFORM set_config('gatehouse.change_n', n::text, true);
	END IF;
	IF coalesce(current_setting('gatehouse.changed_' || TG_TABLE_NAME, true), '') = '' THEN
		PERFORM set_config('gatehouse.changed_' || TG_TABLE_NAME, 'y', true);
		PERFORM pg_notify('gatehouse_changes', TG_TABLE_NAME || ':' || current_setting('gatehouse.change_n'));
	END IF;
	RETURN NULL;
END
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['domain', 'groups', 'hosts', 'instances', 'instance_states', 'deployments',
		'node_certs', 'environments', 'environment_secrets', 'trusted_domains'] LOOP
		EXECUTE format('CREATE CONSTRAINT TRIGGER note_change AFTER INSERT OR UPDATE OR DELETE ON %I
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_change()', t);
	END LOOP;
END
$$;

-- Of two admin nodes writing one instance's state, the later heartbeat
-- wins whatever the order of their writes: a node manager that moved from
-- one admin node to another is not set back by the first one's late
-- batch.
CREATE FUNCTION keep_newer_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (OLD.doc->>'last_heartbeat')::timestamptz > (NEW.doc->>'last_heartbeat')::timestamptz THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER keep_newer_state BEFORE UPDATE ON instance_states
	FOR EACH ROW EXECUTE FUNCTION keep_newer_state();
