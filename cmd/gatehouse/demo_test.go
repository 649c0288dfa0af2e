package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
)

// demo-upstream says where it listens, the port picked for :0 included,
// and serves there until its context ends.
func TestDemoUpstreamPrintsWhereItListens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	cmd := demoUpstreamCommand()
	cmd.SetOut(w)
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--name", "orders"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); w.Close() }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read the first line: %v (command: %v)", err, <-done)
	}
	m := regexp.MustCompile(`^demo upstream orders listening on (http://127\.0\.0\.1:[1-9][0-9]*)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, r)
	resp, err := http.Get(m[1] + "/orders/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`"orders"`).Match(body) {
		t.Errorf("answer %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after cancel: %v", err)
	}
}
