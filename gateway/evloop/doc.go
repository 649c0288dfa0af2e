// Package evloop is the gateway's HTTP/1.1 engine for plain-text traffic on
// Linux: one epoll event loop per core, each with its own listening socket
// (SO_REUSEPORT), its own client connections and its own pools of upstream
// connections, so that a request is read, forwarded and answered on one
// thread without goroutine hand-offs. The Go scheduler's park/unpark per
// request, not HTTP parsing, is what kept a goroutine-per-connection proxy
// at about two thirds of nginx's throughput on the benchmark machine.
//
// The engine knows HTTP framing, not policy: for every request it asks a
// Dispatcher (the proxy) where the request goes and what head to send, and
// it tells the Dispatcher how the exchange ended.
package evloop
