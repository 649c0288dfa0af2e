package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/backupfile"
)

// A snapshot is the whole domain as the store holds it, record by record,
// in a form that does not depend on the store: what a backup is made of
// and what Restore fills an empty store with. The records are the store's
// own types, values as stored (sealed values stay sealed), so that a
// restored store reads back exactly what the snapshot saw.

// Kinds of snapshot items, in the order Snapshot emits them: a record
// comes after those it refers to.
const (
	KindDomain        = backupfile.KindDomain
	KindGroup         = "group"
	KindHost          = "host"
	KindInstance      = "instance"
	KindInstanceState = "instance_state"
	KindJoinToken     = "join_token"
	KindNodeCert      = "node_cert"
	KindDraft         = "draft"
	KindDeployment    = "deployment"
	KindUser          = "user"
	KindRole          = "role"
	KindRoleBinding   = "role_binding"
	KindToken         = "token"
	KindAudit         = "audit"
	KindEnvironment   = "environment"
	KindSecret        = "secret"
	KindTrustedDomain = "trusted_domain"
)

// SnapshotKinds lists the kinds in the order Snapshot emits them.
var SnapshotKinds = []string{KindDomain, KindGroup, KindHost, KindInstance, KindInstanceState, KindJoinToken,
	KindNodeCert, KindDraft, KindDeployment, KindUser, KindRole, KindRoleBinding, KindToken, KindAudit,
	KindEnvironment, KindSecret, KindTrustedDomain}

// Item is one record of a snapshot: Value is the store type of Kind
// (Domain, Group, ..., TrustedDomain), not a pointer. Snapshot may give
// Raw instead, the record's JSON encoding as the store keeps it, when it
// has that at hand: a backup writes it as it is rather than decode and
// encode again configurations of thousands of routes. Raw may be the
// store's own memory, valid only until emit returns: a caller that keeps
// it copies it (Decoded does). Decoded gives the Value either way.
// Restore takes Value.
type Item struct {
	Kind  string
	Value any
	Raw   json.RawMessage
}

// Decoded returns it with its Value, decoding Raw when that is what it
// holds.
func (it Item) Decoded() (Item, error) {
	if it.Value != nil || it.Raw == nil {
		return it, nil
	}
	return DecodeItem(it.Kind, it.Raw)
}

// DecodeItem decodes the JSON encoding of a value of kind.
func DecodeItem(kind string, data []byte) (Item, error) {
	var v any
	var err error
	switch kind {
	case KindDomain:
		v, err = decodeAs[Domain](data)
	case KindGroup:
		v, err = decodeAs[Group](data)
	case KindHost:
		v, err = decodeAs[Host](data)
	case KindInstance:
		v, err = decodeAs[Instance](data)
	case KindInstanceState:
		v, err = decodeAs[InstanceState](data)
	case KindJoinToken:
		v, err = decodeAs[JoinToken](data)
	case KindNodeCert:
		v, err = decodeAs[NodeCert](data)
	case KindDraft:
		v, err = decodeAs[Draft](data)
	case KindDeployment:
		v, err = decodeAs[Deployment](data)
	case KindUser:
		v, err = decodeAs[User](data)
	case KindRole:
		v, err = decodeAs[Role](data)
	case KindRoleBinding:
		v, err = decodeAs[RoleBinding](data)
	case KindToken:
		v, err = decodeAs[Token](data)
	case KindAudit:
		v, err = decodeAs[AuditEntry](data)
	case KindEnvironment:
		v, err = decodeAs[Environment](data)
	case KindSecret:
		v, err = decodeAs[Secret](data)
	case KindTrustedDomain:
		v, err = decodeAs[TrustedDomain](data)
	default:
		return Item{}, fmt.Errorf("snapshot item of unknown kind %q: %w", kind, ErrInvalid)
	}
	if err != nil {
		return Item{}, fmt.Errorf("decode snapshot %s: %w", kind, err)
	}
	return Item{Kind: kind, Value: v}, nil
}

func decodeAs[T any](data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// itemTypeError is Restore's error for an item whose Value is not of its
// Kind's type.
func itemTypeError(it Item) error {
	return fmt.Errorf("snapshot item of kind %q holds a %T: %w", it.Kind, it.Value, ErrInvalid)
}

// Snapshot implements Store: one bbolt read transaction, so that writers
// go on while it runs and it sees none of their changes.
func (b *Bolt) Snapshot(ctx context.Context, emit func(Item) error) error {
	return b.view(ctx, func(tx *bolt.Tx) error {
		if data := tx.Bucket(bucketDomain).Get(keyDomain); data != nil {
			if err := emitValue[Domain](KindDomain, data, emit); err != nil {
				return err
			}
		}
		steps := []func() error{
			func() error { return emitBucket(ctx, tx.Bucket(bucketGroups), KindGroup, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketHosts), KindHost, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketInstances), KindInstance, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketStates), KindInstanceState, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketJoinTokens), KindJoinToken, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketNodeCerts), KindNodeCert, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketDrafts), KindDraft, emit) },
			func() error { return emitNested(ctx, tx.Bucket(bucketDeployments), KindDeployment, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketUsers), KindUser, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketRoles), KindRole, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketBindings), KindRoleBinding, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketTokens), KindToken, emit) },
			func() error { return emitBucket(ctx, tx.Bucket(bucketAudit), KindAudit, emit) },
			func() error {
				return emitBucket(ctx, tx.Bucket(bucketEnvironments), KindEnvironment, emit)
			},
			func() error { return emitNested(ctx, tx.Bucket(bucketSecrets), KindSecret, emit) },
			func() error {
				return emitBucket(ctx, tx.Bucket(bucketTrusted), KindTrustedDomain, emit)
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
}

func emitValue[T any](kind string, data []byte, emit func(Item) error) error {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("snapshot: decode %s: %w", kind, err)
	}
	return emit(Item{Kind: kind, Value: v})
}

// emitBucket emits every value of bk in key order, as stored (Raw: the
// store's values are the JSON encoding of their type). A snapshot may be
// long: a cancelled caller stops it between records.
func emitBucket(ctx context.Context, bk *bolt.Bucket, kind string, emit func(Item) error) error {
	return bk.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v == nil {
			return nil
		}
		// v is bbolt's memory, valid until the transaction ends: Raw is
		// valid until emit returns, and a backup streams it without a
		// copy (garbage collected while requests are served).
		return emit(Item{Kind: kind, Raw: v})
	})
}

// emitNested emits the values of every bucket nested in bk.
func emitNested(ctx context.Context, bk *bolt.Bucket, kind string, emit func(Item) error) error {
	return bk.ForEachBucket(func(k []byte) error {
		return emitBucket(ctx, bk.Bucket(k), kind, emit)
	})
}

// Restore implements Store: every item in one write transaction, into a
// store that holds nothing (ErrExists otherwise, with nothing written).
func (b *Bolt) Restore(ctx context.Context, read func(put func(Item) error) error) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if k, _ := tx.Bucket(name).Cursor().First(); k != nil {
				return fmt.Errorf("restore: the store is not empty (it holds %s): %w", name, ErrExists)
			}
		}
		var lastAudit uint64
		err := read(func(it Item) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if a, ok := it.Value.(AuditEntry); ok && it.Kind == KindAudit {
				lastAudit = max(lastAudit, a.Seq)
			}
			return restoreItem(tx, it)
		})
		if err != nil {
			return err
		}
		// The next entry is numbered above the restored ones, as it
		// would have been in the store the snapshot was taken from.
		return tx.Bucket(bucketAudit).SetSequence(lastAudit)
	})
}

// restoreItem writes one item where the store keeps its kind.
func restoreItem(tx *bolt.Tx, it Item) error {
	switch v := it.Value.(type) {
	case Domain:
		return put(tx.Bucket(bucketDomain), keyDomain, v)
	case Group:
		return putKeyed(tx, bucketGroups, v.Name, v)
	case Host:
		return putKeyed(tx, bucketHosts, v.Name, v)
	case Instance:
		return putKeyed(tx, bucketInstances, v.Name, v)
	case InstanceState:
		return putKeyed(tx, bucketStates, v.Instance, v)
	case JoinToken:
		return putKeyed(tx, bucketJoinTokens, v.ID, v)
	case NodeCert:
		return putKeyed(tx, bucketNodeCerts, v.Serial, v)
	case Draft:
		return putKeyed(tx, bucketDrafts, v.Group, v)
	case Deployment:
		if v.Group == "" || v.Number == 0 {
			return fmt.Errorf("restore: deployment without group or number: %w", ErrInvalid)
		}
		bk, err := tx.Bucket(bucketDeployments).CreateBucketIfNotExists([]byte(v.Group))
		if err != nil {
			return err
		}
		return put(bk, numKey(v.Number), v)
	case User:
		return putKeyed(tx, bucketUsers, v.Name, v)
	case Role:
		return putKeyed(tx, bucketRoles, v.Name, v)
	case RoleBinding:
		return putKeyed(tx, bucketBindings, v.ID, v)
	case Token:
		return putKeyed(tx, bucketTokens, v.ID, v)
	case AuditEntry:
		if v.Seq == 0 {
			return fmt.Errorf("restore: audit entry without a sequence number: %w", ErrInvalid)
		}
		return put(tx.Bucket(bucketAudit), numKey(v.Seq), v)
	case Environment:
		return putKeyed(tx, bucketEnvironments, v.Name, v)
	case Secret:
		if err := need("environment", v.Environment); err != nil {
			return err
		}
		bk, err := tx.Bucket(bucketSecrets).CreateBucketIfNotExists([]byte(v.Environment))
		if err != nil {
			return err
		}
		return putIn(bk, v.Name, v)
	case TrustedDomain:
		return putKeyed(tx, bucketTrusted, v.Name, v)
	}
	return itemTypeError(it)
}

func putKeyed(tx *bolt.Tx, bucket []byte, key string, v any) error {
	return putIn(tx.Bucket(bucket), key, v)
}

// putIn writes v under key in bk; it refuses an empty key, which no store method would have
// written.
func putIn(bk *bolt.Bucket, key string, v any) error {
	if key == "" {
		return fmt.Errorf("restore: %T without a name: %w", v, ErrInvalid)
	}
	return put(bk, []byte(key), v)
}

// NextDeploymentNumber is the number of a group's next deployment: above
// its last stored one, and above every number an instance of the group
// reports running (itself or as its gossip peers see it). After a restore
// from an older backup, the gateways may run deployments the store no
// longer holds; the next one must be newer than those, or they would
// refuse it as old.
func NextDeploymentNumber(last uint64, states []InstanceState) uint64 {
	n := last
	for _, st := range states {
		n = max(n, st.AppliedDeployment)
		for _, p := range st.Peers {
			n = max(n, p.Deployment)
		}
	}
	return n + 1
}

// groupStates returns the observed states of the group's instances.
func groupStates(tx *bolt.Tx, group string) ([]InstanceState, error) {
	var out []InstanceState
	states := tx.Bucket(bucketStates)
	err := tx.Bucket(bucketInstances).ForEach(func(k, v []byte) error {
		var in Instance
		if err := json.Unmarshal(v, &in); err != nil {
			return fmt.Errorf("decode instance %q: %w", k, err)
		}
		if in.Group != group {
			return nil
		}
		var st InstanceState
		ok, err := get(states, in.Name, &st)
		if ok && err == nil {
			out = append(out, st)
		}
		return err
	})
	return out, err
}

// lastNumber is the number of the last deployment in bk, 0 for none.
func lastNumber(bk *bolt.Bucket) uint64 {
	if k, _ := bk.Cursor().Last(); k != nil {
		return binary.BigEndian.Uint64(k)
	}
	return 0
}
