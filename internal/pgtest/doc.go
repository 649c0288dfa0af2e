// Package pgtest starts a real PostgreSQL server for tests: initdb in a
// temporary directory, postgres listening on a Unix socket in that
// directory only (no TCP port, so nothing to race for), run as an
// unprivileged user when the test runs as root, since PostgreSQL refuses
// to run as root. One server serves a test package (Main, from TestMain);
// each test gets a database of its own (Server.Database).
//
// The binaries are Debian's postgresql package (/usr/lib/postgresql/<v>/bin,
// the highest version) or initdb and postgres on PATH. Where they are truly
// absent the tests that need them skip, saying so; .ci/run installs them
// and sets RequireEnv, so that in CI they fail rather than skip. A server
// dies with its test process (Pdeathsig); the next Start sweeps away the
// directory it left.
package pgtest
