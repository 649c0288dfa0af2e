// Command fakegw stands in for `gatehouse gateway` in the supervisor's
// tests: a real process that takes real signals.
//
//	--exit N          exit at once with status N
//	--ignore-term     ignore SIGTERM (only SIGKILL ends it)
//	--listen ADDR     serve HTTP on ADDR ("ok <pid>"); the bound address is
//	                  written to listen.addr in the working directory
//	--spam-every D    write a 100-byte line to stdout every D
//	--max-life D      exit after D whatever happens (default 2m), so that a
//	                  failed test leaves nothing behind for long
//	--takeover        stand in for a gateway taking over: SIGTERM the process
//	                  gateway.pid in the working directory names, as a
//	                  ready gateway has the one it replaces drain
//	--not-ready       with --takeover: never ready, leave it running
//	--takeover-ready-file F  with --takeover: write {"pid":"<pid>"} to F
//	                  after the SIGTERM, as a gateway that took over does
//
// Other arguments are ignored. It prints its arguments and the GATEHOUSE_*
// variables it sees, and "fakegw: SIGTERM" before it exits on SIGTERM.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		ignoreTerm bool
		takeover   bool
		notReady   bool
		readyFile  string
		listen     string
		spamEvery  time.Duration
		maxLife    = 2 * time.Minute
	)
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch args[i] {
		case "--exit":
			code, _ := strconv.Atoi(next())
			fmt.Fprintf(os.Stderr, "fakegw: exiting with %d\n", code)
			os.Exit(code)
		case "--ignore-term":
			ignoreTerm = true
		case "--listen":
			listen = next()
		case "--spam-every":
			spamEvery, _ = time.ParseDuration(next())
		case "--takeover":
			takeover = true
		case "--not-ready":
			notReady = true
		case "--takeover-ready-file":
			readyFile = next()
		case "--max-life":
			maxLife, _ = time.ParseDuration(next())
		}
	}
	fmt.Printf("fakegw: started pid=%d args=%q\n", os.Getpid(), args)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATEHOUSE_") {
			fmt.Printf("fakegw: env %s\n", kv)
		}
	}
	sigs := make(chan os.Signal, 1)
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	// After the signal set-up: tests wait for this line before a stop.
	fmt.Fprintln(os.Stderr, "fakegw: a line on stderr")
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakegw:", err)
			os.Exit(1)
		}
		if err := os.WriteFile("listen.addr", []byte(ln.Addr().String()), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "fakegw:", err)
			os.Exit(1)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "ok %d\n", os.Getpid())
		}))
	}
	if takeover && !notReady {
		var rec struct {
			PID int `json:"pid"`
		}
		b, err := os.ReadFile("gateway.pid")
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err == nil {
			err = syscall.Kill(rec.PID, syscall.SIGTERM)
		}
		fmt.Printf("fakegw: took over from pid %d: %v\n", rec.PID, err)
		if readyFile != "" {
			os.WriteFile(readyFile, []byte(fmt.Sprintf(`{"pid":"%d"}`, os.Getpid())), 0o600)
		}
	}
	var tick <-chan time.Time
	if spamEvery > 0 {
		tick = time.NewTicker(spamEvery).C
	}
	line := strings.Repeat("x", 80)
	n := 0
	deadline := time.After(maxLife)
	for {
		select {
		case <-sigs:
			fmt.Println("fakegw: SIGTERM")
			os.Exit(0)
		case <-deadline:
			fmt.Println("fakegw: max life reached")
			os.Exit(0)
		case <-tick:
			n++
			fmt.Printf("fakegw %08d %s\n", n, line)
		}
	}
}
