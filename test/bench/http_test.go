package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// initrdPath is the 64 MiB file both HTTP servers serve.
const initrdPath = "/assets/initrd.img"

// httpServer is one HTTP server under comparison, with the base URL it
// answers at.
type httpServer struct {
	name  string
	port  int
	start func(e *env) *proc
}

func httpServers() []httpServer {
	return []httpServer{
		{"vmprov", httpPort, (*env).startVmprov},
		{"nginx", peerPort, (*env).startNginx},
	}
}

func baseURL(port int) string {
	return fmt.Sprintf("http://%s:%d", serverPrefix.Addr(), port)
}

// startNginx runs nginx in the foreground with serve.dir as its root, so
// /assets/initrd.img is the file vmprov serves, with sendfile as Debian's
// nginx.conf has it and its pid, logs and temporary files in a temp dir.
func (e *env) startNginx() *proc {
	e.tb.Helper()
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		e.tb.Fatal(err)
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	sendfile on;
	tcp_nopush on;
	default_type application/octet-stream;
	server {
		listen %[2]s:%[3]d;
		root %[4]s;
	}
}
`, dir, serverPrefix.Addr(), peerPort, e.serveDir)
	file := filepath.Join(dir, "nginx.conf")
	writeFile(e.tb, file, []byte(conf))
	p := start(e.tb, "nginx", e.srv, filepath.Join(dir, "nginx.out"), nil,
		"nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", file, "-g", "daemon off;")
	c := e.httpClient()
	waitReady(e.tb, p, "nginx", func() error {
		return httpGet(c, baseURL(peerPort)+"/tftp/probe.txt", io.Discard)
	})
	return p
}

// wrk runs wrk in the client namespace against url for the given time.
func (e *env) wrk(tb testing.TB, url string, threads, conns int, d time.Duration) (WrkReport, string) {
	tb.Helper()
	args := []string{"wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "30s", url}
	out, err := runIn(tb.Context(), e.cli, d+60*time.Second, args...)
	if err != nil {
		tb.Fatalf("wrk: %v\n%s", err, out)
	}
	rep, err := ParseWrk(out)
	if err != nil {
		tb.Fatalf("%v\n%s", err, out)
	}
	return rep, out
}
