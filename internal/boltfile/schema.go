package boltfile

import (
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// ErrNewerSchema is returned for a file written by a newer gatehouse: it is
// left untouched rather than guessed at.
var ErrNewerSchema = errors.New("file was written by a newer version of gatehouse")

// MetaBucket holds, at SchemaKey, the schema version of a store's file.
var (
	MetaBucket = []byte("meta")
	SchemaKey  = []byte("schema")
)

// Upgrade brings a store's file to version in one transaction: it reads
// the version recorded in bucket "meta", key "schema" (0 for a new file),
// refuses a newer one, lets steps do what the versions in between need
// (from is the version read), and records version.
func Upgrade(db *bolt.DB, version int, steps func(tx *bolt.Tx, from int) error) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(MetaBucket)
		if err != nil {
			return err
		}
		from := 0
		if v := meta.Get(SchemaKey); v != nil {
			if from, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("bad schema version %q", v)
			}
		}
		if from > version {
			return fmt.Errorf("%w (schema %d, this binary knows %d)", ErrNewerSchema, from, version)
		}
		if err := steps(tx, from); err != nil {
			return err
		}
		return meta.Put(SchemaKey, []byte(strconv.Itoa(version)))
	})
}

// CreateBuckets creates the buckets that do not exist yet.
func CreateBuckets(tx *bolt.Tx, names ...[]byte) error {
	for _, name := range names {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}
