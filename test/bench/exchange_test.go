package bench

import (
	"errors"
	"net"
	"time"
)

// exchange sends reqs from conn to dst, keeping at most window of them
// unanswered, and returns the replies by key (a transaction ID). parse
// decodes a datagram into its key and message; ok false drops it. Only the
// first reply of each request counts. It stops timeout after the last send
// or the last reply, whichever is later.
func exchange[K comparable, M any](conn *net.UDPConn, dst *net.UDPAddr, reqs [][]byte, keys []K, parse func([]byte) (K, M, bool), window int, timeout time.Duration) map[K]M {
	want := map[K]bool{}
	for _, k := range keys {
		want[k] = true
	}
	type reply struct {
		key K
		msg M
	}
	replies := make(chan reply, 256)
	stop := make(chan struct{})
	go func() {
		defer close(replies)
		buf := make([]byte, 65535)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				return
			}
			k, m, ok := parse(buf[:n])
			if !ok {
				continue
			}
			select {
			case replies <- reply{k, m}:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range replies { // until the reader has gone
		}
	}()
	got := map[K]M{}
	sent := 0
	deadline := time.Now().Add(timeout)
	for len(got) < len(reqs) {
		for sent < len(reqs) && sent-len(got) < window {
			if _, err := conn.WriteToUDP(reqs[sent], dst); err != nil {
				return got
			}
			sent++
			deadline = time.Now().Add(timeout)
		}
		select {
		case r, ok := <-replies:
			if !ok {
				return got
			}
			if _, seen := got[r.key]; want[r.key] && !seen {
				got[r.key] = r.msg
				deadline = time.Now().Add(timeout)
			}
		case <-time.After(time.Until(deadline)):
			return got
		}
	}
	return got
}
