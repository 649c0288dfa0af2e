package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/boltfile"
)

func record(content string) Record {
	sum := sha256.Sum256([]byte(content))
	return Record{
		Checksum:  "sha256:" + hex.EncodeToString(sum[:]),
		AppliedAt: time.Unix(1700000000, 0).UTC(),
		Origin:    "test",
		Config:    []byte(content),
	}
}

func stores(t *testing.T) map[string]Store {
	b, err := Open(filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]Store{"bolt": b, "memory": &Memory{}}
}

func TestSaveListPrune(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for i := 1; i <= 15; i++ {
				r, err := s.Save(record(`{"n":` + strconv.Itoa(i) + `}`))
				if err != nil {
					t.Fatal(err)
				}
				if r.Seq != uint64(i) {
					t.Fatalf("save %d: seq %d", i, r.Seq)
				}
			}
			list, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != Keep {
				t.Fatalf("kept %d records, want %d", len(list), Keep)
			}
			for i, r := range list {
				if want := uint64(15 - i); r.Seq != want {
					t.Errorf("list[%d].Seq = %d, want %d (newest first)", i, r.Seq, want)
				}
				if err := r.Verify(); err != nil {
					t.Errorf("list[%d]: %v", i, err)
				}
			}
		})
	}
}

func TestVerifyDetectsDamage(t *testing.T) {
	r := record(`{"a":1}`)
	r.Config = []byte(`{"a":2}`)
	if err := r.Verify(); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Verify() = %v, want checksum mismatch", err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(record(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	list, _ := b.List()
	if len(list) != 1 || string(list[0].Config) != `{"x":1}` {
		t.Fatalf("after reopen: %+v", list)
	}
	if r, _ := b.Save(record(`{"x":2}`)); r.Seq != 2 {
		t.Fatalf("sequence restarted after reopen: %d", r.Seq)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucketIfNotExists(boltfile.MetaBucket)
		return m.Put(boltfile.SchemaKey, []byte(strconv.Itoa(SchemaVersion+1)))
	})
	db.Close()
	if _, _, err := OpenOrRecover(path, hclog.NewNullLogger()); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("OpenOrRecover = %v, want ErrNewerSchema", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("newer store must be left in place: %v", err)
	}
}

func TestCorruptFileSetAside(t *testing.T) {
	tests := map[string][]byte{
		"garbage":   []byte(strings.Repeat("not a bolt file ", 1000)),
		"truncated": nil, // filled below from a real store cut short
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	b, err := Open(real)
	if err != nil {
		t.Fatal(err)
	}
	b.Save(record(`{"x":1}`))
	b.Close()
	full, _ := os.ReadFile(real)
	tests["truncated"] = full[:len(full)/3]
	damaged := append([]byte(nil), full...)
	for i := 2 * os.Getpagesize(); i < len(damaged); i++ {
		damaged[i] = 0xA5
	}
	tests["damaged pages"] = damaged

	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, aside, err := OpenOrRecover(path, hclog.NewNullLogger())
			if err != nil {
				t.Fatalf("OpenOrRecover: %v", err)
			}
			defer s.Close()
			if aside == "" {
				t.Fatal("damaged store was not reported as set aside")
			}
			kept, err := os.ReadFile(aside)
			if err != nil || string(kept) != string(content) {
				t.Fatalf("set-aside file does not hold the damaged content: %v", err)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Fatalf("new store not empty: %d records", len(list))
			}
		})
	}
}

// The deployment number survives a reopen, and a record written before the
// field existed reads as 0 (no deployment): the field needs no new schema.
func TestDeploymentNumberKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old := record(`{"x":1}`)
	v, _ := json.Marshal(map[string]any{"seq": 1, "checksum": old.Checksum, "applied_at": old.AppliedAt, "origin": "file:x", "config": old.Config})
	if err := b.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConfigs)
		if _, err := c.NextSequence(); err != nil {
			return err
		}
		return c.Put(seqKey(1), v)
	}); err != nil {
		t.Fatal(err)
	}
	r := record(`{"x":2}`)
	r.Deployment = 7
	if _, err := b.Save(r); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	list, err := b.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d records, %v", len(list), err)
	}
	if list[0].Deployment != 7 || list[1].Deployment != 0 {
		t.Fatalf("deployments %d, %d; want 7, 0", list[0].Deployment, list[1].Deployment)
	}
}
