package bench

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmprov/vmprov/netboot/tftp"
)

// BenchmarkTFTPInProcess serves the loader with vmprov's netboot/tftp
// server inside this process (its sockets in the server namespace) to the
// 100 concurrent clients of BenchmarkServeTFTP, so that `go test
// -cpuprofile` shows the server's hot spots next to the clients'.
func BenchmarkTFTPInProcess(b *testing.B) {
	e := newEnv(b, 1)
	s, err := tftp.New(tftp.Config{Root: filepath.Join(e.serveDir, "tftp")})
	if err != nil {
		b.Fatal(err)
	}
	var conn *net.UDPConn
	if err := e.srv.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: serverPrefix.Addr().AsSlice(), Port: 69})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Do(func() error { return s.ServeConn(ctx, conn) }) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Error("tftp server did not stop within 30s")
		}
		s.Close()
	})
	b.SetBytes(tftpClients * loaderSize)
	for b.Loop() {
		d, errs := e.tftpConcurrent(bootFile, tftpClients)
		if len(errs) > 0 {
			b.Fatalf("%d of %d downloads failed, first: %v", len(errs), tftpClients, errs[0])
		}
		b.Logf("%d x %d KiB in %v", tftpClients, loaderSize>>10, d.Round(time.Millisecond))
	}
}
