package demo

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

// Console records a VM's serial console (SeaBIOS, iPXE, the stand-in
// kernel) through libvirt, into memory and a file.
type Console struct {
	Path   string // the recording
	conn   *libvirt.Connect
	stream *libvirt.Stream
	mu     sync.Mutex
	buf    bytes.Buffer
	done   chan struct{}
}

// OpenConsole attaches to the serial console of domain name (forcing off
// any other reader) and records it to path until the domain stops or Close.
func (e *Env) OpenConsole(name, path string) (*Console, error) {
	return e.OpenConsoleAt("", name, path)
}

// OpenConsoleAt is OpenConsole for a domain of the libvirtd at uri (empty:
// the lab's), such as a hypervisor of the lab's fleet.
func (e *Env) OpenConsoleAt(uri, name, path string) (*Console, error) {
	if uri == "" {
		uri = e.Lab.State.LibvirtURI
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("open console %s: %w", name, err)
	}
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open console %s: %w", name, err)
	}
	c := &Console{Path: path, conn: conn, done: make(chan struct{})}
	fail := func(err error) (*Console, error) {
		if c.stream != nil {
			_ = c.stream.Free()
		}
		conn.Close()
		f.Close()
		return nil, fmt.Errorf("open console %s: %w", name, err)
	}
	dom, err := conn.LookupDomainByName(name)
	if err != nil {
		return fail(err)
	}
	defer dom.Free()
	if c.stream, err = conn.NewStream(0); err != nil {
		return fail(err)
	}
	if err := dom.OpenConsole("", c.stream, libvirt.DOMAIN_CONSOLE_FORCE); err != nil {
		return fail(err)
	}
	go func() {
		defer close(c.done)
		defer f.Close()
		p := make([]byte, 4096)
		for {
			n, err := c.stream.Recv(p)
			if n > 0 {
				c.mu.Lock()
				c.buf.Write(p[:n])
				c.mu.Unlock()
				_, _ = f.Write(p[:n])
			}
			if err != nil || n == 0 {
				return
			}
		}
	}()
	return c, nil
}

// Text returns what the console printed so far.
func (c *Console) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Close stops recording.
func (c *Console) Close() error {
	_ = c.stream.Abort()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
	_ = c.stream.Free()
	_, err := c.conn.Close()
	return err
}

// Markers the stand-in kernel (echokernel.S) prints.
const (
	cmdlineMarker = "VMPROV-CMDLINE: "
	moduleMarker  = "VMPROV-MODULE: "
	endMarker     = "VMPROV-END"
)

// KernelCmdline extracts what the stand-in kernel printed on the console:
// the multiboot command line (the kernel's URI, a space, then the command
// line of iPXE's `kernel` line) and the module strings (the initrds' URIs).
// ok is false until the kernel has printed everything.
func KernelCmdline(console string) (cmdline string, modules []string, ok bool) {
	i := strings.LastIndex(console, cmdlineMarker)
	if i < 0 {
		return "", nil, false
	}
	rest := console[i:]
	if !strings.Contains(rest, endMarker) {
		return "", nil, false
	}
	for _, l := range strings.Split(rest, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, cmdlineMarker):
			cmdline = strings.TrimPrefix(l, cmdlineMarker)
		case strings.HasPrefix(l, moduleMarker):
			modules = append(modules, strings.TrimPrefix(l, moduleMarker))
		}
	}
	return cmdline, modules, true
}
