package boltfile

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestReadUsage compares ReadUsage with what bbolt itself reports of a
// file with free pages: a small freelist, and one of more than 0xFFFF
// pages, whose count is stored apart.
func TestReadUsage(t *testing.T) {
	for _, keys := range []int{20, 10000} {
		t.Run(fmt.Sprint(keys), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			// Small pages, so that 40 MB make a large freelist.
			db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 512})
			if err != nil {
				t.Fatal(err)
			}
			v := []byte(strings.Repeat("v", 4000))
			update := func(del bool) {
				err := db.Update(func(tx *bolt.Tx) error {
					b, _ := tx.CreateBucketIfNotExists([]byte("b"))
					for i := range keys {
						k := fmt.Appendf(nil, "%08d", i)
						if del && i%8 != 0 {
							if err := b.Delete(k); err != nil {
								return err
							}
						} else if !del {
							if err := b.Put(k, v); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			update(false)
			update(true)
			db.Close()

			u, err := ReadUsage(path)
			if err != nil {
				t.Fatal(err)
			}
			if db, err = bolt.Open(path, 0o600, nil); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			st := db.Stats()
			var size int64
			db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
			free := int64(st.FreePageN+st.PendingPageN) * 512
			if u.Size != size || u.Free != free || u.Free == 0 || (keys > 1000 && free/512 <= 0xFFFF) {
				t.Errorf("ReadUsage = %+v; bbolt: size %d, %d free and %d pending pages of 512 bytes", u, size, st.FreePageN, st.PendingPageN)
			}
		})
	}
}
