package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// freelistPageFlag marks bbolt's freelist page; a count of 0xFFFF in its
// header means the real count is the page's first 8 bytes.
const (
	freelistPageFlag = 0x10
	countOverflow    = 0xFFFF
)

// Usage is how a bbolt file's pages are used: for watching a store grow
// while its process holds it (the benchmarks under bench/). The file's
// own size says little: bbolt grows it ahead of the pages, by up to
// 16 MiB at a time.
type Usage struct {
	// Size is the bytes of the pages allocated so far (the meta page's
	// high-water mark).
	Size int64
	// Free is the bytes of the pages below it that the freelist holds for
	// reuse, including those freed by recent transactions that readers
	// may still see: a commit copies every page it changes, so a store
	// that is written keeps some of its file free.
	Free int64
	// TxID is the transaction the figures are of.
	TxID uint64
}

// ReadUsage reads a bbolt file's newest meta page and the count of its
// freelist page, without opening it with bbolt (which would wait for the
// lock of the process that holds it). A commit may reuse that freelist
// page while it is read: the page's id and flags are checked, and the
// read is retried from the meta pages.
func ReadUsage(path string) (Usage, error) {
	f, err := os.Open(path)
	if err != nil {
		return Usage{}, err
	}
	defer f.Close()
	for range 5 {
		m, err := newestMeta(f)
		if err != nil {
			return Usage{}, fmt.Errorf("%s: %w", path, err)
		}
		if m.freelist == noFreelist {
			return Usage{}, fmt.Errorf("%s: the file keeps no freelist", path)
		}
		var buf [pageHeaderSize + 8]byte
		if _, err := f.ReadAt(buf[:], int64(m.freelist)*int64(m.pageSize)); err != nil {
			return Usage{}, fmt.Errorf("%s: freelist page: %w", path, err)
		}
		le := binary.LittleEndian
		if le.Uint64(buf[0:]) != m.freelist || le.Uint16(buf[8:])&freelistPageFlag == 0 {
			continue // reused since the meta page was read
		}
		free := uint64(le.Uint16(buf[10:]))
		if free == countOverflow {
			free = le.Uint64(buf[pageHeaderSize:])
		}
		ps := int64(m.pageSize)
		return Usage{Size: int64(m.pgid) * ps, Free: int64(free) * ps, TxID: m.txid}, nil
	}
	return Usage{}, errors.New(path + ": its freelist page kept changing while read")
}
