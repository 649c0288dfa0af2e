package state

import (
	"encoding/binary"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// batch is a batch ending at t0 + i intervals, with one series whose
// consumer name pads it to about size bytes.
func batch(i int, size int) *traffic.Batch {
	pad := make([]byte, size)
	for j := range pad {
		pad[j] = 'x'
	}
	return &traffic.Batch{Node: "h1", Start: t0.Add(time.Duration(i-1) * 10 * time.Second), End: t0.Add(time.Duration(i) * 10 * time.Second),
		Series: []traffic.DomainSeries{{Group: "g", Instance: "g-1", Series: traffic.Series{
			Key: traffic.Key{Service: "s", Route: "r", Consumer: string(pad), Class: traffic.Class2xx}, Counts: traffic.Counts{Requests: uint64(i)}}}}}
}

func reading(instance, boot string, requests uint64) *traffic.Snapshot {
	return &traffic.Snapshot{Group: "g", Instance: instance, Boot: boot, At: t0,
		Series: []traffic.Series{{Key: traffic.Key{Service: "s", Route: "r", Class: traffic.Class2xx}, Counts: traffic.Counts{Requests: requests}}}}
}

func TestSpoolWriteAckAndRestart(t *testing.T) {
	s, path := open(t)
	if b, err := s.OldestBatch(); err != nil || b != nil {
		t.Fatalf("empty spool: %+v %v", b, err)
	}
	for i := 1; i <= 3; i++ {
		b := batch(i, 10)
		sp, dropped, err := s.SpoolBatches([]*traffic.Batch{b}, []*traffic.Snapshot{reading("g-1", "b1", uint64(i))}, SpoolLimits{})
		if err != nil || dropped != 0 {
			t.Fatal(err, dropped)
		}
		if b.Seq != uint64(i) || sp.LastSeq != uint64(i) || sp.Batches != i || !sp.LastEnd.Equal(b.End) {
			t.Fatalf("batch %d: seq %d, spool %+v", i, b.Seq, sp)
		}
	}
	b, err := s.OldestBatch()
	if err != nil || b == nil || b.Seq != 1 || b.Node != "h1" || b.Series[0].Requests != 1 {
		t.Fatalf("oldest %+v %v", b, err)
	}
	sp, err := s.AckBatches(2)
	if err != nil || sp.Batches != 1 {
		t.Fatalf("after ack of 2: %+v %v", sp, err)
	}
	if b, _ := s.OldestBatch(); b == nil || b.Seq != 3 {
		t.Fatalf("oldest after ack %+v", b)
	}

	// A restarted node manager goes on from where it was: the next number,
	// the batches not acknowledged, the readings they were computed up to.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	sp, err = s2.SpoolState()
	if err != nil || sp.Batches != 1 || sp.LastSeq != 3 || !sp.LastEnd.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("after reopen %+v %v", sp, err)
	}
	readings, err := s2.TrafficReadings()
	if err != nil || len(readings) != 1 || readings["g-1"].Series[0].Requests != 3 || readings["g-1"].Boot != "b1" {
		t.Fatalf("readings after reopen %+v %v", readings, err)
	}
	// A collection too large for one batch is spooled as several, numbered
	// in a row.
	b4, b5 := batch(4, 10), batch(4, 10)
	if sp, _, err := s2.SpoolBatches([]*traffic.Batch{b4, b5}, nil, SpoolLimits{}); err != nil || b4.Seq != 4 || b5.Seq != 5 || sp.LastSeq != 5 || sp.Batches != 3 {
		t.Fatalf("next batches after reopen: seqs %d %d, %+v, %v", b4.Seq, b5.Seq, sp, err)
	}
	must(t, s2.ForgetReadings("g-1"))
	if readings, _ := s2.TrafficReadings(); len(readings) != 0 {
		t.Fatalf("readings after forget %+v", readings)
	}
	if sp, err := s2.AckBatches(10); err != nil || sp.Batches != 0 || sp.Bytes != 0 {
		t.Fatalf("after acknowledging everything %+v %v", sp, err)
	}
}

func TestSpoolBounds(t *testing.T) {
	s, _ := open(t)
	// Ten batches of about 1 KiB within 4 KiB: the oldest go, the count
	// of dropped batches grows and is carried by the batches sent next.
	lim := SpoolLimits{MaxBytes: 4 << 10, MaxAge: time.Hour}
	total := 0
	var sp Spool
	for i := 1; i <= 10; i++ {
		var dropped int
		var err error
		sp, dropped, err = s.SpoolBatches([]*traffic.Batch{batch(i, 1000)}, nil, lim)
		if err != nil {
			t.Fatal(err)
		}
		total += dropped
		if sp.Bytes > lim.MaxBytes {
			t.Fatalf("batch %d: spool of %d bytes past its bound", i, sp.Bytes)
		}
	}
	if sp.Batches+total != 10 || uint64(total) != sp.Dropped || sp.Batches < 2 {
		t.Fatalf("spool %+v, %d dropped", sp, total)
	}
	b, err := s.OldestBatch()
	if err != nil || b.Seq != uint64(total+1) || b.Dropped != sp.Dropped {
		t.Fatalf("oldest %d (dropped %d), want %d (dropped %d): %v", b.Seq, b.Dropped, total+1, sp.Dropped, err)
	}

	// The newest batch stays even when it alone is past the size bound.
	big := batch(11, 8000)
	kept := sp.Batches
	sp, dropped, err := s.SpoolBatches([]*traffic.Batch{big}, nil, lim)
	total += dropped
	if err != nil || sp.Batches != 1 || dropped != kept {
		t.Fatalf("after a batch larger than the bound: %+v %v", sp, err)
	}
	if b, _ := s.OldestBatch(); b.Seq != big.Seq {
		t.Fatalf("oldest %d, want the big batch %d", b.Seq, big.Seq)
	}

	// Batches age while nothing new comes.
	sp, dropped, err = s.PruneSpool(lim, big.End.Add(lim.MaxAge-time.Second))
	if err != nil || dropped != 0 || sp.Batches != 1 {
		t.Fatalf("young batch pruned: %+v %d %v", sp, dropped, err)
	}
	sp, dropped, err = s.PruneSpool(lim, big.End.Add(lim.MaxAge+time.Second))
	if err != nil || dropped != 1 || sp.Batches != 0 || sp.Dropped != uint64(total+1) {
		t.Fatalf("old batch kept: %+v %d %v", sp, dropped, err)
	}

	// A batch the admin node refuses is dropped and counted.
	refused := batch(12, 10)
	if _, _, err := s.SpoolBatches([]*traffic.Batch{refused}, nil, lim); err != nil {
		t.Fatal(err)
	}
	sp, err = s.DropBatch(refused.Seq)
	if err != nil || sp.Batches != 0 || sp.Dropped != uint64(total+2) {
		t.Fatalf("after a refused batch: %+v %v", sp, err)
	}
	// Numbers go on without a gap for the batches that exist.
	next := batch(13, 10)
	if _, _, err := s.SpoolBatches([]*traffic.Batch{next}, nil, lim); err != nil || next.Seq != refused.Seq+1 || next.Dropped != uint64(total+2) {
		t.Fatalf("next batch: seq %d dropped %d, %v", next.Seq, next.Dropped, err)
	}
}

// A file of schema 1 (before the spool) is upgraded in place and keeps
// what it held.
func TestUpgradeFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(boltfile.MetaBucket)
		if err != nil {
			return err
		}
		if err := meta.Put(boltfile.SchemaKey, []byte("1")); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketDeployments, bucketDesired, bucketSecrets} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		desired := tx.Bucket(bucketDesired)
		if err := desired.Put(keyInstances, []byte(`[{"name":"a","group":"edge"}]`)); err != nil {
			return err
		}
		return desired.Put(keyIndex, binary.BigEndian.AppendUint64(nil, 9))
	}))
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if idx, ins, err := s.Instances(); err != nil || idx != 9 || len(ins) != 1 || ins[0].Name != "a" {
		t.Fatalf("instances after upgrade: %d %+v %v", idx, ins, err)
	}
	b := batch(1, 10)
	if _, _, err := s.SpoolBatches([]*traffic.Batch{b}, nil, SpoolLimits{}); err != nil || b.Seq != 1 {
		t.Fatalf("spool after upgrade: %d %v", b.Seq, err)
	}
	must(t, s.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(boltfile.MetaBucket).Get(boltfile.SchemaKey)); v != strconv.Itoa(SchemaVersion) {
			t.Errorf("schema %s after upgrade, want %d", v, SchemaVersion)
		}
		return nil
	}))
}
