package backupfile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestWriteThenRead(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	domain, _ := json.Marshal(domainRecord{Name: "acme", SigningPublicKey: pub})
	var b bytes.Buffer
	w, err := NewWriter(&b, "acme", time.Now(), priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(KindDomain, domain); err != nil {
		t.Fatal(err)
	}
	if err := w.Record("group", []byte(`{"name":"web"}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Record("group", []byte("{\n}")); err == nil {
		t.Error("a record spanning lines was written")
	}
	wrote, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}

	var kinds []string
	got, err := Read(bytes.NewReader(b.Bytes()), Expect{Domain: "acme", Key: pub}, []string{KindDomain, "group"},
		func(kind string, _ json.RawMessage) error { kinds = append(kinds, kind); return nil })
	if err != nil || got.Checksum != wrote.Checksum || got.Items != 2 || len(kinds) != 2 {
		t.Fatalf("read back: %+v, %v (records %v), wrote %+v", got, err, kinds, wrote)
	}
	if CountsText(got.Counts, nil) != "1 domain, 1 group" {
		t.Errorf("counts %q", CountsText(got.Counts, nil))
	}
	if _, err := Read(bytes.NewReader(b.Bytes()), Expect{Key: otherPub}, nil, nil); !errors.Is(err, ErrForeign) {
		t.Errorf("read with another key: %v, want ErrForeign", err)
	}
	if _, err := Read(bytes.NewReader(b.Bytes()), Expect{Key: pub}, []string{"group", KindDomain}, nil); !errors.Is(err, ErrTampered) {
		t.Errorf("read with the kinds in another order: %v, want ErrTampered", err)
	}
}
