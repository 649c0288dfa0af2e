package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
)

type logFlags struct {
	level logLevel
	json  bool
}

func (l *logFlags) register(fs *pflag.FlagSet) {
	l.level = "info"
	fs.Var(&l.level, "log-level", "log level: "+strings.Join(logLevels, ", "))
	fs.BoolVar(&l.json, "log-json", false, "log as JSON lines")
}

func (l *logFlags) logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(string(l.level)),
		JSONFormat: l.json,
		Output:     os.Stderr,
	})
}

// logLevels are the levels --log-level takes.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// logLevel is --log-level: a level hclog knows, refused when the flag is
// parsed otherwise (hclog itself would quietly log nothing).
type logLevel string

func (l *logLevel) String() string { return string(*l) }

func (l *logLevel) Type() string { return "level" }

func (l *logLevel) Set(s string) error {
	for _, lv := range logLevels {
		if strings.EqualFold(s, lv) {
			*l = logLevel(lv)
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q: one of %s", s, strings.Join(logLevels, ", "))
}

// readyFileUsage is the start of every --ready-file flag's usage.
const readyFileUsage = "file written (atomically) once every listener is bound: a JSON object of the bound addresses, so that a port 0 is known"
