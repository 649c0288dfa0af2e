//go:build !linux

package supervisor

import (
	"errors"
	"time"
)

// The exec driver identifies processes through /proc: elsewhere it starts
// and supervises gateways but cannot adopt them after a restart.

type procStat struct {
	State      byte
	PGID       int
	StartTicks uint64
}

func readProcStat(int) (procStat, error) { return procStat{}, errors.ErrUnsupported }
func readCmdline(int) ([]string, error)  { return nil, errors.ErrUnsupported }
func readBootID() (string, error)        { return "", errors.ErrUnsupported }
func monotonicToWall(uint64) time.Time   { return time.Time{} }
