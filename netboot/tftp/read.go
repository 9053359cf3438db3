package tftp

import (
	"context"
	"fmt"
	"io"
	"net/netip"
)

// maxRead bounds what Read returns: per-host files are a few hundred bytes;
// a loader is read only to say what it is.
const maxRead = 1 << 20

// Read returns what a read request for name from the client at from gets,
// without a transfer: the file under the root or the per-host file, at
// most 1 MiB of it. Its error is what the client would be told (file not
// found, access violation, not available). It takes the request path of
// Serve, so vmprov explain shows exactly what the server sends, except
// that it changes no build state.
func (s *Server) Read(ctx context.Context, name string, from netip.Addr) ([]byte, error) {
	log := s.log.With("ip", from, "file", printable(name))
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	r, _, _, err := s.open(ctx, log, clean, from.Unmap(), false)
	if err != nil {
		return nil, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	b, err := io.ReadAll(io.LimitReader(r, maxRead))
	if err != nil {
		return nil, fmt.Errorf("tftp: read %s: %w", clean, err)
	}
	return b, nil
}
