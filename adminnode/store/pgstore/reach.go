package pgstore

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unreachable implements store.Reachability: err comes from the database
// being out of reach — no connection could be made, the one in use was cut,
// or the server is shutting down, starting up or in recovery (SQLSTATE
// classes 08 and 57P) — rather than from a statement it refused.
func (p *PG) Unreachable(err error) bool {
	if err == nil {
		return false
	}
	if code := pgCode(err); code != "" {
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57P")
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
