// Package testaddr gives tests loopback addresses no one else can take:
// Dead, an address that refuses connections for the whole test, and
// Reserved, a port kept for a process the test starts. Both hold a bound
// socket until the test ends, instead of the racy "listen on port 0,
// close, hand the port out": the kernel gives a bound port to no other
// bind to port 0 and to no outgoing connection.
package testaddr
