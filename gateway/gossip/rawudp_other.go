//go:build !linux

package gossip

import (
	"errors"
	"net"
	"net/netip"
)

// rawUDP is Linux only; elsewhere the transport goes through the net
// package.
type rawUDP struct{}

func newRawUDP(*net.UDPConn) (*rawUDP, error) { return nil, errors.ErrUnsupported }

func (*rawUDP) readFrom([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, errors.ErrUnsupported
}

func (*rawUDP) writeTo([]byte, netip.AddrPort) error { return errors.ErrUnsupported }
