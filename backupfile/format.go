package backupfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// Format names the first and only backup format.
const Format = "gatehouse-backup-v1"

// Suffix ends the name of every backup object.
const Suffix = ".ghbackup"

// KindDomain is the kind of the one record every backup holds: the
// domain's, which names it and its signing key.
const KindDomain = "domain"

// maxLine bounds one line of a backup: a deployment of a very large
// configuration is one line, and a damaged file must not make Read
// allocate without end.
const maxLine = 256 << 20

// Header is the first line of a backup.
type Header struct {
	Format  string    `json:"format"`
	Domain  string    `json:"domain"`
	TakenAt time.Time `json:"taken_at"`
	// SigningKey is the fingerprint of the domain's signing public key
	// (deploy.KeyFingerprint), the key the backup is signed with.
	SigningKey string `json:"signing_key"`
}

// Summary is what a backup holds, as its last line says.
type Summary struct {
	Header
	Items  int            `json:"items"`
	Counts map[string]int `json:"counts"`
	// Checksum is "sha256:" and the hex SHA-256 of the content.
	Checksum string `json:"checksum"`
}

// line is any line after the header: a record, or the trailer (End).
type line struct {
	Kind      string          `json:"kind,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	End       bool            `json:"end,omitempty"`
	Items     int             `json:"items,omitempty"`
	Counts    map[string]int  `json:"counts,omitempty"`
	Checksum  string          `json:"checksum,omitempty"`
	Signature []byte          `json:"signature,omitempty"`
}

// domainRecord is what the format reads of the domain's record: the
// store's Domain, of which only these two fields matter here.
type domainRecord struct {
	Name             string `json:"name"`
	SigningPublicKey []byte `json:"signing_public_key"`
}

// signedMessage is what the signature covers.
func signedMessage(checksum string) []byte {
	return []byte(Format + "\n" + checksum)
}

// ObjectName is the name of a backup of domain taken at t: it sorts by
// time among the domain's backups, so that listing them lists them in
// order.
func ObjectName(domain string, t time.Time) string {
	return fmt.Sprintf("%s-%s%s", domain, t.UTC().Format("20060102T150405.000Z"), Suffix)
}

// Errors of Read; test them with errors.Is.
var (
	// ErrForeign is a backup of another domain, or signed by another key.
	ErrForeign = errors.New("backup of another domain")
	// ErrTampered is a backup whose content does not match its checksum
	// or signature: damaged or edited.
	ErrTampered = errors.New("backup damaged or edited")
	// ErrFormat is a file that is not a backup this gatehouse reads.
	ErrFormat = errors.New("not a gatehouse backup")
)

// Writer writes a backup: the header at NewWriter, a line per Record,
// and the signed last line at Close. Until Close returns, what the
// underlying writer got is not a backup (it has no valid last line).
type Writer struct {
	zw  *gzip.Writer
	out io.Writer
	sum hash.Hash
	key ed25519.PrivateKey
	res Summary
	// yield, when set, is called between the pieces of a large record.
	yield func() error
}

// recordPiece is how much of a record is compressed at once before
// Yield's function is called.
const recordPiece = 16 << 10

// Yield has f called between pieces of recordPiece bytes of each record:
// a record of a large configuration is milliseconds of compression, which
// a writer sharing the CPU with requests may want to break up. An error
// of f ends the record with it.
func (bw *Writer) Yield(f func() error) { bw.yield = f }

// NewWriter starts a backup of domain taken at takenAt, to be signed by
// key, the domain's signing key.
func NewWriter(w io.Writer, domain string, takenAt time.Time, key ed25519.PrivateKey) (*Writer, error) {
	// The fastest compression: a backup is taken while the admin node
	// serves, and its CPU is better spent on the requests; route tables
	// compress well all the same.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	bw := &Writer{zw: zw, sum: sha256.New(), key: key}
	bw.out = io.MultiWriter(zw, bw.sum)
	h := Header{
		Format: Format, Domain: domain, TakenAt: takenAt.UTC(),
		SigningKey: deploy.KeyFingerprint(key.Public().(ed25519.PublicKey)),
	}
	if err := writeLine(bw.out, h); err != nil {
		return nil, err
	}
	bw.res = Summary{Header: h, Counts: map[string]int{}}
	return bw, nil
}

// Record writes a record whose value is JSON on one line already:
// encoding the line as a whole would scan and copy the value once more.
func (bw *Writer) Record(kind string, value []byte) error {
	if bytes.IndexAny(value, "\r\n") >= 0 {
		return fmt.Errorf("record %s: its JSON spans lines", kind)
	}
	k, err := json.Marshal(kind)
	if err != nil {
		return err
	}
	// The value is written as it is, in pieces, not copied into one line
	// first: a backup passes the store's whole content through here, and
	// the garbage of a copy would be collected while requests are served.
	head := make([]byte, 0, len(k)+20)
	head = append(append(append(head, `{"kind":`...), k...), `,"value":`...)
	if _, err := bw.out.Write(head); err != nil {
		return err
	}
	for len(value) > recordPiece && bw.yield != nil {
		if _, err := bw.out.Write(value[:recordPiece]); err != nil {
			return err
		}
		value = value[recordPiece:]
		if err := bw.yield(); err != nil {
			return err
		}
	}
	if _, err := bw.out.Write(value); err != nil {
		return err
	}
	if _, err := io.WriteString(bw.out, "}\n"); err != nil {
		return err
	}
	bw.res.Items++
	bw.res.Counts[kind]++
	return nil
}

// Close writes the signed last line and ends the stream; it refuses a
// backup without exactly one domain record.
func (bw *Writer) Close() (Summary, error) {
	if bw.res.Counts[KindDomain] != 1 {
		return Summary{}, fmt.Errorf("a backup holds one domain record, not %d", bw.res.Counts[KindDomain])
	}
	res := bw.res
	res.Checksum = checksum(bw.sum)
	err := writeLine(bw.zw, line{End: true, Items: res.Items, Counts: res.Counts, Checksum: res.Checksum,
		Signature: ed25519.Sign(bw.key, signedMessage(res.Checksum))})
	if err == nil {
		err = bw.zw.Close()
	}
	if err != nil {
		return Summary{}, err
	}
	return res, nil
}

func checksum(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// JSON encodes a newline in a string as \n: a line is one record.
	_, err = w.Write(append(b, '\n'))
	return err
}

// Expect is what Read checks a backup against: the domain it must be of
// and the public key it must be signed with.
type Expect struct {
	Domain string
	Key    ed25519.PublicKey
}

// Read reads the backup r, checks that it is of the expected domain and
// passes each record to put (nil: only check). order, when given, lists
// the kinds a backup may hold in the order it must hold them (a restore
// knows them; a check alone rests on the checksum and the signature). It
// returns the summary once the checksum and the signature are verified;
// until then, what put got must not be kept.
func Read(r io.Reader, want Expect, order []string, put func(kind string, value json.RawMessage) error) (Summary, error) {
	// gzip reads exactly its stream from a ByteReader: what follows
	// stays in raw, to be refused.
	in := bufio.NewReader(r)
	zr, err := gzip.NewReader(in)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	zr.Multistream(false)
	br := bufio.NewReaderSize(zr, 1<<20)
	sum := sha256.New()

	first, err := readLine(br)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	var h Header
	if err := json.Unmarshal(first, &h); err != nil || h.Format == "" {
		return Summary{}, fmt.Errorf("%w: the first line is not a backup header", ErrFormat)
	}
	if h.Format != Format {
		return Summary{}, fmt.Errorf("%w: format %q, this gatehouse reads %s", ErrFormat, h.Format, Format)
	}
	if want.Domain != "" && h.Domain != want.Domain {
		return Summary{}, fmt.Errorf("%w: it is a backup of domain %s, not %s", ErrForeign, h.Domain, want.Domain)
	}
	if fp := deploy.KeyFingerprint(want.Key); h.SigningKey != fp {
		return Summary{}, fmt.Errorf("%w: backup of domain %s says it is signed by key %s, the domain's key is %s",
			ErrForeign, h.Domain, h.SigningKey, fp)
	}
	sum.Write(first)
	res := Summary{Header: h, Counts: map[string]int{}}
	position := map[string]int{}
	for i, k := range order {
		position[k] = i
	}
	last := -1
	for {
		raw, err := readLine(br)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: after %d records: %v (a backup ends with its signed last line)", ErrTampered, res.Items, err)
		}
		var l line
		if err := decodeLine(raw, &l, put != nil); err != nil {
			return Summary{}, fmt.Errorf("%w: record %d: %v", ErrTampered, res.Items+1, err)
		}
		if l.End {
			return finish(in, br, zr, res, l, checksum(sum), want.Key)
		}
		sum.Write(raw)
		if order != nil {
			pos, known := position[l.Kind]
			if !known {
				return Summary{}, fmt.Errorf("%w: record %d of unknown kind %q", ErrTampered, res.Items+1, l.Kind)
			}
			if pos < last {
				return Summary{}, fmt.Errorf("%w: record %d (%s) out of order", ErrTampered, res.Items+1, l.Kind)
			}
			last = pos
		}
		res.Items++
		res.Counts[l.Kind]++
		if l.Kind == KindDomain {
			var d domainRecord
			if err := json.Unmarshal(l.Value, &d); err != nil {
				return Summary{}, fmt.Errorf("%w: record %d: %v", ErrTampered, res.Items, err)
			}
			if d.Name != h.Domain || !bytes.Equal(d.SigningPublicKey, want.Key) {
				return Summary{}, fmt.Errorf("%w: its domain record is of %s with key %s", ErrForeign, d.Name, deploy.KeyFingerprint(d.SigningPublicKey))
			}
		}
		if put != nil {
			if err := put(l.Kind, l.Value); err != nil {
				return Summary{}, err
			}
		}
	}
}

// decodeLine decodes a line after the header. Without withValue, a
// record's value is skipped rather than copied (all but the domain's,
// which is decoded again from the line).
func decodeLine(raw []byte, l *line, withValue bool) error {
	if withValue {
		return json.Unmarshal(raw, l)
	}
	var head struct {
		Kind      string         `json:"kind"`
		End       bool           `json:"end"`
		Items     int            `json:"items"`
		Counts    map[string]int `json:"counts"`
		Checksum  string         `json:"checksum"`
		Signature []byte         `json:"signature"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return err
	}
	*l = line{Kind: head.Kind, End: head.End, Items: head.Items, Counts: head.Counts, Checksum: head.Checksum, Signature: head.Signature}
	if head.Kind == KindDomain {
		return json.Unmarshal(raw, l)
	}
	return nil
}

// finish checks the last line against what was read.
func finish(in, br *bufio.Reader, zr *gzip.Reader, res Summary, l line, got string, key ed25519.PublicKey) (Summary, error) {
	if l.Checksum != got {
		return Summary{}, fmt.Errorf("%w: content checksum %s, the backup says %s", ErrTampered, got, l.Checksum)
	}
	if !ed25519.Verify(key, signedMessage(l.Checksum), l.Signature) {
		return Summary{}, fmt.Errorf("%w: the signature does not verify with the domain's signing key %s", ErrTampered, deploy.KeyFingerprint(key))
	}
	if l.Items != res.Items || !maps.Equal(l.Counts, res.Counts) {
		return Summary{}, fmt.Errorf("%w: %d records read, the backup says %d", ErrTampered, res.Items, l.Items)
	}
	if res.Counts[KindDomain] != 1 {
		return Summary{}, fmt.Errorf("%w: it holds no domain record", ErrTampered)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return Summary{}, fmt.Errorf("%w: data after the last line", ErrTampered)
	}
	if err := zr.Close(); err != nil {
		return Summary{}, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	if _, err := in.ReadByte(); err != io.EOF {
		return Summary{}, fmt.Errorf("%w: data after the compressed stream", ErrTampered)
	}
	res.Checksum = l.Checksum
	return res, nil
}

// readLine returns the next line with its newline; a last line without
// one is an error (the stream was cut).
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("a line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) == 0:
			return nil, io.ErrUnexpectedEOF
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("the last line is cut: %w", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}

// CountsText lists counts as "2 group, 5 deployment, …": the kinds of
// order first, in that order, then any other in alphabetical order.
func CountsText(counts map[string]int, order []string) string {
	kinds := slices.Clone(order)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	var parts []string
	for _, k := range kinds {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}
