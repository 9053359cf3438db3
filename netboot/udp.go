package netboot

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sync/errgroup"
)

// UDPListener is one socket of a datagram server and the name its errors
// carry (the interface it is bound to).
type UDPListener struct {
	Conn *net.UDPConn
	Name string
}

// ServeUDP runs workers readers on each listener until ctx ends, then
// closes the sockets and returns nil once the workers have handled what
// they were handling. A worker reads one datagram of at most maxPacket
// bytes into its own buffer and calls handle with it, and the index of its
// listener, before reading the next; so a datagram costs no goroutine, no
// copy and no stack growth of its own, a slow handle (a DNS lookup) blocks
// only its worker, and a flood queues in the socket buffers rather than in
// memory. The kernel hands each datagram to one reader. handle must not
// keep pkt: the buffer is read into again. A read error other than the
// close ends ServeUDP with that error.
func ServeUDP(ctx context.Context, proto string, ls []UDPListener, workers, maxPacket int, handle func(ctx context.Context, i int, peer netip.AddrPort, pkt []byte)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-gctx.Done()
		for _, l := range ls {
			l.Conn.Close()
		}
		return nil
	})
	for i, l := range ls {
		for range workers {
			g.Go(func() error {
				buf := make([]byte, maxPacket)
				for {
					n, peer, err := l.Conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						if gctx.Err() != nil {
							return nil
						}
						return fmt.Errorf("%s: read on %s: %w", proto, l.Name, err)
					}
					handle(gctx, i, peer, buf[:n])
				}
			})
		}
	}
	return g.Wait()
}
