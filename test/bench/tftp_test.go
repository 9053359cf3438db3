package bench

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

// tftpBlockSize is what PXE ROMs negotiate on a 1500-byte MTU.
const tftpBlockSize = 1468

// tftpServer is one TFTP server under comparison.
type tftpServer struct {
	name  string
	start func(e *env) *proc
}

func tftpServers() []tftpServer {
	return []tftpServer{
		{"vmprov", (*env).startVmprovTFTP},
		{"tftpd-hpa", (*env).startTFTPDHPA},
	}
}

// startVmprovTFTP starts vmprov serve and waits for its TFTP service.
func (e *env) startVmprovTFTP() *proc {
	e.tb.Helper()
	p := e.startVmprov()
	e.waitTFTP(p)
	return p
}

// startTFTPDHPA runs in.tftpd in the foreground on the server address,
// chrooted (--secure) to serve.dir/tftp, the directory vmprov serves.
func (e *env) startTFTPDHPA() *proc {
	e.tb.Helper()
	p := start(e.tb, "in.tftpd", e.srv, filepath.Join(e.dir, "tftpd-hpa.log"), nil,
		"in.tftpd", "-L", "-s", filepath.Join(e.serveDir, "tftp"), "-a", serverPrefix.Addr().String()+":69")
	e.waitTFTP(p)
	return p
}

// waitTFTP waits until probe.txt downloads.
func (e *env) waitTFTP(p *proc) {
	e.tb.Helper()
	want := sha256.Sum256([]byte("probe\n"))
	waitReady(e.tb, p, p.name+" tftp", func() error {
		return e.tftpGet("probe.txt", want, int64(len("probe\n")), 300*time.Millisecond, 1)
	})
}

// tftpGet downloads name once from the client namespace with pin/tftp's
// client (blksize 1468, tsize) and checks its length and SHA-256.
func (e *env) tftpGet(name string, want [32]byte, size int64, timeout time.Duration, retries int) error {
	c, err := pintftp.NewClient(net.JoinHostPort(serverPrefix.Addr().String(), "69"))
	if err != nil {
		return err
	}
	c.SetBlockSize(tftpBlockSize)
	c.RequestTSize(true)
	c.SetTimeout(timeout)
	c.SetRetries(retries)
	var r io.WriterTo
	err = e.cli.Do(func() error { // the transfer's socket lives in the client namespace
		x, err := c.Receive(name, "octet")
		if err == nil {
			r = x
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("tftp %s: %w", name, err)
	}
	h := sha256.New()
	n, err := r.WriteTo(h)
	if err != nil {
		return fmt.Errorf("tftp %s: after %d bytes: %w", name, n, err)
	}
	var got [32]byte
	h.Sum(got[:0])
	if n != size || got != want {
		return fmt.Errorf("tftp %s: %d bytes, sha256 %x; want %d bytes, %x", name, n, got, size, want)
	}
	return nil
}

// tftpConcurrent downloads name n times at once and returns the time from
// the first request to the last byte, and the failed transfers.
func (e *env) tftpConcurrent(name string, n int) (time.Duration, []error) {
	b, err := os.ReadFile(filepath.Join(e.serveDir, "tftp", name))
	if err != nil {
		return 0, []error{err}
	}
	want := sha256.Sum256(b)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	t0 := time.Now()
	for range n {
		wg.Go(func() {
			if err := e.tftpGet(name, want, int64(len(b)), 2*time.Second, 5); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return time.Since(t0), errs
}
