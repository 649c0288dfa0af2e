// Package nodemanager is the per-host agent of a domain: it joins the
// domain, supervises the host's gateway processes, relays configuration to
// them and collects their metrics.
package nodemanager
