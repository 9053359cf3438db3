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

// ServeUDP reads datagrams from every listener until ctx ends and hands
// each to handle, with the index of its listener, in a goroutine of its
// own; at most limit run at once, so a flood queues in the socket buffers
// rather than in memory. When ctx ends it closes the sockets and returns
// nil once the running handlers are done. A read error before that closes
// them too and is returned. handle owns pkt.
func ServeUDP(ctx context.Context, proto string, ls []UDPListener, limit int, handle func(ctx context.Context, i int, peer netip.AddrPort, pkt []byte)) error {
	g, gctx := errgroup.WithContext(ctx)
	var handlers errgroup.Group
	handlers.SetLimit(limit)
	g.Go(func() error {
		<-gctx.Done()
		for _, l := range ls {
			l.Conn.Close()
		}
		return nil
	})
	for i, l := range ls {
		g.Go(func() error {
			buf := make([]byte, 65535)
			for {
				n, peer, err := l.Conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("%s: read on %s: %w", proto, l.Name, err)
				}
				pkt := append([]byte(nil), buf[:n]...)
				handlers.Go(func() error {
					handle(gctx, i, peer, pkt)
					return nil
				})
			}
		})
	}
	err := g.Wait()
	_ = handlers.Wait() // handlers return no errors; they log
	return err
}
