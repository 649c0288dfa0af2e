package localdomain

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestScanGatewayLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.log")
	log := "2026-11-23T20:21:56.495Z [INFO]  gateway: deployment applied: number=4 checksum=x\n" +
		"not a stamp deployment applied: number=5\n" +
		"2026-11-23T20:21:57.000Z [INFO]  gateway: listening\n" +
		"2026-11-23T20:21:58.250Z [INFO]  gateway: deployment applied: number=6 checksum=y\n" +
		"2026-11-23T20:21:59.000Z [INFO]  gateway: deployment applied: number=7 checksum=z\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	ScanGatewayLog(path, "deployment applied", func(at time.Time, rest string) bool {
		got = append(got, at.Format("05.000")+" "+rest)
		return len(got) < 2
	})
	want := []string{
		"56.495 [INFO]  gateway: deployment applied: number=4 checksum=x",
		"58.250 [INFO]  gateway: deployment applied: number=6 checksum=y",
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %q, want %q", got, want)
	}
	ScanGatewayLog(filepath.Join(t.TempDir(), "none.log"), "", func(time.Time, string) bool {
		t.Error("a line of a missing log")
		return true
	})
}
