package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt maps the file into memory and trusts its meta pages: a file cut
// short makes it read past the end of the mapping, which kills the process
// with SIGBUS instead of returning an error. Preflight reads the two meta
// pages the way bbolt lays them out (a 16-byte page header, then magic,
// version, page size, flags, root bucket, freelist page, high-water page,
// transaction id, checksum) and refuses a file whose pages would lie
// beyond its end.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaSize        = 64
	metaChecksumOff = 56
	noFreelist      = ^uint64(0)
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

func readMeta(buf []byte) (boltMeta, error) {
	if len(buf) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("meta page cut short")
	}
	m := buf[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("bad magic")
	}
	if le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, fmt.Errorf("unknown file version %d", le.Uint32(m[4:]))
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumOff])
	if h.Sum64() != le.Uint64(m[metaChecksumOff:]) {
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	return boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}, nil
}

// Preflight returns nil for a missing or empty file (bbolt creates it) and
// for a file whose newest valid meta page describes pages that all lie
// inside it.
func Preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	m, err := newestMeta(f)
	if err != nil {
		return fmt.Errorf("not a bbolt file: %w", err)
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("bad page size %d", m.pageSize)
	}
	if int64(m.pgid)*int64(m.pageSize) > size || m.pgid < 4 {
		return fmt.Errorf("file holds %d bytes but its pages reach %d: cut short", size, int64(m.pgid)*int64(m.pageSize))
	}
	if m.root >= m.pgid || (m.freelist != noFreelist && m.freelist >= m.pgid) {
		return errors.New("meta page points past the last page")
	}
	return nil
}

// newestMeta reads both meta pages of f and returns the valid one of the
// latest transaction: bbolt writes them in turn, so one may be torn.
func newestMeta(f *os.File) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	var metas []boltMeta
	var firstErr error
	pageSize := int64(os.Getpagesize())
	if _, err := f.ReadAt(buf, 0); err == nil || errors.Is(err, io.EOF) {
		if m, err := readMeta(buf); err == nil {
			metas = append(metas, m)
			pageSize = int64(m.pageSize)
		} else {
			firstErr = fmt.Errorf("meta page 0: %w", err)
		}
	}
	if _, err := f.ReadAt(buf, pageSize); err == nil || errors.Is(err, io.EOF) {
		if m, err := readMeta(buf); err == nil {
			metas = append(metas, m)
		} else if firstErr == nil {
			firstErr = fmt.Errorf("meta page 1: %w", err)
		}
	}
	if len(metas) == 0 {
		if firstErr == nil {
			firstErr = errors.New("no meta page")
		}
		return boltMeta{}, firstErr
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	return m, nil
}
