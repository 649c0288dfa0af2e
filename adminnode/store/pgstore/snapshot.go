package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// snapshotQueries read each kind in the order of store.SnapshotKinds, by
// key; each selects the document (deployments their three columns).
var snapshotQueries = []struct {
	kind, sql string
}{
	{store.KindDomain, "SELECT doc FROM domain"},
	{store.KindGroup, "SELECT doc FROM groups ORDER BY name"},
	{store.KindHost, "SELECT doc FROM hosts ORDER BY name"},
	{store.KindInstance, "SELECT doc FROM instances ORDER BY name"},
	{store.KindInstanceState, "SELECT doc FROM instance_states ORDER BY instance"},
	{store.KindJoinToken, "SELECT doc FROM join_tokens ORDER BY id"},
	{store.KindNodeCert, "SELECT doc FROM node_certs ORDER BY serial"},
	{store.KindDraft, "SELECT doc FROM drafts ORDER BY group_name"},
	{store.KindDeployment, selectDeployment + " ORDER BY group_name, number"},
	{store.KindUser, "SELECT doc FROM users ORDER BY name"},
	{store.KindRole, "SELECT doc FROM roles ORDER BY name"},
	{store.KindRoleBinding, "SELECT doc FROM role_bindings ORDER BY id"},
	{store.KindToken, "SELECT doc FROM tokens ORDER BY id"},
	{store.KindAudit, "SELECT doc FROM audit ORDER BY seq"},
	{store.KindEnvironment, "SELECT doc FROM environments ORDER BY name"},
	{store.KindSecret, "SELECT doc FROM environment_secrets ORDER BY environment, name"},
	{store.KindTrustedDomain, "SELECT doc FROM trusted_domains ORDER BY name"},
}

// Snapshot implements store.Store: one read-only REPEATABLE READ
// transaction, whose queries all see the database as of its first one,
// while writers go on. Each query is read through a cursor, a few rows at
// a time (one for deployments, which are large): the server reads and
// sends them only as emit takes them, so that a backup pacing itself
// (adminnode/backup) paces the server's part too.
func (p *PG) Snapshot(ctx context.Context, emit func(store.Item) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, q := range snapshotQueries {
			if err := emitRows(ctx, tx, q.kind, q.sql, emit); err != nil {
				return fmt.Errorf("snapshot %s: %w", q.kind, err)
			}
		}
		return nil
	})
}

// snapshotFetch is how many rows a snapshot's cursor gives at a time.
const snapshotFetch = 64

// emitRows streams the rows of sql to emit, one decoded item at a time,
// through a cursor.
func emitRows(ctx context.Context, tx pgx.Tx, kind, sql string, emit func(store.Item) error) error {
	if _, err := tx.Exec(ctx, "DECLARE snapshot NO SCROLL CURSOR FOR "+sql); err != nil {
		return err
	}
	fetch := fmt.Sprintf("FETCH %d FROM snapshot", snapshotFetch)
	if kind == store.KindDeployment {
		fetch = "FETCH 1 FROM snapshot"
	}
	for {
		n, err := emitFetched(ctx, tx, kind, fetch, emit)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	_, err := tx.Exec(ctx, "CLOSE snapshot")
	return err
}

// emitFetched emits the rows of one FETCH and says how many there were.
func emitFetched(ctx context.Context, tx pgx.Tx, kind, fetch string, emit func(store.Item) error) (int, error) {
	rows, err := tx.Query(ctx, fetch)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var it store.Item
		if kind == store.KindDeployment {
			d, err := scanDeployment(rows)
			if err != nil {
				return n, err
			}
			it = store.Item{Kind: kind, Value: d}
		} else {
			var doc []byte
			if err := rows.Scan(&doc); err != nil {
				return n, err
			}
			// The document as stored, for a backup to write as it is;
			// the domain's is read by the backup itself.
			it = store.Item{Kind: kind, Raw: doc}
			if kind == store.KindDomain {
				if it, err = it.Decoded(); err != nil {
					return n, err
				}
			}
		}
		if err := emit(it); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// restoreTables are those a store must have no row in to be restored
// into.
var restoreTables = []string{"domain", "groups", "hosts", "instances", "join_tokens", "node_certs", "users", "roles",
	"role_bindings", "tokens", "audit", "environments", "trusted_domains", "traffic_nodes", "traffic_groups"}

// Restore implements store.Store, in one transaction.
func (p *PG) Restore(ctx context.Context, read func(put func(store.Item) error) error) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		for _, t := range restoreTables {
			var found bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+t+")").Scan(&found); err != nil {
				return fmt.Errorf("restore: inspect %s: %w", t, err)
			}
			if found {
				return fmt.Errorf("restore: the database is not empty (it holds %s): %w", t, store.ErrExists)
			}
		}
		var lastAudit uint64
		err := read(func(it store.Item) error {
			if a, ok := it.Value.(store.AuditEntry); ok && it.Kind == store.KindAudit {
				lastAudit = max(lastAudit, a.Seq)
			}
			if err := restoreItem(ctx, tx, it); err != nil {
				return fmt.Errorf("restore %s: %w", it.Kind, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE audit_seq SET seq = $1 WHERE id = 1", lastAudit)
		return err
	})
}

// restoreItem inserts one item into its table; a duplicate key is
// ErrExists (a concurrent restore or init got there first).
func restoreItem(ctx context.Context, tx pgx.Tx, it store.Item) error {
	var sql string
	var args []any
	doc, err := json.Marshal(it.Value)
	if err != nil {
		return err
	}
	switch v := it.Value.(type) {
	case store.Domain:
		sql, args = "INSERT INTO domain VALUES (1, $1)", []any{doc}
	case store.Group:
		sql, args = "INSERT INTO groups VALUES ($1, $2)", []any{v.Name, doc}
	case store.Host:
		sql, args = "INSERT INTO hosts VALUES ($1, $2)", []any{v.Name, doc}
	case store.Instance:
		sql, args = "INSERT INTO instances VALUES ($1, $2, $3, $4)", []any{v.Name, v.Group, v.Host, doc}
	case store.InstanceState:
		sql, args = "INSERT INTO instance_states VALUES ($1, $2)", []any{v.Instance, doc}
	case store.JoinToken:
		sql, args = "INSERT INTO join_tokens VALUES ($1, $2, $3)", []any{v.ID, v.Host, doc}
	case store.NodeCert:
		sql, args = "INSERT INTO node_certs VALUES ($1, $2, $3)", []any{v.Serial, v.Host, doc}
	case store.Draft:
		sql, args = "INSERT INTO drafts VALUES ($1, $2)", []any{v.Group, doc}
	case store.Deployment:
		if v.Number == 0 {
			return fmt.Errorf("deployment of group %q numbered 0: %w", v.Group, store.ErrInvalid)
		}
		config, template, ddoc, err := deploymentRow(v)
		if err != nil {
			return err
		}
		sql, args = "INSERT INTO deployments VALUES ($1, $2, $3, $4, $5)", []any{v.Group, v.Number, config, template, ddoc}
	case store.User:
		sql, args = "INSERT INTO users VALUES ($1, $2)", []any{v.Name, doc}
	case store.Role:
		sql, args = "INSERT INTO roles VALUES ($1, $2)", []any{v.Name, doc}
	case store.RoleBinding:
		sql, args = "INSERT INTO role_bindings VALUES ($1, $2, $3, $4)", []any{v.ID, v.User, v.Role, doc}
	case store.Token:
		sql, args = "INSERT INTO tokens VALUES ($1, $2, $3)", []any{v.ID, v.User, doc}
	case store.AuditEntry:
		if v.Seq == 0 {
			return fmt.Errorf("audit entry without a sequence number: %w", store.ErrInvalid)
		}
		sql, args = "INSERT INTO audit VALUES ($1, $2, $3, $4, $5, $6)",
			[]any{v.Seq, v.Time.UnixNano(), auditKey(v.User), auditKey(v.Action), auditKey(v.Group), doc}
	case store.Environment:
		sql, args = "INSERT INTO environments VALUES ($1, $2)", []any{v.Name, doc}
	case store.Secret:
		sql, args = "INSERT INTO environment_secrets VALUES ($1, $2, $3)", []any{v.Environment, v.Name, doc}
	case store.TrustedDomain:
		sql, args = "INSERT INTO trusted_domains VALUES ($1, $2)", []any{v.Name, doc}
	default:
		return fmt.Errorf("snapshot item of kind %q holds a %T: %w", it.Kind, it.Value, store.ErrInvalid)
	}
	_, err = tx.Exec(ctx, sql, args...)
	switch pgCode(err) {
	case "":
		return err
	case codeUniqueViolation:
		return fmt.Errorf("%w: %v", store.ErrExists, err)
	case codeForeignKey:
		return fmt.Errorf("it refers to a record the snapshot does not hold: %w: %v", store.ErrInvalid, err)
	}
	return err
}

// groupStates returns the observed states of the group's instances, for
// store.NextDeploymentNumber.
func groupStates(ctx context.Context, q querier, group string) ([]store.InstanceState, error) {
	return listDocs[store.InstanceState](ctx, q, `SELECT s.doc FROM instance_states s
		JOIN instances i ON i.name = s.instance WHERE i.group_name = $1`, group)
}
