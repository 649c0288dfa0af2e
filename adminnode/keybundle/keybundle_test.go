package keybundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sample() Keys {
	return Keys{
		Domain:        "acme",
		CACertPEM:     []byte("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"),
		CAKeyPEM:      []byte("-----BEGIN PRIVATE KEY-----\ncakey\n-----END PRIVATE KEY-----\n"),
		SigningKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nsign\n-----END PRIVATE KEY-----\n"),
		SettingsKey:   bytes.Repeat([]byte{7}, 32),
	}
}

const pass = "correct horse battery staple"

func TestRoundTrip(t *testing.T) {
	b, err := Seal(sample(), []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{sample().CAKeyPEM, sample().SigningKeyPEM, []byte("cakey"), []byte("sign")} {
		if bytes.Contains(b, secret) {
			t.Errorf("bundle holds %q in clear", secret)
		}
	}
	if d, err := Domain(b); err != nil || d != "acme" {
		t.Errorf("Domain = %q, %v", d, err)
	}
	got, err := Open(b, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sample()) {
		t.Errorf("opened %+v, want %+v", got, sample())
	}
	again, _ := Seal(sample(), []byte(pass))
	if bytes.Equal(again, b) {
		t.Error("two bundles of the same keys are identical: salt and nonce are not random")
	}
}

func TestOpenRefuses(t *testing.T) {
	good, err := Seal(sample(), []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(change func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, _ := json.Marshal(m)
		return b
	}
	flipSealed := edit(func(m map[string]any) {
		s := []byte(m["sealed"].(string))
		if s[10] == 'A' {
			s[10] = 'B'
		} else {
			s[10] = 'A'
		}
		m["sealed"] = string(s)
	})
	for _, tc := range []struct {
		name, passphrase string
		data             []byte
		want             error
		wantText         string
	}{
		{"wrong passphrase", "not the passphrase", good, ErrOpen, ""},
		{"sealed part edited", pass, flipSealed, ErrOpen, ""},
		{"domain renamed", pass, edit(func(m map[string]any) { m["domain"] = "other" }), ErrOpen, ""},
		{"cheaper kdf", pass, edit(func(m map[string]any) { m["time"] = 1 }), ErrOpen, ""},
		{"not json", pass, []byte("hello"), nil, "not a key bundle"},
		{"other format", pass, edit(func(m map[string]any) { m["format"] = "x" }), nil, "format"},
		{"huge memory", pass, edit(func(m map[string]any) { m["memory_kib"] = 1 << 30 }), nil, "out of range"},
		{"truncated", pass, good[:len(good)/2], nil, "not a key bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.data, []byte(tc.passphrase))
			switch {
			case err == nil:
				t.Fatal("opened")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("err = %v, want %v", err, tc.want)
			case tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText):
				t.Errorf("err = %v, want it to mention %q", err, tc.wantText)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	if _, err := Seal(sample(), []byte("short")); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("short passphrase: %v", err)
	}
	k := sample()
	k.SigningKeyPEM = nil
	if _, err := Seal(k, []byte(pass)); err == nil {
		t.Error("sealed a bundle without a signing key")
	}
}
