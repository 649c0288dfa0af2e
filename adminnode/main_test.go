package adminnode

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// pg is the package's PostgreSQL server, nil where it is not installed.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
