package objstore

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDirBucket(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(ctx, "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "backups/a", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "backups/a", strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "groups/web/current", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(ctx, "backups/a")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "two" {
		t.Fatalf("get = %q, want the last put", got)
	}
	objs, err := b.List(ctx, "backups/")
	if err != nil || len(objs) != 1 || objs[0].Key != "backups/a" || objs[0].Size != 3 {
		t.Fatalf("list = %+v, %v", objs, err)
	}
	if err := b.Delete(ctx, "backups/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "backups/a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("get after delete: %v, want ErrNotExist", err)
	}
	if err := b.Delete(ctx, "backups/a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("second delete: %v, want ErrNotExist", err)
	}
}

func TestKeysStayInTheBucket(t *testing.T) {
	b, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/"} {
		if err := b.Put(context.Background(), key, strings.NewReader("x")); err == nil {
			t.Errorf("put %q accepted", key)
		}
	}
}

func TestOpenRefusesCredentialsAndUnknownSchemes(t *testing.T) {
	for _, raw := range []string{"s3://AKIA:secret@bucket/p", "ftp://host/x", "relative/dir", "file://otherhost/x", "file://rel"} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil {
			t.Errorf("%s accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the secret: %v", raw, err)
		}
	}
}
