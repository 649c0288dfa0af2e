package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// PG is the PostgreSQL implementation of store.Store.
type PG struct {
	pool  *pgxpool.Pool
	parts knownPartitions
}

var _ store.Store = (*PG)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and brings its schema to this binary's.
func Open(ctx context.Context, dsn string) (*PG, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: the parse error does not repeat it.
		return nil, fmt.Errorf("parse PostgreSQL connection string: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate PostgreSQL store: %w", err)
	}
	return &PG{pool: pool}, nil
}

// Close implements store.Store.
func (p *PG) Close() error {
	p.pool.Close()
	return nil
}

// querier is what a read needs: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// tx runs fn in a transaction, committed when fn returns nil. A cancelled
// context starts nothing.
func (p *PG) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, p.pool, fn)
}

// now and stamp keep stored times in UTC without a monotonic reading, as
// the bbolt store does.
func now() time.Time { return time.Now().UTC() }

func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC()
}

func need(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: %w", what, store.ErrInvalid)
	}
	return nil
}

// newID returns 128 random bits in hex, like the bbolt store's IDs.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encode(v any) ([]byte, error) { return json.Marshal(v) }

// getDoc decodes the one document sql selects, reporting whether there
// was one.
func getDoc[T any](ctx context.Context, q querier, sql string, args ...any) (T, bool, error) {
	var v T
	var doc []byte
	err := q.QueryRow(ctx, sql, args...).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, true, fmt.Errorf("decode: %w", err)
	}
	return v, true, nil
}

// mustDoc is getDoc with ErrNotFound naming what is missing.
func mustDoc[T any](ctx context.Context, q querier, what, name, sql string, args ...any) (T, error) {
	v, ok, err := getDoc[T](ctx, q, sql, args...)
	if err != nil {
		return v, fmt.Errorf("%s %q: %w", what, name, err)
	}
	if !ok {
		return v, fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
	}
	return v, nil
}

// listDocs decodes the documents sql selects, in its order; never nil.
func listDocs[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := []T{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return nil, err
		}
		var v T
		if err := json.Unmarshal(doc, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decode: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// exists fails with ErrNotFound naming what is missing; table and column
// are constants of this package.
func exists(ctx context.Context, q querier, table, column, what, name string) error {
	var one int
	err := q.QueryRow(ctx, "SELECT 1 FROM "+table+" WHERE "+column+" = $1", name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
	}
	return err
}

// lock locks the row of a group (or another keyed row) for the rest of the
// transaction, failing with ErrNotFound when it is missing.
func lock(ctx context.Context, tx pgx.Tx, table, column, what, name string) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM "+table+" WHERE "+column+" = $1 FOR UPDATE", name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
	}
	return err
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	codeUniqueViolation = "23505"
	codeForeignKey      = "23503"
)

// modify is the read-modify-write every update is made of: it locks and
// reads the document of table keyed name, lets change edit it (or refuse,
// its error returned as it is) and writes it back. It returns the record
// as read when change refuses it.
func modify[T any](ctx context.Context, tx pgx.Tx, table, key, what, name string, change func(*T) error) (T, error) {
	v, err := mustDoc[T](ctx, tx, what, name, "SELECT doc FROM "+table+" WHERE "+key+" = $1 FOR UPDATE", name)
	if err != nil {
		return v, err
	}
	if err := change(&v); err != nil {
		return v, err
	}
	doc, err := encode(v)
	if err != nil {
		return v, err
	}
	_, err = tx.Exec(ctx, "UPDATE "+table+" SET doc = $2 WHERE "+key+" = $1", name, doc)
	return v, err
}

// modifyAll lets change edit each document of table whose column is
// value, locked, and writes back those it reports changed.
func modifyAll[T any](ctx context.Context, tx pgx.Tx, table, key, column, value string, change func(*T) bool) error {
	rows, err := tx.Query(ctx, "SELECT "+key+", doc FROM "+table+" WHERE "+column+" = $1 FOR UPDATE", value)
	if err != nil {
		return err
	}
	type row struct {
		key string
		doc []byte
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.key, &x.doc)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range all {
		var v T
		if err := json.Unmarshal(x.doc, &v); err != nil {
			return fmt.Errorf("decode %s %q: %w", table, x.key, err)
		}
		if !change(&v) {
			continue
		}
		doc, err := encode(v)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE "+table+" SET doc = $2 WHERE "+key+" = $1", x.key, doc); err != nil {
			return err
		}
	}
	return nil
}

// updateNamed is modify in a transaction of its own.
func updateNamed[T any](ctx context.Context, p *PG, table, key, what, name string, change func(*T) error) (T, error) {
	var out T
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		out, err = modify(ctx, tx, table, key, what, name, change)
		return err
	})
	return out, err
}

// insert stores a new row, failing with ErrExists when its key is taken.
// columns name the key first; args follow them, the document last.
func insert(ctx context.Context, q querier, what, name, sql string, args ...any) error {
	tag, err := q.Exec(ctx, sql+" ON CONFLICT DO NOTHING", args...)
	if err != nil {
		if pgCode(err) == codeForeignKey {
			return fmt.Errorf("%s %q: a record it refers to is gone: %w", what, name, store.ErrNotFound)
		}
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", what, name, store.ErrExists)
	}
	return nil
}

// deleteRow deletes the row keyed name, ErrNotFound when there is none.
func deleteRow(ctx context.Context, q querier, table, key, what, name string) error {
	tag, err := q.Exec(ctx, "DELETE FROM "+table+" WHERE "+key+" = $1", name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
	}
	return nil
}

// InitDomain implements store.Store.
func (p *PG) InitDomain(ctx context.Context, d store.Domain) error {
	return p.tx(ctx, func(tx pgx.Tx) error { return initDomain(ctx, tx, d) })
}

func initDomain(ctx context.Context, tx pgx.Tx, d store.Domain) error {
	if err := need("domain", d.Name); err != nil {
		return err
	}
	d.CreatedAt = stamp(d.CreatedAt)
	doc, err := encode(d)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, "INSERT INTO domain VALUES (1, $1) ON CONFLICT DO NOTHING", doc)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("domain: %w", store.ErrExists)
	}
	return err
}

// CreateDomain stores a new domain with everything it starts with in one
// transaction: either all of seed is committed or nothing is, so that a
// failure or a crash half-way leaves the database as empty as it was.
// It fails with ErrExists when the database already holds a domain.
func (p *PG) CreateDomain(ctx context.Context, seed store.DomainSeed) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := initDomain(ctx, tx, seed.Domain); err != nil {
			return err
		}
		for _, r := range seed.Roles {
			if _, err := createRole(ctx, tx, r); err != nil {
				return fmt.Errorf("create role %s: %w", r.Name, err)
			}
		}
		for _, u := range seed.Users {
			if _, err := createUser(ctx, tx, u); err != nil {
				return fmt.Errorf("create user %s: %w", u.Name, err)
			}
		}
		for _, rb := range seed.Bindings {
			if _, err := createRoleBinding(ctx, tx, rb); err != nil {
				return fmt.Errorf("bind %s to %s: %w", rb.User, rb.Role, err)
			}
		}
		for _, e := range seed.Audit {
			if _, err := appendAudit(ctx, tx, e); err != nil {
				return fmt.Errorf("audit %s: %w", e.Action, err)
			}
		}
		return nil
	})
}

// GetDomain implements store.Store.
func (p *PG) GetDomain(ctx context.Context) (store.Domain, error) {
	if err := ctx.Err(); err != nil {
		return store.Domain{}, err
	}
	d, ok, err := getDoc[store.Domain](ctx, p.pool, "SELECT doc FROM domain WHERE id = 1")
	if err == nil && !ok {
		err = fmt.Errorf("domain: %w", store.ErrNotFound)
	}
	return d, err
}

// UpdatePublishKeys implements store.Store.
func (p *PG) UpdatePublishKeys(ctx context.Context, change func(keys [][]byte) ([][]byte, error)) ([][]byte, error) {
	var keys [][]byte
	err := p.tx(ctx, func(tx pgx.Tx) error {
		d, ok, err := getDoc[store.Domain](ctx, tx, "SELECT doc FROM domain WHERE id = 1 FOR UPDATE")
		if err == nil && !ok {
			err = fmt.Errorf("domain: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if d.PublishKeys, err = change(d.PublishKeys); err != nil {
			return err
		}
		doc, err := encode(d)
		if err != nil {
			return err
		}
		keys = d.PublishKeys
		_, err = tx.Exec(ctx, "UPDATE domain SET doc = $1 WHERE id = 1", doc)
		return err
	})
	return keys, err
}

// UpdateCAs implements store.Store.
func (p *PG) UpdateCAs(ctx context.Context, change func(cas []store.DomainCA) ([]store.DomainCA, error)) ([]store.DomainCA, error) {
	var cas []store.DomainCA
	err := p.tx(ctx, func(tx pgx.Tx) error {
		d, ok, err := getDoc[store.Domain](ctx, tx, "SELECT doc FROM domain WHERE id = 1 FOR UPDATE")
		if err == nil && !ok {
			err = fmt.Errorf("domain: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if d.CAs, err = change(d.CAs); err != nil {
			return err
		}
		doc, err := encode(d)
		if err != nil {
			return err
		}
		cas = d.CAs
		_, err = tx.Exec(ctx, "UPDATE domain SET doc = $1 WHERE id = 1", doc)
		return err
	})
	return cas, err
}

// getNamed reads the document of table keyed name.
func getNamed[T any](ctx context.Context, p *PG, table, key, what, name string) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	return mustDoc[T](ctx, p.pool, what, name, "SELECT doc FROM "+table+" WHERE "+key+" = $1", name)
}

// CreateGroup implements store.Store.
func (p *PG) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	if err := need("group", g.Name); err != nil {
		return store.Group{}, err
	}
	if g.Type == "" {
		g.Type = store.GroupTypeGateway
	}
	g.CreatedAt = stamp(g.CreatedAt)
	g.UpdatedAt = g.CreatedAt
	g.Version = 1
	doc, err := encode(g)
	if err != nil {
		return store.Group{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		return insert(ctx, tx, "group", g.Name, "INSERT INTO groups VALUES ($1, $2)", g.Name, doc)
	})
	if err != nil {
		return store.Group{}, err
	}
	return g, nil
}

// GetGroup implements store.Store.
func (p *PG) GetGroup(ctx context.Context, name string) (store.Group, error) {
	return getNamed[store.Group](ctx, p, "groups", "name", "group", name)
}

// ListGroups implements store.Store.
func (p *PG) ListGroups(ctx context.Context) ([]store.Group, error) {
	return listDocs[store.Group](ctx, p.pool, "SELECT doc FROM groups ORDER BY name")
}

// UpdateGroup implements store.Store.
func (p *PG) UpdateGroup(ctx context.Context, g store.Group, expectedVersion uint64) (store.Group, error) {
	return updateNamed(ctx, p, "groups", "name", "group", g.Name, func(cur *store.Group) error {
		if cur.Version != expectedVersion {
			return fmt.Errorf("group %q is at version %d, not %d: %w", g.Name, cur.Version, expectedVersion, store.ErrConflict)
		}
		if g.Type != "" {
			cur.Type = g.Type
		}
		cur.Labels = g.Labels
		cur.Description = g.Description
		cur.Environment = g.Environment
		cur.UpdatedAt = now()
		cur.Version++
		return nil
	})
}

// SetGossipKeys implements store.Store.
func (p *PG) SetGossipKeys(ctx context.Context, group string, keys [][]byte) (store.Group, error) {
	return updateNamed(ctx, p, "groups", "name", "group", group, func(cur *store.Group) error {
		cur.GossipKeys = keys
		return nil
	})
}

// SetGroupSettings implements store.Store.
func (p *PG) SetGroupSettings(ctx context.Context, group string, gs *store.GatewaySettings) (store.Group, error) {
	return updateNamed(ctx, p, "groups", "name", "group", group, func(cur *store.Group) error {
		cur.Settings = gs
		return nil
	})
}

// DeleteGroup implements store.Store. Its draft and deployments go with it
// (ON DELETE CASCADE).
func (p *PG) DeleteGroup(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "groups", "name", "group", name); err != nil {
			return err
		}
		var used bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM instances WHERE group_name = $1)", name).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("group %q has instances: %w", name, store.ErrInUse)
		}
		return deleteRow(ctx, tx, "groups", "name", "group", name)
	})
}

// CreateHost implements store.Store.
func (p *PG) CreateHost(ctx context.Context, h store.Host) (store.Host, error) {
	if err := need("host", h.Name); err != nil {
		return store.Host{}, err
	}
	h.CreatedAt = stamp(h.CreatedAt)
	doc, err := encode(h)
	if err != nil {
		return store.Host{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		return insert(ctx, tx, "host", h.Name, "INSERT INTO hosts VALUES ($1, $2)", h.Name, doc)
	})
	if err != nil {
		return store.Host{}, err
	}
	return h, nil
}

// GetHost implements store.Store.
func (p *PG) GetHost(ctx context.Context, name string) (store.Host, error) {
	return getNamed[store.Host](ctx, p, "hosts", "name", "host", name)
}

// ListHosts implements store.Store.
func (p *PG) ListHosts(ctx context.Context) ([]store.Host, error) {
	return listDocs[store.Host](ctx, p.pool, "SELECT doc FROM hosts ORDER BY name")
}

// SetHostAddress implements store.Store.
func (p *PG) SetHostAddress(ctx context.Context, name, address string) error {
	_, err := updateNamed(ctx, p, "hosts", "name", "host", name, func(h *store.Host) error {
		h.Address = address
		return nil
	})
	return err
}

// SetHostCapabilities implements store.Store.
func (p *PG) SetHostCapabilities(ctx context.Context, name string, c store.HostCapabilities) error {
	c.Since = c.Since.UTC()
	_, err := updateNamed(ctx, p, "hosts", "name", "host", name, func(h *store.Host) error {
		h.Capabilities = &c
		return nil
	})
	return err
}

// DeleteHost implements store.Store: the host's node certificates are
// revoked with it.
func (p *PG) DeleteHost(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "hosts", "name", "host", name); err != nil {
			return err
		}
		var used bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM instances WHERE host_name = $1)", name).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("host %q has instances: %w", name, store.ErrInUse)
		}
		err := modifyAll(ctx, tx, "node_certs", "serial", "host_name", name, func(c *store.NodeCert) bool {
			if c.Revoked {
				return false
			}
			c.Revoked = true
			return true
		})
		if err != nil {
			return fmt.Errorf("revoke the certificates of host %q: %w", name, err)
		}
		// A host added again later joins anew: its batches start from 1.
		if _, err := tx.Exec(ctx, "DELETE FROM traffic_nodes WHERE node = $1", name); err != nil {
			return err
		}
		return deleteRow(ctx, tx, "hosts", "name", "host", name)
	})
}

// CreateJoinToken implements store.Store.
func (p *PG) CreateJoinToken(ctx context.Context, t store.JoinToken) (store.JoinToken, error) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = stamp(t.CreatedAt)
	t.ExpiresAt = t.ExpiresAt.UTC()
	doc, err := encode(t)
	if err != nil {
		return store.JoinToken{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		// The host's row is locked so that it cannot go before the token
		// commits.
		if err := lockShare(ctx, tx, "hosts", "host", t.Host); err != nil {
			return err
		}
		return insert(ctx, tx, "join token", t.ID, "INSERT INTO join_tokens VALUES ($1, $2, $3)", t.ID, t.Host, doc)
	})
	if err != nil {
		return store.JoinToken{}, err
	}
	return t, nil
}

// lockShare locks the row keyed name against deletion until the
// transaction ends, failing with ErrNotFound when it is missing.
func lockShare(ctx context.Context, tx pgx.Tx, table, what, name string) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM "+table+" WHERE name = $1 FOR SHARE", name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
	}
	return err
}

// ListJoinTokens implements store.Store.
func (p *PG) ListJoinTokens(ctx context.Context) ([]store.JoinToken, error) {
	return listDocs[store.JoinToken](ctx, p.pool, "SELECT doc FROM join_tokens ORDER BY id")
}

// UseJoinToken implements store.Store. The token's row is locked while
// check runs: concurrent joins see it one after the other.
func (p *PG) UseJoinToken(ctx context.Context, id string, at time.Time, check func(store.JoinToken) error) (store.JoinToken, error) {
	return updateNamed(ctx, p, "join_tokens", "id", "join token", id, func(t *store.JoinToken) error {
		if err := check(*t); err != nil {
			return err
		}
		if !t.UsedAt.IsZero() {
			return fmt.Errorf("join token %s was used at %s: %w", id, t.UsedAt.Format(time.RFC3339), store.ErrConflict)
		}
		t.UsedAt = at.UTC()
		return nil
	})
}

// AddNodeCert implements store.Store.
func (p *PG) AddNodeCert(ctx context.Context, c store.NodeCert) error {
	if err := need("node certificate", c.Serial); err != nil {
		return err
	}
	c.IssuedAt = stamp(c.IssuedAt)
	c.NotAfter = c.NotAfter.UTC()
	doc, err := encode(c)
	if err != nil {
		return err
	}
	return p.tx(ctx, func(tx pgx.Tx) error {
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM node_certs WHERE serial = $1)", c.Serial).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("node certificate %q: %w", c.Serial, store.ErrExists)
		}
		if err := lockShare(ctx, tx, "hosts", "host", c.Host); err != nil {
			return err
		}
		return insert(ctx, tx, "node certificate", c.Serial, "INSERT INTO node_certs VALUES ($1, $2, $3)", c.Serial, c.Host, doc)
	})
}

// GetNodeCert implements store.Store.
func (p *PG) GetNodeCert(ctx context.Context, serial string) (store.NodeCert, error) {
	return getNamed[store.NodeCert](ctx, p, "node_certs", "serial", "node certificate", serial)
}

// instanceRefs checks the instance's group and host, locking them against
// deletion for the rest of the transaction.
func instanceRefs(ctx context.Context, tx pgx.Tx, in store.Instance) error {
	if err := lockShare(ctx, tx, "groups", "group", in.Group); err != nil {
		return fmt.Errorf("instance %q: %w", in.Name, err)
	}
	if err := lockShare(ctx, tx, "hosts", "host", in.Host); err != nil {
		return fmt.Errorf("instance %q: %w", in.Name, err)
	}
	return nil
}

// CreateInstance implements store.Store.
func (p *PG) CreateInstance(ctx context.Context, in store.Instance) (store.Instance, error) {
	if err := need("instance", in.Name); err != nil {
		return store.Instance{}, err
	}
	in.CreatedAt = stamp(in.CreatedAt)
	in.UpdatedAt = in.CreatedAt
	doc, err := encode(in)
	if err != nil {
		return store.Instance{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM instances WHERE name = $1)", in.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("instance %q: %w", in.Name, store.ErrExists)
		}
		if err := instanceRefs(ctx, tx, in); err != nil {
			return err
		}
		return insert(ctx, tx, "instance", in.Name, "INSERT INTO instances VALUES ($1, $2, $3, $4)", in.Name, in.Group, in.Host, doc)
	})
	if err != nil {
		return store.Instance{}, err
	}
	return in, nil
}

// GetInstance implements store.Store.
func (p *PG) GetInstance(ctx context.Context, name string) (store.Instance, error) {
	return getNamed[store.Instance](ctx, p, "instances", "name", "instance", name)
}

// ListInstances implements store.Store.
func (p *PG) ListInstances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	return listDocs[store.Instance](ctx, p.pool, `SELECT doc FROM instances
		WHERE ($1 = '' OR group_name = $1) AND ($2 = '' OR host_name = $2) ORDER BY name`, f.Group, f.Host)
}

// UpdateInstance implements store.Store.
func (p *PG) UpdateInstance(ctx context.Context, in store.Instance) (store.Instance, error) {
	err := p.tx(ctx, func(tx pgx.Tx) error {
		cur, err := mustDoc[store.Instance](ctx, tx, "instance", in.Name, "SELECT doc FROM instances WHERE name = $1 FOR UPDATE", in.Name)
		if err != nil {
			return err
		}
		if err := instanceRefs(ctx, tx, in); err != nil {
			return err
		}
		in.CreatedAt, in.RestartGeneration, in.Settings = cur.CreatedAt, cur.RestartGeneration, cur.Settings
		in.UpdatedAt = now()
		doc, err := encode(in)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE instances SET group_name = $2, host_name = $3, doc = $4 WHERE name = $1", in.Name, in.Group, in.Host, doc)
		return err
	})
	if err != nil {
		return store.Instance{}, err
	}
	return in, nil
}

// SetInstanceSettings implements store.Store.
func (p *PG) SetInstanceSettings(ctx context.Context, name string, gs *store.GatewaySettings) (store.Instance, error) {
	return updateNamed(ctx, p, "instances", "name", "instance", name, func(in *store.Instance) error {
		in.Settings = gs
		return nil
	})
}

// RequestRestart implements store.Store.
func (p *PG) RequestRestart(ctx context.Context, name string) (store.Instance, error) {
	return updateNamed(ctx, p, "instances", "name", "instance", name, func(in *store.Instance) error {
		in.RestartGeneration++
		return nil
	})
}

// DeleteInstance implements store.Store; its state goes with it (ON
// DELETE CASCADE).
func (p *PG) DeleteInstance(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		return deleteRow(ctx, tx, "instances", "name", "instance", name)
	})
}

const putState = `INSERT INTO instance_states VALUES ($1, $2)
	ON CONFLICT (instance) DO UPDATE SET doc = EXCLUDED.doc`

// PutInstanceState implements store.Store.
func (p *PG) PutInstanceState(ctx context.Context, st store.InstanceState) error {
	st.LastHeartbeat = st.LastHeartbeat.UTC()
	doc, err := encode(st)
	if err != nil {
		return err
	}
	return p.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, putState, st.Instance, doc)
		if pgCode(err) == codeForeignKey {
			return fmt.Errorf("instance %q: %w", st.Instance, store.ErrNotFound)
		}
		return err
	})
}

// PutInstanceStates implements store.Store: one statement per state, in
// one transaction, skipping instances that are gone.
func (p *PG) PutInstanceStates(ctx context.Context, sts []store.InstanceState) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, st := range sts {
			st.LastHeartbeat = st.LastHeartbeat.UTC()
			doc, err := encode(st)
			if err != nil {
				return err
			}
			// Only an instance that exists (and is kept from going until
			// the commit) gets a state.
			batch.Queue(`INSERT INTO instance_states
				SELECT name, $2::json FROM (SELECT name FROM instances WHERE name = $1 FOR SHARE) AS i
				ON CONFLICT (instance) DO UPDATE SET doc = EXCLUDED.doc`, st.Instance, doc)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

// ListInstanceStates implements store.Store.
func (p *PG) ListInstanceStates(ctx context.Context) ([]store.InstanceState, error) {
	return listDocs[store.InstanceState](ctx, p.pool, "SELECT doc FROM instance_states ORDER BY instance")
}

// draftIn reads the group's draft; Version 0 when it has none.
func draftIn(ctx context.Context, q querier, group string) (store.Draft, error) {
	d, ok, err := getDoc[store.Draft](ctx, q, "SELECT doc FROM drafts WHERE group_name = $1", group)
	if err != nil {
		return d, fmt.Errorf("draft of group %q: %w", group, err)
	}
	if !ok {
		d = store.Draft{Group: group}
	}
	return d, nil
}

// GetDraft implements store.Store.
func (p *PG) GetDraft(ctx context.Context, group string) (store.Draft, error) {
	var d store.Draft
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		if err := exists(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		d, err = draftIn(ctx, tx, group)
		return err
	})
	return d, err
}

// PutDraft implements store.Store. The group's row is locked first: the
// draft's may not exist yet, and writers of one group take turns.
func (p *PG) PutDraft(ctx context.Context, group string, cfg deploy.Config, expectedVersion uint64, by string) (store.Draft, error) {
	var d store.Draft
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		if err := lock(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		if d, err = draftIn(ctx, tx, group); err != nil {
			return err
		}
		if d.Version != expectedVersion {
			return fmt.Errorf("draft of group %q is at version %d, not %d: %w", group, d.Version, expectedVersion, store.ErrConflict)
		}
		d.Config = cfg
		d.Version++
		d.UpdatedAt = now()
		d.UpdatedBy = by
		doc, err := encode(d)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO drafts VALUES ($1, $2)
			ON CONFLICT (group_name) DO UPDATE SET doc = EXCLUDED.doc`, group, doc)
		return err
	})
	if err != nil {
		return store.Draft{}, err
	}
	return d, nil
}

// deploymentRow is how a deployment is stored: its exact bytes in columns,
// the rest in the document.
func deploymentRow(d store.Deployment) (config, template, doc []byte, err error) {
	config, template = d.Config, d.Template
	if config == nil {
		config = []byte{}
	}
	d.Config, d.Template = nil, nil
	doc, err = encode(d)
	return config, template, doc, err
}

const selectDeployment = "SELECT config, template, doc FROM deployments"

func scanDeployment(row pgx.Row) (store.Deployment, error) {
	var config, template, doc []byte
	if err := row.Scan(&config, &template, &doc); err != nil {
		return store.Deployment{}, err
	}
	var d store.Deployment
	if err := json.Unmarshal(doc, &d); err != nil {
		return d, fmt.Errorf("decode deployment: %w", err)
	}
	d.Config = config
	if len(template) > 0 {
		d.Template = template
	}
	return d, nil
}

// addDeployment stores what build makes of the group's next number
// (store.NextDeploymentNumber). The
// caller holds the group's row lock, so that the number is the next one
// when it commits.
func addDeployment(ctx context.Context, tx pgx.Tx, group string, build func(number uint64) (store.Deployment, error)) (store.Deployment, error) {
	var last uint64
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(number), 0) FROM deployments WHERE group_name = $1", group).Scan(&last); err != nil {
		return store.Deployment{}, err
	}
	states, err := groupStates(ctx, tx, group)
	if err != nil {
		return store.Deployment{}, fmt.Errorf("number deployment of group %q: %w", group, err)
	}
	number := store.NextDeploymentNumber(last, states)
	d, err := build(number)
	if err != nil {
		return store.Deployment{}, err
	}
	d.Group, d.Number = group, number
	d.CreatedAt = stamp(d.CreatedAt)
	config, template, doc, err := deploymentRow(d)
	if err != nil {
		return store.Deployment{}, err
	}
	_, err = tx.Exec(ctx, "INSERT INTO deployments VALUES ($1, $2, $3, $4, $5)", group, number, config, template, doc)
	if err != nil {
		return store.Deployment{}, fmt.Errorf("store deployment %d of group %q: %w", number, group, err)
	}
	return d, nil
}

// Freeze implements store.Store.
func (p *PG) Freeze(ctx context.Context, group string, expectedDraftVersion uint64, build func(d store.Draft, number uint64) (store.Deployment, error)) (store.Deployment, error) {
	var out store.Deployment
	err := p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		d, err := draftIn(ctx, tx, group)
		if err != nil {
			return err
		}
		if d.Version != expectedDraftVersion {
			return fmt.Errorf("draft of group %q is at version %d, not %d: %w", group, d.Version, expectedDraftVersion, store.ErrConflict)
		}
		out, err = addDeployment(ctx, tx, group, func(number uint64) (store.Deployment, error) {
			dep, err := build(d, number)
			if err != nil {
				return store.Deployment{}, fmt.Errorf("freeze draft %d of group %q: %w", d.Version, group, err)
			}
			dep.RollbackOf = 0
			return dep, nil
		})
		return err
	})
	if err != nil {
		return store.Deployment{}, err
	}
	return out, nil
}

// Rollback implements store.Store.
func (p *PG) Rollback(ctx context.Context, group string, to uint64, build func(src store.Deployment, number uint64) (store.Deployment, error)) (store.Deployment, error) {
	var out store.Deployment
	err := p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		src, err := scanDeployment(tx.QueryRow(ctx, selectDeployment+" WHERE group_name = $1 AND number = $2", group, to))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deployment %d of group %q to roll back to: %w", to, group, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		out, err = addDeployment(ctx, tx, group, func(number uint64) (store.Deployment, error) {
			dep, err := build(src, number)
			if err != nil {
				return store.Deployment{}, fmt.Errorf("roll group %q back to deployment %d: %w", group, to, err)
			}
			dep.RollbackOf = to
			return dep, nil
		})
		return err
	})
	if err != nil {
		return store.Deployment{}, err
	}
	return out, nil
}

// GetDeployment implements store.Store.
func (p *PG) GetDeployment(ctx context.Context, group string, number uint64) (store.Deployment, error) {
	var d store.Deployment
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		if err := exists(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		d, err = scanDeployment(tx.QueryRow(ctx, selectDeployment+" WHERE group_name = $1 AND number = $2", group, number))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deployment %d of group %q: %w", number, group, store.ErrNotFound)
		}
		return err
	})
	return d, err
}

// ListDeployments implements store.Store.
func (p *PG) ListDeployments(ctx context.Context, group string) ([]store.Deployment, error) {
	out := []store.Deployment{}
	err := p.tx(ctx, func(tx pgx.Tx) error {
		if err := exists(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, selectDeployment+" WHERE group_name = $1 ORDER BY number DESC", group)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LatestDeployment implements store.Store.
func (p *PG) LatestDeployment(ctx context.Context, group string) (store.Deployment, error) {
	var d store.Deployment
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		if err := exists(ctx, tx, "groups", "name", "group", group); err != nil {
			return err
		}
		d, err = scanDeployment(tx.QueryRow(ctx, selectDeployment+" WHERE group_name = $1 ORDER BY number DESC LIMIT 1", group))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deployments of group %q: %w", group, store.ErrNotFound)
		}
		return err
	})
	return d, err
}
