// Package handover passes a running gateway's listening sockets to the
// gateway process that replaces it, so that a restart (or an upgrade to
// another binary) refuses no connection and fails no request.
//
// Every gateway with a data directory offers its sockets on a Unix socket
// in the abstract namespace named after that directory (Name). A gateway
// started with --takeover asks for them (Take): the old process answers
// with its listening sockets (SCM_RIGHTS) after closing its configuration
// store, so that the new one can open it. The new process serves on the
// very same sockets, not on new ones beside them: there is one accept
// queue per socket, shared by both processes, and a connection queued in
// it is accepted by whichever process takes it next. When the new process
// is ready it says so (Taken.Ready); the old one then stops accepting
// (it closes its own descriptors, which does not close the sockets the
// new process holds) and drains. Nothing is lost in between, unlike two
// sets of SO_REUSEPORT sockets, where the connections in the accept queue
// of the socket that closes are reset.
//
// A new process that goes away before it is ready (crashed, killed, never
// ready) closes the connection; the old one reopens its store and goes on
// as before. The new process learns that the old one has exited when the
// connection closes (Taken.Gone): only then may it bind what cannot be
// shared, such as the gossip port and the handover name itself.
//
// Both ends check with SO_PEERCRED that the other runs as the same user:
// an abstract socket has no file permissions.
//
// The protocol, one connection per takeover:
//
//	new → old  "TAKE\n"
//	old → new  one message: a JSON Offered header, with every descriptor
//	           it lists attached in order (or a header with Error set)
//	new → old  "READY\n"
//	           the old process drains and exits; its end closes
package handover
