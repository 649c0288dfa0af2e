package gossip

import (
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// memberlistLogger routes memberlist's standard-library logger into
// hclog. memberlist logs expected events loudly (a failed probe of a
// stopped peer is an [ERR]); this package logs what matters about peers
// itself, so memberlist's errors and warnings go to Debug and the rest to
// Trace.
func memberlistLogger(logger hclog.Logger) *log.Logger {
	return log.New(logWriter{logger}, "", 0)
}

type logWriter struct{ logger hclog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	level := hclog.Trace
	if rest, ok := strings.CutPrefix(s, "["); ok {
		if tag, msg, ok := strings.Cut(rest, "] "); ok {
			if tag == "ERR" || tag == "ERROR" || tag == "WARN" {
				level = hclog.Debug
			}
			s = msg
		}
	}
	s = strings.TrimPrefix(s, "memberlist: ")
	w.logger.Log(level, s)
	return len(p), nil
}
