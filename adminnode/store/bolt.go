package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/deploy"

	"github.com/gatehouse/gatehouse/internal/boltfile"
)

// SchemaVersion is the layout this binary writes. Version 1: bucket "meta"
// holds "schema"; bucket "domain" holds "domain"; buckets "groups",
// "hosts", "instances", "drafts", "users", "roles" map a name, "bindings"
// and "tokens" an ID, to a JSON value; bucket "deployments" holds a bucket
// per group mapping an 8-byte big-endian number to a JSON Deployment;
// bucket "audit" maps an 8-byte big-endian sequence number to a JSON
// AuditEntry. Version 2 adds bucket "instance_states" mapping an instance
// name to a JSON InstanceState. Version 3 adds buckets "join_tokens"
// (ID → JoinToken) and "node_certs" (serial in hex → NodeCert). Version 4
// adds the domain's traffic: buckets "traffic_10s", "traffic_1m",
// "traffic_groups" and "traffic_nodes" (laid out in traffic.go). Version 5
// adds the domain's settings: buckets "environments" (name → JSON
// Environment), "environment_secrets" (a bucket per environment mapping a
// secret's name to a JSON Secret) and "trusted_domains" (name → JSON
// TrustedDomain). Version 6 adds the gateway releases: buckets "releases"
// (version → JSON Release) and "release_binaries" (version → the binary).
// Version 7 adds bucket "admin_certs" (admin node name → JSON AdminCert).
// Older files upgrade by gaining the empty buckets.
const SchemaVersion = 7

var (
	bucketDomain      = []byte("domain")
	bucketGroups      = []byte("groups")
	bucketHosts       = []byte("hosts")
	bucketInstances   = []byte("instances")
	bucketDrafts      = []byte("drafts")
	bucketDeployments = []byte("deployments")
	bucketUsers       = []byte("users")
	bucketRoles       = []byte("roles")
	bucketBindings    = []byte("bindings")
	bucketTokens      = []byte("tokens")
	bucketAudit       = []byte("audit")
	bucketStates      = []byte("instance_states")
	bucketJoinTokens  = []byte("join_tokens")
	bucketNodeCerts   = []byte("node_certs")
	keyDomain         = []byte("domain")

	allBuckets = [][]byte{bucketDomain, bucketGroups, bucketHosts, bucketInstances, bucketDrafts,
		bucketDeployments, bucketUsers, bucketRoles, bucketBindings, bucketTokens, bucketAudit, bucketStates, bucketJoinTokens, bucketNodeCerts,
		bucketTraffic10s, bucketTraffic1m, bucketTrafficGroups, bucketTrafficNodes,
		bucketEnvironments, bucketSecrets, bucketTrusted, bucketReleases, bucketReleaseBinaries, bucketAdminCerts}
)

// mapSize is how much of the file at path is mapped from the start: a
// backup's snapshot is a read transaction of seconds, and while one is
// open bbolt can grow its mapping only by making every write and new read
// wait for its end (boltfile.OpenMapped). Mapped at least 1 GiB and twice
// its size, the file grows that far without such a wait.
func mapSize(path string) int {
	const least = 1 << 30
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < least/2 {
		return least
	}
	return int(2 * fi.Size())
}

// Bolt is the bbolt implementation of Store.
type Bolt struct {
	db    *bolt.DB
	coord boltCoord
}

var _ Store = (*Bolt)(nil)

// Open opens (or creates) the store at path, checks its consistency and
// upgrades its schema. A file another process holds is an error after two
// seconds (bbolt's errors.ErrTimeout), so that a second admin node on the
// same file fails at once rather than hanging.
func Open(path string) (*Bolt, error) {
	db, err := boltfile.OpenMapped(path, mapSize(path))
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: locked by another process (another admin node?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b := &Bolt{db: db}
	if err := b.upgrade(); err != nil {
		db.Close()
		return nil, fmt.Errorf("upgrade store %s: %w", path, err)
	}
	return b, nil
}

func (b *Bolt) upgrade() error {
	return boltfile.Upgrade(b.db, SchemaVersion, func(tx *bolt.Tx, _ int) error {
		// Versions 0 (a new file) to 6 lack only buckets (version 3 those of
		// the traffic, version 4 those of the settings, version 5 those of
		// the releases, version 6 that of the admin certificates); later
		// versions add their steps here.
		return boltfile.CreateBuckets(tx, allBuckets...)
	})
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }

// bbolt takes no context; a cancelled request is at least not started.
func (b *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

func (b *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(fn)
}

// get decodes the value at key into v, reporting whether there was one.
func get(bk *bolt.Bucket, key string, v any) (bool, error) {
	data := bk.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func put(bk *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return bk.Put(key, data)
}

// modify is the read-modify-write every update is made of: it reads the
// record name of bucket, lets change edit it (or refuse), and writes it
// back, inside tx.
func modify[T any](tx *bolt.Tx, bucket []byte, what, name string, change func(*T) error) (T, error) {
	bk := tx.Bucket(bucket)
	var v T
	ok, err := get(bk, name, &v)
	if err != nil {
		return v, err
	}
	if !ok {
		return v, fmt.Errorf("%s %q: %w", what, name, ErrNotFound)
	}
	if err := change(&v); err != nil {
		return v, err
	}
	return v, put(bk, []byte(name), v)
}

// updateNamed is modify in a transaction of its own. Like modify, it
// returns the record as read when change refuses it.
func updateNamed[T any](ctx context.Context, b *Bolt, bucket []byte, what, name string, change func(*T) error) (T, error) {
	var out T
	err := b.update(ctx, func(tx *bolt.Tx) (err error) {
		out, err = modify(tx, bucket, what, name, change)
		return err
	})
	return out, err
}

// all decodes every value of bk in key order; keep, when not nil, selects.
func all[T any](bk *bolt.Bucket, keep func(T) bool) ([]T, error) {
	out := []T{}
	err := bk.ForEach(func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		if keep == nil || keep(x) {
			out = append(out, x)
		}
		return nil
	})
	return out, err
}

func numKey(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}

// newID returns 128 random bits in hex: unguessable, so that an ID alone
// grants nothing, and collision-free in practice.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: it crashes the program instead

	return hex.EncodeToString(b[:])
}

// now and stamp keep stored times in UTC without a monotonic reading, so
// that a value reads back equal to what was written.
func now() time.Time { return time.Now().UTC() }

func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC()
}

func need(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: %w", what, ErrInvalid)
	}
	return nil
}

// exists fails with ErrNotFound naming what is missing.
func exists(tx *bolt.Tx, bucket []byte, what, name string) error {
	if tx.Bucket(bucket).Get([]byte(name)) == nil {
		return fmt.Errorf("%s %q: %w", what, name, ErrNotFound)
	}
	return nil
}

// InitDomain implements Store.
func (b *Bolt) InitDomain(ctx context.Context, d Domain) error {
	if err := need("domain", d.Name); err != nil {
		return err
	}
	d.CreatedAt = stamp(d.CreatedAt)
	return b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDomain)
		if bk.Get(keyDomain) != nil {
			return fmt.Errorf("domain: %w", ErrExists)
		}
		return put(bk, keyDomain, d)
	})
}

// GetDomain implements Store.
func (b *Bolt) GetDomain(ctx context.Context) (Domain, error) {
	var d Domain
	err := b.view(ctx, func(tx *bolt.Tx) error {
		ok, err := get(tx.Bucket(bucketDomain), string(keyDomain), &d)
		if err == nil && !ok {
			err = fmt.Errorf("domain: %w", ErrNotFound)
		}
		return err
	})
	return d, err
}

// UpdatePublishKeys implements Store.
func (b *Bolt) UpdatePublishKeys(ctx context.Context, change func(keys [][]byte) ([][]byte, error)) ([][]byte, error) {
	d, err := updateNamed(ctx, b, bucketDomain, "domain", string(keyDomain), func(d *Domain) (err error) {
		d.PublishKeys, err = change(d.PublishKeys)
		return err
	})
	return d.PublishKeys, err
}

// UpdateCAs implements Store.
func (b *Bolt) UpdateCAs(ctx context.Context, change func(cas []DomainCA) ([]DomainCA, error)) ([]DomainCA, error) {
	d, err := updateNamed(ctx, b, bucketDomain, "domain", string(keyDomain), func(d *Domain) (err error) {
		d.CAs, err = change(d.CAs)
		return err
	})
	return d.CAs, err
}

// createNamed stores v under name in bucket unless the name is taken.
func (b *Bolt) createNamed(ctx context.Context, bucket []byte, what, name string, v any, checks func(tx *bolt.Tx) error) error {
	if err := need(what, name); err != nil {
		return err
	}
	return b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk.Get([]byte(name)) != nil {
			return fmt.Errorf("%s %q: %w", what, name, ErrExists)
		}
		if checks != nil {
			if err := checks(tx); err != nil {
				return err
			}
		}
		return put(bk, []byte(name), v)
	})
}

func (b *Bolt) getNamed(ctx context.Context, bucket []byte, what, name string, v any) error {
	return b.view(ctx, func(tx *bolt.Tx) error {
		ok, err := get(tx.Bucket(bucket), name, v)
		if err == nil && !ok {
			err = fmt.Errorf("%s %q: %w", what, name, ErrNotFound)
		}
		return err
	})
}

func list[T any](ctx context.Context, b *Bolt, bucket []byte, keep func(T) bool) ([]T, error) {
	var out []T
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = all(tx.Bucket(bucket), keep)
		return err
	})
	return out, err
}

// instancesWhere reports whether any instance satisfies match.
func instancesWhere(tx *bolt.Tx, match func(Instance) bool) (bool, error) {
	found, err := all(tx.Bucket(bucketInstances), match)
	return len(found) > 0, err
}

// CreateGroup implements Store.
func (b *Bolt) CreateGroup(ctx context.Context, g Group) (Group, error) {
	if g.Type == "" {
		g.Type = GroupTypeGateway
	}
	g.CreatedAt = stamp(g.CreatedAt)
	g.UpdatedAt = g.CreatedAt
	g.Version = 1
	if err := b.createNamed(ctx, bucketGroups, "group", g.Name, g, nil); err != nil {
		return Group{}, err
	}
	return g, nil
}

// GetGroup implements Store.
func (b *Bolt) GetGroup(ctx context.Context, name string) (Group, error) {
	var g Group
	err := b.getNamed(ctx, bucketGroups, "group", name, &g)
	return g, err
}

// ListGroups implements Store.
func (b *Bolt) ListGroups(ctx context.Context) ([]Group, error) {
	return list[Group](ctx, b, bucketGroups, nil)
}

// UpdateGroup implements Store.
func (b *Bolt) UpdateGroup(ctx context.Context, g Group, expectedVersion uint64) (Group, error) {
	return updateNamed(ctx, b, bucketGroups, "group", g.Name, func(cur *Group) error {
		if cur.Version != expectedVersion {
			return fmt.Errorf("group %q is at version %d, not %d: %w", g.Name, cur.Version, expectedVersion, ErrConflict)
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

// SetGossipKeys implements Store.
func (b *Bolt) SetGossipKeys(ctx context.Context, group string, keys [][]byte) (Group, error) {
	return updateNamed(ctx, b, bucketGroups, "group", group, func(cur *Group) error {
		cur.GossipKeys = keys
		return nil
	})
}

// SetGroupSettings implements Store.
func (b *Bolt) SetGroupSettings(ctx context.Context, group string, gs *GatewaySettings) (Group, error) {
	return updateNamed(ctx, b, bucketGroups, "group", group, func(cur *Group) error {
		cur.Settings = gs
		return nil
	})
}

// DeleteGroup implements Store.
func (b *Bolt) DeleteGroup(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketGroups, "group", name); err != nil {
			return err
		}
		used, err := instancesWhere(tx, func(in Instance) bool { return in.Group == name })
		if err != nil {
			return err
		}
		if used {
			return fmt.Errorf("group %q has instances: %w", name, ErrInUse)
		}
		if err := tx.Bucket(bucketDrafts).Delete([]byte(name)); err != nil {
			return err
		}
		if err := deleteGroupTraffic(tx, name); err != nil {
			return err
		}
		deps := tx.Bucket(bucketDeployments)
		if deps.Bucket([]byte(name)) != nil {
			if err := deps.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketGroups).Delete([]byte(name))
	})
}

// CreateHost implements Store.
func (b *Bolt) CreateHost(ctx context.Context, h Host) (Host, error) {
	h.CreatedAt = stamp(h.CreatedAt)
	if err := b.createNamed(ctx, bucketHosts, "host", h.Name, h, nil); err != nil {
		return Host{}, err
	}
	return h, nil
}

// SetHostAddress implements Store.
func (b *Bolt) SetHostAddress(ctx context.Context, name, address string) error {
	_, err := updateNamed(ctx, b, bucketHosts, "host", name, func(h *Host) error {
		h.Address = address
		return nil
	})
	return err
}

// SetHostCapabilities implements Store.
func (b *Bolt) SetHostCapabilities(ctx context.Context, name string, c HostCapabilities) error {
	c.Since = c.Since.UTC()
	_, err := updateNamed(ctx, b, bucketHosts, "host", name, func(h *Host) error {
		h.Capabilities = &c
		return nil
	})
	return err
}

// GetHost implements Store.
func (b *Bolt) GetHost(ctx context.Context, name string) (Host, error) {
	var h Host
	err := b.getNamed(ctx, bucketHosts, "host", name, &h)
	return h, err
}

// ListHosts implements Store.
func (b *Bolt) ListHosts(ctx context.Context) ([]Host, error) {
	return list[Host](ctx, b, bucketHosts, nil)
}

// DeleteHost implements Store.
func (b *Bolt) DeleteHost(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketHosts, "host", name); err != nil {
			return err
		}
		used, err := instancesWhere(tx, func(in Instance) bool { return in.Host == name })
		if err != nil {
			return err
		}
		if used {
			return fmt.Errorf("host %q has instances: %w", name, ErrInUse)
		}
		// The host's certificates go with it: a node manager of a deleted
		// host must not keep talking to the domain.
		certs := tx.Bucket(bucketNodeCerts)
		err = certs.ForEach(func(k, v []byte) error {
			var c NodeCert
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode node certificate %s: %w", k, err)
			}
			if c.Host != name || c.Revoked {
				return nil
			}
			c.Revoked = true
			return put(certs, k, c)
		})
		if err != nil {
			return err
		}
		// A host added again later joins anew: its batches start from 1.
		if err := tx.Bucket(bucketTrafficNodes).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket(bucketHosts).Delete([]byte(name))
	})
}

// CreateJoinToken implements Store.
func (b *Bolt) CreateJoinToken(ctx context.Context, t JoinToken) (JoinToken, error) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = stamp(t.CreatedAt)
	t.ExpiresAt = t.ExpiresAt.UTC()
	err := b.createNamed(ctx, bucketJoinTokens, "join token", t.ID, t, func(tx *bolt.Tx) error {
		return exists(tx, bucketHosts, "host", t.Host)
	})
	if err != nil {
		return JoinToken{}, err
	}
	return t, nil
}

// ListJoinTokens implements Store.
func (b *Bolt) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	return list[JoinToken](ctx, b, bucketJoinTokens, nil)
}

// UseJoinToken implements Store.
func (b *Bolt) UseJoinToken(ctx context.Context, id string, now time.Time, check func(JoinToken) error) (JoinToken, error) {
	return updateNamed(ctx, b, bucketJoinTokens, "join token", id, func(t *JoinToken) error {
		if err := check(*t); err != nil {
			return err
		}
		if !t.UsedAt.IsZero() {
			return fmt.Errorf("join token %s was used at %s: %w", id, t.UsedAt.Format(time.RFC3339), ErrConflict)
		}
		t.UsedAt = now.UTC()
		return nil
	})
}

// AddNodeCert implements Store.
func (b *Bolt) AddNodeCert(ctx context.Context, c NodeCert) error {
	c.IssuedAt = stamp(c.IssuedAt)
	c.NotAfter = c.NotAfter.UTC()
	return b.createNamed(ctx, bucketNodeCerts, "node certificate", c.Serial, c, func(tx *bolt.Tx) error {
		return exists(tx, bucketHosts, "host", c.Host)
	})
}

// GetNodeCert implements Store.
func (b *Bolt) GetNodeCert(ctx context.Context, serial string) (NodeCert, error) {
	var c NodeCert
	err := b.getNamed(ctx, bucketNodeCerts, "node certificate", serial, &c)
	return c, err
}

func instanceRefs(tx *bolt.Tx, in Instance) error {
	if err := exists(tx, bucketGroups, "group", in.Group); err != nil {
		return fmt.Errorf("instance %q: %w", in.Name, err)
	}
	if err := exists(tx, bucketHosts, "host", in.Host); err != nil {
		return fmt.Errorf("instance %q: %w", in.Name, err)
	}
	return nil
}

// CreateInstance implements Store.
func (b *Bolt) CreateInstance(ctx context.Context, in Instance) (Instance, error) {
	in.CreatedAt = stamp(in.CreatedAt)
	in.UpdatedAt = in.CreatedAt
	err := b.createNamed(ctx, bucketInstances, "instance", in.Name, in, func(tx *bolt.Tx) error {
		return instanceRefs(tx, in)
	})
	if err != nil {
		return Instance{}, err
	}
	return in, nil
}

// GetInstance implements Store.
func (b *Bolt) GetInstance(ctx context.Context, name string) (Instance, error) {
	var in Instance
	err := b.getNamed(ctx, bucketInstances, "instance", name, &in)
	return in, err
}

// ListInstances implements Store.
func (b *Bolt) ListInstances(ctx context.Context, f InstanceFilter) ([]Instance, error) {
	return list(ctx, b, bucketInstances, func(in Instance) bool {
		return (f.Group == "" || in.Group == f.Group) && (f.Host == "" || in.Host == f.Host)
	})
}

// UpdateInstance implements Store.
func (b *Bolt) UpdateInstance(ctx context.Context, in Instance) (Instance, error) {
	err := b.update(ctx, func(tx *bolt.Tx) (err error) {
		in, err = modify(tx, bucketInstances, "instance", in.Name, func(cur *Instance) error {
			if err := instanceRefs(tx, in); err != nil {
				return err
			}
			created, generation, settings := cur.CreatedAt, cur.RestartGeneration, cur.Settings
			*cur = in
			cur.CreatedAt, cur.RestartGeneration, cur.Settings = created, generation, settings
			cur.UpdatedAt = now()
			return nil
		})
		return err
	})
	if err != nil {
		return Instance{}, err
	}
	return in, nil
}

// SetInstanceSettings implements Store.
func (b *Bolt) SetInstanceSettings(ctx context.Context, name string, gs *GatewaySettings) (Instance, error) {
	return updateNamed(ctx, b, bucketInstances, "instance", name, func(in *Instance) error {
		in.Settings = gs
		return nil
	})
}

// RequestRestart implements Store.
func (b *Bolt) RequestRestart(ctx context.Context, name string) (Instance, error) {
	return updateNamed(ctx, b, bucketInstances, "instance", name, func(in *Instance) error {
		in.RestartGeneration++
		return nil
	})
}

// DeleteInstance implements Store.
func (b *Bolt) DeleteInstance(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketInstances, "instance", name); err != nil {
			return err
		}
		if err := tx.Bucket(bucketStates).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket(bucketInstances).Delete([]byte(name))
	})
}

// PutInstanceState implements Store.
func (b *Bolt) PutInstanceState(ctx context.Context, st InstanceState) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketInstances, "instance", st.Instance); err != nil {
			return err
		}
		st.LastHeartbeat = st.LastHeartbeat.UTC()
		return put(tx.Bucket(bucketStates), []byte(st.Instance), st)
	})
}

// PutInstanceStates implements Store.
func (b *Bolt) PutInstanceStates(ctx context.Context, sts []InstanceState) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		for _, st := range sts {
			if tx.Bucket(bucketInstances).Get([]byte(st.Instance)) == nil {
				continue
			}
			st.LastHeartbeat = st.LastHeartbeat.UTC()
			if err := put(tx.Bucket(bucketStates), []byte(st.Instance), st); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListInstanceStates implements Store.
func (b *Bolt) ListInstanceStates(ctx context.Context) ([]InstanceState, error) {
	return list[InstanceState](ctx, b, bucketStates, nil)
}

func (b *Bolt) deleteNamed(ctx context.Context, bucket []byte, what, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucket, what, name); err != nil {
			return err
		}
		return tx.Bucket(bucket).Delete([]byte(name))
	})
}

func draftIn(tx *bolt.Tx, group string) (Draft, error) {
	if err := exists(tx, bucketGroups, "group", group); err != nil {
		return Draft{}, err
	}
	d := Draft{Group: group}
	_, err := get(tx.Bucket(bucketDrafts), group, &d)
	return d, err
}

// GetDraft implements Store.
func (b *Bolt) GetDraft(ctx context.Context, group string) (Draft, error) {
	var d Draft
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		d, err = draftIn(tx, group)
		return err
	})
	return d, err
}

// PutDraft implements Store.
func (b *Bolt) PutDraft(ctx context.Context, group string, cfg deploy.Config, expectedVersion uint64, by string) (Draft, error) {
	var d Draft
	err := b.update(ctx, func(tx *bolt.Tx) error {
		var err error
		if d, err = draftIn(tx, group); err != nil {
			return err
		}
		if d.Version != expectedVersion {
			return fmt.Errorf("draft of group %q is at version %d, not %d: %w", group, d.Version, expectedVersion, ErrConflict)
		}
		d.Config = cfg
		d.Version++
		d.UpdatedAt = now()
		d.UpdatedBy = by
		return put(tx.Bucket(bucketDrafts), []byte(group), d)
	})
	if err != nil {
		return Draft{}, err
	}
	return d, nil
}

// addDeployment stores what build makes of the group's next number
// (NextDeploymentNumber).
func addDeployment(tx *bolt.Tx, group string, build func(number uint64) (Deployment, error)) (Deployment, error) {
	if err := exists(tx, bucketGroups, "group", group); err != nil {
		return Deployment{}, err
	}
	bk, err := tx.Bucket(bucketDeployments).CreateBucketIfNotExists([]byte(group))
	if err != nil {
		return Deployment{}, err
	}
	states, err := groupStates(tx, group)
	if err != nil {
		return Deployment{}, err
	}
	number := NextDeploymentNumber(lastNumber(bk), states)
	d, err := build(number)
	if err != nil {
		return Deployment{}, err
	}
	d.Group, d.Number = group, number
	d.CreatedAt = stamp(d.CreatedAt)
	return d, put(bk, numKey(d.Number), d)
}

// Freeze implements Store.
func (b *Bolt) Freeze(ctx context.Context, group string, expectedDraftVersion uint64, build func(d Draft, number uint64) (Deployment, error)) (Deployment, error) {
	var out Deployment
	err := b.update(ctx, func(tx *bolt.Tx) error {
		d, err := draftIn(tx, group)
		if err != nil {
			return err
		}
		if d.Version != expectedDraftVersion {
			return fmt.Errorf("draft of group %q is at version %d, not %d: %w", group, d.Version, expectedDraftVersion, ErrConflict)
		}
		out, err = addDeployment(tx, group, func(number uint64) (Deployment, error) {
			dep, err := build(d, number)
			if err != nil {
				return Deployment{}, fmt.Errorf("freeze draft %d of group %q: %w", d.Version, group, err)
			}
			dep.RollbackOf = 0
			return dep, nil
		})
		return err
	})
	if err != nil {
		return Deployment{}, err
	}
	return out, nil
}

// Rollback implements Store.
func (b *Bolt) Rollback(ctx context.Context, group string, to uint64, build func(src Deployment, number uint64) (Deployment, error)) (Deployment, error) {
	var out Deployment
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk, err := deploymentsOf(tx, group)
		if err != nil {
			return err
		}
		var data []byte
		if bk != nil {
			data = bk.Get(numKey(to))
		}
		if data == nil {
			return fmt.Errorf("deployment %d of group %q to roll back to: %w", to, group, ErrNotFound)
		}
		var src Deployment
		if err := json.Unmarshal(data, &src); err != nil {
			return fmt.Errorf("decode deployment %d of group %q: %w", to, group, err)
		}
		out, err = addDeployment(tx, group, func(number uint64) (Deployment, error) {
			dep, err := build(src, number)
			if err != nil {
				return Deployment{}, fmt.Errorf("roll group %q back to deployment %d: %w", group, to, err)
			}
			dep.RollbackOf = to
			return dep, nil
		})
		return err
	})
	if err != nil {
		return Deployment{}, err
	}
	return out, nil
}

// deploymentsOf returns the group's deployment bucket, nil when it has
// none yet.
func deploymentsOf(tx *bolt.Tx, group string) (*bolt.Bucket, error) {
	if err := exists(tx, bucketGroups, "group", group); err != nil {
		return nil, err
	}
	return tx.Bucket(bucketDeployments).Bucket([]byte(group)), nil
}

// GetDeployment implements Store.
func (b *Bolt) GetDeployment(ctx context.Context, group string, number uint64) (Deployment, error) {
	var d Deployment
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk, err := deploymentsOf(tx, group)
		if err != nil {
			return err
		}
		var v []byte
		if bk != nil {
			v = bk.Get(numKey(number))
		}
		if v == nil {
			return fmt.Errorf("deployment %d of group %q: %w", number, group, ErrNotFound)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// ListDeployments implements Store.
func (b *Bolt) ListDeployments(ctx context.Context, group string) ([]Deployment, error) {
	out := []Deployment{}
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk, err := deploymentsOf(tx, group)
		if err != nil || bk == nil {
			return err
		}
		c := bk.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var d Deployment
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode deployment %d of group %q: %w", binary.BigEndian.Uint64(k), group, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// LatestDeployment implements Store.
func (b *Bolt) LatestDeployment(ctx context.Context, group string) (Deployment, error) {
	var d Deployment
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk, err := deploymentsOf(tx, group)
		if err != nil {
			return err
		}
		var v []byte
		if bk != nil {
			_, v = bk.Cursor().Last()
		}
		if v == nil {
			return fmt.Errorf("deployments of group %q: %w", group, ErrNotFound)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// CreateUser implements Store.
func (b *Bolt) CreateUser(ctx context.Context, u User) (User, error) {
	u.CreatedAt = stamp(u.CreatedAt)
	if err := b.createNamed(ctx, bucketUsers, "user", u.Name, u, nil); err != nil {
		return User{}, err
	}
	return u, nil
}

// GetUser implements Store.
func (b *Bolt) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	err := b.getNamed(ctx, bucketUsers, "user", name, &u)
	return u, err
}

// ListUsers implements Store.
func (b *Bolt) ListUsers(ctx context.Context) ([]User, error) {
	return list[User](ctx, b, bucketUsers, nil)
}

// UpdateUser implements Store.
func (b *Bolt) UpdateUser(ctx context.Context, u User) (User, error) {
	return updateNamed(ctx, b, bucketUsers, "user", u.Name, func(cur *User) error {
		cur.PasswordHash = u.PasswordHash
		cur.Disabled = u.Disabled
		return nil
	})
}

// DeleteUser implements Store.
func (b *Bolt) DeleteUser(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketUsers, "user", name); err != nil {
			return err
		}
		bindings := tx.Bucket(bucketBindings)
		mine, err := all(bindings, func(rb RoleBinding) bool { return rb.User == name })
		if err != nil {
			return err
		}
		for _, rb := range mine {
			if err := bindings.Delete([]byte(rb.ID)); err != nil {
				return err
			}
		}
		tokens := tx.Bucket(bucketTokens)
		live, err := all(tokens, func(t Token) bool { return t.User == name && !t.Revoked })
		if err != nil {
			return err
		}
		for _, t := range live {
			t.Revoked = true
			if err := put(tokens, []byte(t.ID), t); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketUsers).Delete([]byte(name))
	})
}

// CreateRole implements Store.
func (b *Bolt) CreateRole(ctx context.Context, r Role) (Role, error) {
	if err := b.createNamed(ctx, bucketRoles, "role", r.Name, r, nil); err != nil {
		return Role{}, err
	}
	return r, nil
}

// GetRole implements Store.
func (b *Bolt) GetRole(ctx context.Context, name string) (Role, error) {
	var r Role
	err := b.getNamed(ctx, bucketRoles, "role", name, &r)
	return r, err
}

// ListRoles implements Store.
func (b *Bolt) ListRoles(ctx context.Context) ([]Role, error) {
	return list[Role](ctx, b, bucketRoles, nil)
}

// UpdateRole implements Store.
func (b *Bolt) UpdateRole(ctx context.Context, r Role) (Role, error) {
	err := b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketRoles, "role", r.Name); err != nil {
			return err
		}
		return put(tx.Bucket(bucketRoles), []byte(r.Name), r)
	})
	if err != nil {
		return Role{}, err
	}
	return r, nil
}

// DeleteRole implements Store.
func (b *Bolt) DeleteRole(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketRoles, "role", name); err != nil {
			return err
		}
		used, err := all(tx.Bucket(bucketBindings), func(rb RoleBinding) bool { return rb.Role == name })
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return fmt.Errorf("role %q is bound to %d users: %w", name, len(used), ErrInUse)
		}
		return tx.Bucket(bucketRoles).Delete([]byte(name))
	})
}

// Valid reports whether s sets exactly one kind of scope, as every store
// requires of a binding.
func (s Scope) Valid() bool {
	kinds := 0
	if s.Domain {
		kinds++
	}
	if len(s.Groups) > 0 {
		kinds++
	}
	if len(s.Selector) > 0 {
		kinds++
	}
	return kinds == 1
}

// CreateRoleBinding implements Store.
func (b *Bolt) CreateRoleBinding(ctx context.Context, rb RoleBinding) (RoleBinding, error) {
	if !rb.Scope.Valid() {
		return RoleBinding{}, fmt.Errorf("binding of role %q to user %q: scope must be exactly one of domain, groups, selector: %w", rb.Role, rb.User, ErrInvalid)
	}
	if rb.ID == "" {
		rb.ID = newID()
	}
	rb.CreatedAt = stamp(rb.CreatedAt)
	err := b.createNamed(ctx, bucketBindings, "role binding", rb.ID, rb, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketUsers, "user", rb.User); err != nil {
			return err
		}
		return exists(tx, bucketRoles, "role", rb.Role)
	})
	if err != nil {
		return RoleBinding{}, err
	}
	return rb, nil
}

// GetRoleBinding implements Store.
func (b *Bolt) GetRoleBinding(ctx context.Context, id string) (RoleBinding, error) {
	var rb RoleBinding
	err := b.getNamed(ctx, bucketBindings, "role binding", id, &rb)
	return rb, err
}

// ListRoleBindings implements Store.
func (b *Bolt) ListRoleBindings(ctx context.Context, user string) ([]RoleBinding, error) {
	return list(ctx, b, bucketBindings, func(rb RoleBinding) bool { return user == "" || rb.User == user })
}

// DeleteRoleBinding implements Store.
func (b *Bolt) DeleteRoleBinding(ctx context.Context, id string) error {
	return b.deleteNamed(ctx, bucketBindings, "role binding", id)
}

// CreateToken implements Store.
func (b *Bolt) CreateToken(ctx context.Context, t Token) (Token, error) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = stamp(t.CreatedAt)
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = t.ExpiresAt.UTC()
	}
	if !t.LastUsedAt.IsZero() {
		t.LastUsedAt = t.LastUsedAt.UTC()
	}
	err := b.createNamed(ctx, bucketTokens, "token", t.ID, t, func(tx *bolt.Tx) error {
		return exists(tx, bucketUsers, "user", t.User)
	})
	if err != nil {
		return Token{}, err
	}
	return t, nil
}

// GetToken implements Store.
func (b *Bolt) GetToken(ctx context.Context, id string) (Token, error) {
	var t Token
	err := b.getNamed(ctx, bucketTokens, "token", id, &t)
	return t, err
}

// ListTokens implements Store.
func (b *Bolt) ListTokens(ctx context.Context, user string) ([]Token, error) {
	return list(ctx, b, bucketTokens, func(t Token) bool { return user == "" || t.User == user })
}

func (b *Bolt) changeToken(ctx context.Context, id string, change func(t *Token)) error {
	_, err := updateNamed(ctx, b, bucketTokens, "token", id, func(t *Token) error {
		change(t)
		return nil
	})
	return err
}

// RevokeToken implements Store.
func (b *Bolt) RevokeToken(ctx context.Context, id string) error {
	return b.changeToken(ctx, id, func(t *Token) { t.Revoked = true })
}

// TouchToken implements Store.
func (b *Bolt) TouchToken(ctx context.Context, id string, at time.Time) error {
	return b.changeToken(ctx, id, func(t *Token) { t.LastUsedAt = at.UTC() })
}

// AppendAudit implements Store.
func (b *Bolt) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e.Time = stamp(e.Time)
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketAudit)
		seq, err := bk.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		return put(bk, numKey(seq), e)
	})
	if err != nil {
		return AuditEntry{}, err
	}
	return e, nil
}

// ListAudit implements Store. Entries are keyed by Seq alone, so the
// filters other than Before are a scan from the newest entry down.
func (b *Bolt) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	out := []AuditEntry{}
	err := b.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else if k, v = c.Seek(numKey(f.Before)); k == nil {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
			if f.Before != 0 && bytes.Compare(k, numKey(f.Before)) >= 0 {
				continue
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if f.matches(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

func (f AuditFilter) matches(e AuditEntry) bool {
	return (f.User == "" || e.User == f.User) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Group == "" || e.Group == f.Group) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}
