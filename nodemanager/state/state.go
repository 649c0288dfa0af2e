package state

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/boltfile"
)

// SchemaVersion is the layout this binary writes. Version 1: bucket "meta"
// holds "schema"; "deployments" maps a group to its JSON deploy.Deployment;
// "desired" holds "instances" (JSON []apitypes.AgentInstance) and "index"
// (8 bytes big-endian); "secrets" maps an instance to its secret. Version
// 2 adds the traffic spool: buckets "traffic", "traffic-spool" and
// "traffic-readings" (traffic.go). "desired" may also hold "publish-keys"
// (JSON [][]byte), which older binaries ignore: no new version.
const SchemaVersion = 2

var (
	bucketDeployments = []byte("deployments")
	bucketDesired     = []byte("desired")
	bucketSecrets     = []byte("secrets")
	keyInstances      = []byte("instances")
	keyIndex          = []byte("index")
	keyPublishKeys    = []byte("publish-keys")
)

// ErrNewerSchema is returned for a file written by a newer gatehouse.
var ErrNewerSchema = boltfile.ErrNewerSchema

// Store is the node manager's state. Every method is one transaction.
type Store struct {
	db *bolt.DB
}

// Open opens (or creates) the state file at path and upgrades its schema.
func Open(path string) (*Store, error) {
	db, err := boltfile.Open(path)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open node state %s: locked by another process (another node manager?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open node state %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.upgrade(); err != nil {
		db.Close()
		return nil, fmt.Errorf("upgrade node state %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) upgrade() error {
	return boltfile.Upgrade(s.db, SchemaVersion, func(tx *bolt.Tx, from int) error {
		// Version 0 is a new file, which takes every step.
		if from < 1 {
			if err := boltfile.CreateBuckets(tx, bucketDeployments, bucketDesired, bucketSecrets); err != nil {
				return err
			}
		}
		if from < 2 {
			return boltfile.CreateBuckets(tx, bucketTraffic, bucketSpool, bucketReadings)
		}
		return nil
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// PutDeployment keeps d as its group's deployment, and reports whether it
// differs from the one stored. The admin node's current deployment always
// wins, even with a lower or equal number: what the store holds is only a
// copy, and one damaged or tampered with must not outlast the next answer
// of the admin node. (Rolling gateways back to an older deployment is
// what their own check refuses.)
func (s *Store) PutDeployment(d *deploy.Deployment) (bool, error) {
	stored := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDeployments)
		if cur, err := decodeDeployment(bk.Get([]byte(d.Group))); err != nil {
			return err
		} else if cur != nil && cur.Number == d.Number && cur.Checksum == d.Checksum && bytes.Equal(cur.Signature, d.Signature) {
			return nil
		}
		data, err := json.Marshal(d)
		if err != nil {
			return err
		}
		stored = true
		return bk.Put([]byte(d.Group), data)
	})
	if err != nil {
		return false, fmt.Errorf("store deployment %d of group %q: %w", d.Number, d.Group, err)
	}
	return stored, nil
}

func decodeDeployment(data []byte) (*deploy.Deployment, error) {
	if data == nil {
		return nil, nil
	}
	var d deploy.Deployment
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode stored deployment: %w", err)
	}
	return &d, nil
}

// Deployment returns the group's deployment, nil when it has none.
func (s *Store) Deployment(group string) (*deploy.Deployment, error) {
	var d *deploy.Deployment
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		d, err = decodeDeployment(tx.Bucket(bucketDeployments).Get([]byte(group)))
		return err
	})
	return d, err
}

// PutInstances replaces the desired instances and the index they came
// with, and forgets the deployments of groups no instance needs any more.
func (s *Store) PutInstances(index uint64, ins []apitypes.AgentInstance) error {
	data, err := json.Marshal(ins)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDesired)
		if err := bk.Put(keyInstances, data); err != nil {
			return err
		}
		idx := make([]byte, 8)
		binary.BigEndian.PutUint64(idx, index)
		if err := bk.Put(keyIndex, idx); err != nil {
			return err
		}
		groups := map[string]bool{}
		for _, in := range ins {
			groups[in.Group] = true
		}
		deps := tx.Bucket(bucketDeployments)
		var stale [][]byte
		err := deps.ForEach(func(k, _ []byte) error {
			if !groups[string(k)] {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := deps.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutPublishKeys keeps the domain's publish keys, which open the
// deployments published to object storage (the fallback), the one
// sealing first. They are kept as the gossip keys are: in this file,
// which only the node manager's user reads. It writes only when they
// changed.
func (s *Store) PutPublishKeys(keys [][]byte) error {
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if cur, err := s.publishKeysJSON(); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDesired).Put(keyPublishKeys, data)
	})
	if err != nil {
		return fmt.Errorf("store publish keys: %w", err)
	}
	return nil
}

func (s *Store) publishKeysJSON() ([]byte, error) {
	var data []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		data = bytes.Clone(tx.Bucket(bucketDesired).Get(keyPublishKeys))
		return nil
	})
	return data, err
}

// PublishKeys returns the publish keys kept last, none before an admin
// node sent any.
func (s *Store) PublishKeys() ([][]byte, error) {
	data, err := s.publishKeysJSON()
	if err != nil || data == nil {
		return nil, err
	}
	var keys [][]byte
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("read publish keys: %w", err)
	}
	return keys, nil
}

// Instances returns the desired instances and their index (0 and none
// before the first answer of the admin node).
func (s *Store) Instances() (uint64, []apitypes.AgentInstance, error) {
	var index uint64
	ins := []apitypes.AgentInstance{}
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDesired)
		if v := bk.Get(keyIndex); len(v) == 8 {
			index = binary.BigEndian.Uint64(v)
		}
		if v := bk.Get(keyInstances); v != nil {
			return json.Unmarshal(v, &ins)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read desired instances: %w", err)
	}
	return index, ins, nil
}

// Secret returns the instance's secret, making one the first time. It is
// kept, so that a gateway still running after a node manager restart
// still authenticates.
func (s *Store) Secret(instance string) (string, error) {
	var secret string
	// Read first: it is asked at every gateway request, and a write (an
	// fsync) each time would queue the gateways' reports behind each other.
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSecrets).Get([]byte(instance)); v != nil {
			secret = string(v)
		}
		return nil
	})
	if err != nil || secret != "" {
		return secret, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSecrets)
		if v := bk.Get([]byte(instance)); v != nil {
			secret = string(v)
			return nil
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		return bk.Put([]byte(instance), []byte(secret))
	})
	if err != nil {
		return "", fmt.Errorf("secret of instance %q: %w", instance, err)
	}
	return secret, nil
}

// Secrets returns every instance's secret.
func (s *Store) Secrets() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, err
}

// DeleteSecret forgets a removed instance's secret.
func (s *Store) DeleteSecret(instance string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).Delete([]byte(instance))
	})
}
