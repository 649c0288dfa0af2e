package localdomain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// StartPostgres starts a PostgreSQL server for the domain (Debian's
// postgresql package, as the tests run it: internal/pgtest, here with
// production durability: fsync and synchronous commit on), creates the
// domain's database in it and sets StoreFile to its connection string.
// Call it before StartAdmin; Close stops the server.
func (d *Domain) StartPostgres(ctx context.Context) (*pgtest.Server, error) {
	srv, err := pgtest.StartDurable()
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	d.pg = srv
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE gatehouse"); err != nil {
		return nil, fmt.Errorf("create the domain's database: %w", err)
	}
	d.StoreFile = filepath.Join(d.Work, "store")
	if err := os.WriteFile(d.StoreFile, []byte(srv.DSN("gatehouse")+"\n"), 0o600); err != nil {
		return nil, err
	}
	d.logf("PostgreSQL (postmaster pid %d) in %s", srv.PID(), srv.Host())
	return srv, nil
}
