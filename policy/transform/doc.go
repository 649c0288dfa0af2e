// Package transform provides the built-in policy kinds that filter and
// reshape requests without identifying anyone: ip-restriction,
// request-size-limit and cors decide whether a request may pass;
// request-id and proxy-rewrite rewrite it before anything else runs;
// request-headers, response-headers and traffic-split shape what the
// upstream receives and what the client gets back.
package transform
