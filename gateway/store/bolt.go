package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/internal/boltfile"
)

// SchemaVersion is the layout this binary writes. Version 1: bucket "meta"
// holds "schema"; bucket "configs" maps an 8-byte big-endian sequence
// number to a JSON Record.
const SchemaVersion = 1

var (
	bucketConfigs = []byte("configs")
)

// Bolt is the bbolt implementation of Store.
type Bolt struct {
	db *bolt.DB
}

var _ Store = (*Bolt)(nil)

// Open opens (or creates) the store at path, checks its consistency and
// upgrades its schema. A file another process holds is an error after a
// short wait; a damaged file is an error too: see OpenOrRecover.
func Open(path string) (*Bolt, error) {
	db, err := boltfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b := &Bolt{db: db}
	if err := b.checkRecords(); err != nil {
		db.Close()
		return nil, fmt.Errorf("check store %s: %w", path, err)
	}
	if err := b.upgrade(); err != nil {
		db.Close()
		return nil, fmt.Errorf("upgrade store %s: %w", path, err)
	}
	return b, nil
}

// OpenOrRecover opens the store at path. A damaged file is renamed aside
// (never silently emptied, so that it can be inspected or restored) and a
// new one is created; the name it was moved to is returned. A file locked
// by another process or written by a newer version is an error.
func OpenOrRecover(path string, logger hclog.Logger) (*Bolt, string, error) {
	b, err := Open(path)
	if err == nil {
		return b, "", nil
	}
	if errors.Is(err, bolterrors.ErrTimeout) || errors.Is(err, ErrNewerSchema) || errors.Is(err, os.ErrPermission) {
		return nil, "", err
	}
	aside := path + ".corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
	logger.Error("configuration store is damaged; setting it aside", "path", path, "moved_to", aside, "error", err)
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, "", fmt.Errorf("set aside damaged store %s: %w (after: %v)", path, rerr, err)
	}
	b, err = Open(path)
	if err != nil {
		return nil, aside, err
	}
	return b, aside, nil
}

// checkRecords refuses a file whose record keys are not sequence numbers:
// its pages are sound (boltfile.Open checked them) but it is not ours.
func (b *Bolt) checkRecords() error {
	return b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConfigs)
		if c == nil {
			return nil
		}
		return c.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("bad record key %x", k)
			}
			return nil
		})
	})
}

func (b *Bolt) upgrade() error {
	return boltfile.Upgrade(b.db, SchemaVersion, func(tx *bolt.Tx, _ int) error {
		// Version 0 is a new file; later versions add their steps here.
		return boltfile.CreateBuckets(tx, [][]byte{bucketConfigs}...)
	})
}

// Save implements Store.
func (b *Bolt) Save(r Record) (Record, error) {
	err := b.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConfigs)
		seq, err := c.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := c.Put(seqKey(seq), v); err != nil {
			return err
		}
		return prune(c)
	})
	if err != nil {
		return Record{}, fmt.Errorf("save configuration %s: %w", r.Checksum, err)
	}
	return r, nil
}

// prune deletes the oldest records beyond Keep.
func prune(c *bolt.Bucket) error {
	var keys [][]byte
	cur := c.Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	if len(keys) <= Keep {
		return nil
	}
	old := keys[:len(keys)-Keep]
	for _, k := range old {
		if err := c.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// List implements Store. A record that cannot be decoded is skipped (the
// caller takes the newest valid one); Verify tells whether its content is
// intact.
func (b *Bolt) List() ([]Record, error) {
	var out []Record
	err := b.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketConfigs).Cursor()
		for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
			var r Record
			if json.Unmarshal(v, &r) != nil {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list configurations: %w", err)
	}
	return out, nil
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}
