package state

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The traffic spool (schema 2): the node manager's batches of traffic
// increments wait here until the admin node acknowledges them, and the
// gateways' readings they were computed up to are kept with them, so that
// a node manager that restarts resumes its sequence and neither loses nor
// counts twice what its gateways served.
var (
	// bucketTraffic holds keySeq (the last batch number given, 8 bytes
	// big-endian), keyDropped (batches dropped since the node joined, the
	// same) and keyEnd (the End of the last batch, RFC 3339).
	bucketTraffic = []byte("traffic")
	// bucketSpool maps a batch's Seq (8 bytes big-endian, so that keys
	// sort in order) to its JSON traffic.Batch.
	bucketSpool = []byte("traffic-spool")
	// bucketReadings maps an instance to its last reading (JSON
	// traffic.Snapshot) whose increments are in a spooled or sent batch.
	bucketReadings = []byte("traffic-readings")
	keySeq         = []byte("seq")
	keyDropped     = []byte("dropped")
	keyEnd         = []byte("end")
)

// SpoolLimits bound the spool; past a bound the oldest batches are
// dropped. A zero field is no bound.
type SpoolLimits struct {
	// MaxBytes bounds the batches' size (their JSON). The newest batch is
	// kept even when it alone is larger.
	MaxBytes int64
	// MaxAge bounds how long ago a batch's End may be.
	MaxAge time.Duration
}

// Spool is the state of the traffic spool.
type Spool struct {
	// Batches and Bytes are what waits to be sent.
	Batches int
	Bytes   int64
	// Dropped counts the batches dropped since the node joined: past the
	// limits, or refused by the admin node.
	Dropped uint64
	// LastSeq is the number of the last batch spooled, LastEnd its End
	// (zero before the first).
	LastSeq uint64
	LastEnd time.Time
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func getUint(bk *bolt.Bucket, key []byte) uint64 {
	if v := bk.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(bk *bolt.Bucket, key []byte, n uint64) error {
	return bk.Put(key, binary.BigEndian.AppendUint64(nil, n))
}

// SpoolBatches numbers the batches of one collection with the next
// sequence numbers, stamps them with the count of dropped batches, and
// spools them together with the readings they were computed up to, in one
// transaction: the batches and their readings are kept all or none. It
// then drops the oldest batches past lim (the age measured at the last
// batch's End) and returns the spool's state and how many batches it
// dropped.
func (s *Store) SpoolBatches(bs []*traffic.Batch, readings []*traffic.Snapshot, lim SpoolLimits) (Spool, int, error) {
	var (
		sp      Spool
		dropped int
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketTraffic)
		seq := getUint(meta, keySeq)
		for _, b := range bs {
			seq++
			b.Seq = seq
			b.Dropped = getUint(meta, keyDropped)
			data, err := json.Marshal(b)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketSpool).Put(seqKey(b.Seq), data); err != nil {
				return err
			}
			end, err := b.End.MarshalText()
			if err != nil {
				return err
			}
			if err := meta.Put(keyEnd, end); err != nil {
				return err
			}
		}
		if err := putUint(meta, keySeq, seq); err != nil {
			return err
		}
		rd := tx.Bucket(bucketReadings)
		for _, r := range readings {
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := rd.Put([]byte(r.Instance), data); err != nil {
				return err
			}
		}
		var err error
		if len(bs) > 0 {
			if dropped, err = prune(tx, lim, bs[len(bs)-1].End); err != nil {
				return err
			}
		}
		sp, err = spoolOf(tx)
		return err
	})
	if err != nil {
		return Spool{}, 0, fmt.Errorf("spool traffic batches: %w", err)
	}
	return sp, dropped, nil
}

// PruneSpool drops the oldest batches past lim at now, as SpoolBatches does:
// batches age while nothing new is spooled too.
func (s *Store) PruneSpool(lim SpoolLimits, now time.Time) (Spool, int, error) {
	var (
		sp      Spool
		dropped int
	)
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if dropped, err = prune(tx, lim, now); err != nil {
			return err
		}
		sp, err = spoolOf(tx)
		return err
	})
	if err != nil {
		return Spool{}, 0, fmt.Errorf("prune traffic spool: %w", err)
	}
	return sp, dropped, nil
}

// prune drops the oldest batches: those whose End is more than lim.MaxAge
// before now, then as many as it takes to bring the spool within
// lim.MaxBytes, the newest excepted. It counts them in keyDropped.
func prune(tx *bolt.Tx, lim SpoolLimits, now time.Time) (int, error) {
	spool := tx.Bucket(bucketSpool)
	type entry struct {
		key  []byte
		size int64
	}
	var (
		entries []entry
		total   int64
	)
	err := spool.ForEach(func(k, v []byte) error {
		size := int64(len(k) + len(v))
		entries = append(entries, entry{append([]byte(nil), k...), size})
		total += size
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0 // how many to drop, from the oldest
	if lim.MaxAge > 0 {
		// Batches are spooled in the order of their End: the first young
		// one ends the walk.
		for ; n < len(entries); n++ {
			var b struct {
				End time.Time `json:"end"`
			}
			if err := json.Unmarshal(spool.Get(entries[n].key), &b); err != nil {
				return 0, fmt.Errorf("decode spooled batch %d: %w", binary.BigEndian.Uint64(entries[n].key), err)
			}
			if now.Sub(b.End) <= lim.MaxAge {
				break
			}
			total -= entries[n].size
		}
	}
	if lim.MaxBytes > 0 {
		for ; n < len(entries)-1 && total > lim.MaxBytes; n++ {
			total -= entries[n].size
		}
	}
	if n == 0 {
		return 0, nil
	}
	for _, e := range entries[:n] {
		if err := spool.Delete(e.key); err != nil {
			return 0, err
		}
	}
	meta := tx.Bucket(bucketTraffic)
	return n, putUint(meta, keyDropped, getUint(meta, keyDropped)+uint64(n))
}

func spoolOf(tx *bolt.Tx) (Spool, error) {
	meta := tx.Bucket(bucketTraffic)
	sp := Spool{Dropped: getUint(meta, keyDropped), LastSeq: getUint(meta, keySeq)}
	if v := meta.Get(keyEnd); v != nil {
		if err := sp.LastEnd.UnmarshalText(v); err != nil {
			return Spool{}, fmt.Errorf("decode the end of the last batch: %w", err)
		}
	}
	err := tx.Bucket(bucketSpool).ForEach(func(k, v []byte) error {
		sp.Batches++
		sp.Bytes += int64(len(k) + len(v))
		return nil
	})
	return sp, err
}

// SpoolState returns the spool's state.
func (s *Store) SpoolState() (Spool, error) {
	var sp Spool
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		sp, err = spoolOf(tx)
		return err
	})
	return sp, err
}

// OldestBatch returns the spooled batch to send next, the one with the
// lowest Seq, with Dropped brought up to date; nil when the spool is
// empty.
func (s *Store) OldestBatch() (*traffic.Batch, error) {
	var b *traffic.Batch
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketSpool).Cursor().First()
		if k == nil {
			return nil
		}
		b = new(traffic.Batch)
		if err := json.Unmarshal(v, b); err != nil {
			return fmt.Errorf("decode spooled batch %d: %w", binary.BigEndian.Uint64(k), err)
		}
		b.Dropped = getUint(tx.Bucket(bucketTraffic), keyDropped)
		return nil
	})
	return b, err
}

// AckBatches deletes the batches up to seq: the admin node has stored
// them.
func (s *Store) AckBatches(seq uint64) (Spool, error) {
	var sp Spool
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := deleteUpTo(tx.Bucket(bucketSpool), seq); err != nil {
			return err
		}
		var err error
		sp, err = spoolOf(tx)
		return err
	})
	if err != nil {
		return Spool{}, fmt.Errorf("acknowledge traffic batches up to %d: %w", seq, err)
	}
	return sp, nil
}

func deleteUpTo(spool *bolt.Bucket, seq uint64) error {
	var keys [][]byte
	c := spool.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := spool.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DropBatch deletes batch seq without it being stored, and counts it
// dropped: the admin node refused it, and sending it again would not
// change its answer.
func (s *Store) DropBatch(seq uint64) (Spool, error) {
	var sp Spool
	err := s.db.Update(func(tx *bolt.Tx) error {
		spool := tx.Bucket(bucketSpool)
		if spool.Get(seqKey(seq)) != nil {
			if err := spool.Delete(seqKey(seq)); err != nil {
				return err
			}
			meta := tx.Bucket(bucketTraffic)
			if err := putUint(meta, keyDropped, getUint(meta, keyDropped)+1); err != nil {
				return err
			}
		}
		var err error
		sp, err = spoolOf(tx)
		return err
	})
	if err != nil {
		return Spool{}, fmt.Errorf("drop traffic batch %d: %w", seq, err)
	}
	return sp, nil
}

// TrafficReadings returns each instance's last reading whose increments
// are in a spooled or sent batch.
func (s *Store) TrafficReadings() (map[string]*traffic.Snapshot, error) {
	out := map[string]*traffic.Snapshot{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReadings).ForEach(func(k, v []byte) error {
			var snap traffic.Snapshot
			if err := json.Unmarshal(v, &snap); err != nil {
				return fmt.Errorf("decode the last traffic reading of %s: %w", k, err)
			}
			out[string(k)] = &snap
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ForgetReadings deletes the readings of instances the node no longer
// runs.
func (s *Store) ForgetReadings(instances ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketReadings)
		for _, name := range instances {
			if err := bk.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
}
