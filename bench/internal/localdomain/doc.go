// Package localdomain runs a Gatehouse domain on this machine from the
// real gatehouse binary, for the benchmark programs under bench/: a work
// dir, the admin node (admin init, admin run, a logged-in API client; a
// restart, for a program that reads or fills its store in between),
// hosts joined with node join and their node managers (node run), the
// join of simulated node managers (a CSR and a mutual-TLS client each),
// and the teardown that also stops the gateways the node managers
// started. What it measures stays with each program;
// bench/internal/measure holds the measuring helpers.
package localdomain
