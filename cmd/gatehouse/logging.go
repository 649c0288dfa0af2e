package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
)

type logFlags struct {
	level string
	json  bool
}

func (l *logFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.BoolVar(&l.json, "log-json", false, "log as JSON lines")
}

func (l *logFlags) logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(l.level),
		JSONFormat: l.json,
		Output:     os.Stderr,
	})
}

// readyFileUsage is the start of every --ready-file flag's usage.
const readyFileUsage = "file written (atomically) once every listener is bound: a JSON object of the bound addresses, so that a port 0 is known"
