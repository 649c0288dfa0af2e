package boltfile

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Open opens the bbolt file at path for a store: Preflight first, bbolt's
// panics on damaged pages turned into errors, a two-second wait for a file
// another process holds (then bbolt's errors.ErrTimeout, so that a second
// process on the same file fails at once rather than hanging), and a walk
// of every page, so that damage is found at open rather than by a panic in
// the middle of serving.
func Open(path string) (*bolt.DB, error) { return OpenMapped(path, 0) }

// OpenMapped is Open with at least mapSize bytes of the file mapped from
// the start, for a store whose read transactions may last (a backup's
// snapshot): bbolt grows its mapping by waiting until every read
// transaction has ended, and writes and new reads queue behind that wait;
// within the mapping the file grows without it. The mapping is address
// space, not memory: only the pages read take memory.
func OpenMapped(path string, mapSize int) (*bolt.DB, error) {
	if err := Preflight(path); err != nil {
		return nil, err
	}
	db, err := open(path, mapSize)
	if err != nil {
		return nil, err
	}
	if err := check(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(path string, mapSize int) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged file: %v", r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, InitialMmapSize: mapSize})
}

func check(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged file: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		// Check's goroutine reads the transaction until it closes the
		// channel, so the channel is drained before the transaction ends.
		var first error
		for cerr := range tx.Check() {
			if first == nil {
				first = cerr
			}
		}
		if first != nil {
			return fmt.Errorf("damaged file: %w", first)
		}
		return nil
	})
}
