package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Parameters of BenchmarkServeTFTPWindow.
const (
	tftpWindow        = 16 // the windowsize atftp asks for (RFC 7440)
	tftpWindowClients = 10 // concurrent atftp processes; VMPROV_BENCH_TFTP_WINDOW_CLIENTS
	tftpWindowGets    = 10 // downloads each, one after another; VMPROV_BENCH_TFTP_WINDOW_GETS
	tftpWindowRounds  = 3  // alternating rounds, to even out a shared machine's noise
)

// atftpRun is one way of downloading the loader with atftp.
type atftpRun struct {
	name    string // metric prefix
	server  string // "vmprov" or "tftpd-hpa"
	options []string
}

func atftpRuns() []atftpRun {
	blksize := "blksize " + strconv.Itoa(tftpBlockSize)
	window := "windowsize " + strconv.Itoa(tftpWindow)
	return []atftpRun{
		{"vmprov-window16", "vmprov", []string{blksize, window}},
		{"vmprov-lockstep", "vmprov", []string{blksize}},
		// tftpd-hpa has no windowsize: it leaves the option out of its
		// OACK, and atftp falls back to lockstep.
		{"tftpd-hpa", "tftpd-hpa", []string{blksize, window}},
	}
}

// BenchmarkServeTFTPWindow downloads the 1 MiB loader with Debian's atftp
// (blksize 1468, every download checked by SHA-256) from vmprov asking for
// windowsize 16, from vmprov without it (lockstep), and from tftpd-hpa
// asking for it (tftpd-hpa has no windowsize, so lockstep), in three
// alternating rounds, twice: one client downloading it 30 times in a row
// (what one booting machine sees), and VMPROV_BENCH_TFTP_WINDOW_CLIENTS
// atftp processes at once (default 10), each downloading it
// VMPROV_BENCH_TFTP_WINDOW_GETS times (default 10). Each reports the
// throughputs, the ratios of windowsize 16 to vmprov's lockstep and to
// tftpd-hpa, and the 1-minute load average before and after.
func BenchmarkServeTFTPWindow(b *testing.B) {
	requireBinaries(b, "in.tftpd", "atftp")
	clients := envInt("VMPROV_BENCH_TFTP_WINDOW_CLIENTS", tftpWindowClients)
	gets := envInt("VMPROV_BENCH_TFTP_WINDOW_GETS", tftpWindowGets)
	e := newEnv(b, 1)
	b.Run("clients=1", func(b *testing.B) { e.benchWindow(b, 1, 3*tftpWindowGets) })
	b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { e.benchWindow(b, clients, gets) })
}

// benchWindow runs BenchmarkServeTFTPWindow's comparison with clients
// atftp processes at once, each downloading the loader gets times.
func (e *env) benchWindow(b *testing.B, clients, gets int) {
	se := *e
	se.tb = b // the servers stop when b ends
	e = &se
	body, err := os.ReadFile(filepath.Join(e.serveDir, "tftp", bootFile))
	if err != nil {
		b.Fatal(err)
	}
	want := sha256.Sum256(body)
	servers := map[string]func(*env) *proc{"vmprov": (*env).startVmprovTFTP, "tftpd-hpa": (*env).startTFTPDHPA}
	b.ReportMetric(windowLoad(b), "load1-before")
	total := map[string]time.Duration{}
	for round := range b.N * tftpWindowRounds {
		for _, srv := range []string{"vmprov", "tftpd-hpa"} {
			p := servers[srv](e)
			runs := atftpRuns()
			if round%2 == 1 {
				runs[0], runs[1] = runs[1], runs[0]
			}
			for _, r := range runs {
				if r.server != srv {
					continue
				}
				if round == 0 {
					e.atftpNegotiated(b, r, len(body))
				}
				if _, errs := e.atftpConcurrent(r.options, 2, 1, want); len(errs) > 0 {
					b.Fatalf("%s: warm-up: %d of 2 downloads failed, first: %v", r.name, len(errs), errs[0])
				}
				d, errs := e.atftpConcurrent(r.options, clients, gets, want)
				if len(errs) > 0 {
					b.Errorf("%s: %d of %d downloads failed, first: %v", r.name, len(errs), clients*gets, errs[0])
				}
				b.Logf("%s: %d x %d x %d KiB in %v", r.name, clients, gets, loaderSize>>10, d.Round(time.Millisecond))
				total[r.name] += d
			}
			if err := p.stop(); err != nil {
				b.Error(err)
			}
		}
	}
	b.ReportMetric(windowLoad(b), "load1-after")
	mib := float64(b.N*tftpWindowRounds*clients*gets*loaderSize) / (1 << 20)
	for name, d := range total {
		b.ReportMetric(mib/d.Seconds(), name+"-MiB/s")
	}
	// Ratios of throughput: the inverse ratios of the times.
	b.ReportMetric(ratio(total["vmprov-lockstep"].Seconds(), total["vmprov-window16"].Seconds()), "window16/lockstep")
	b.ReportMetric(ratio(total["tftpd-hpa"].Seconds(), total["vmprov-window16"].Seconds()), "window16/tftpd-hpa")
	b.ReportMetric(ratio(total["tftpd-hpa"].Seconds(), total["vmprov-lockstep"].Seconds()), "lockstep/tftpd-hpa")
}

// atftpNegotiated downloads the loader once with atftp --trace, untimed,
// and logs what the server granted and how many ACKs atftp sent: one a
// window of 16 when windowsize was granted, one a block in lockstep. It
// fails b when vmprov does not grant the windowsize asked for.
func (e *env) atftpNegotiated(b *testing.B, r atftpRun, size int) {
	b.Helper()
	out := filepath.Join(e.dir, "atftp-trace.bin")
	args := []string{"atftp", "--trace"}
	for _, o := range r.options {
		args = append(args, "--option", o)
	}
	args = append(args, "-g", "-r", bootFile, "-l", out, serverPrefix.Addr().String(), "69")
	log, err := runIn(b.Context(), e.cli, 60*time.Second, args...)
	if err != nil {
		b.Fatalf("%s: %v\n%.2000s", r.name, err, log)
	}
	oack := "no OACK"
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "received OACK") {
			oack = strings.NewReplacer(", \b\b", "").Replace(l)
			break
		}
	}
	blocks := size/tftpBlockSize + 1
	b.Logf("%s: %s; %d ACKs for %d blocks", r.name, oack, strings.Count(log, "sent ACK <"), blocks)
	if r.name == "vmprov-window16" && !strings.Contains(oack, fmt.Sprintf("windowsize: %d", tftpWindow)) {
		b.Fatalf("vmprov did not grant windowsize %d: %s", tftpWindow, oack)
	}
}

// atftpConcurrent runs n atftp processes at once in the client
// namespace, each downloading the loader gets times in a row with options
// (commands on its standard input, so that a process's start is shared by
// its downloads), and returns the time from the first start to the last
// exit, and the downloads that failed or differ from the file.
func (e *env) atftpConcurrent(options []string, n, gets int, want [32]byte) (time.Duration, []error) {
	dir, err := os.MkdirTemp(e.dir, "atftp")
	if err != nil {
		return 0, []error{err}
	}
	defer os.RemoveAll(dir)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	local := func(i, j int) string { return filepath.Join(dir, fmt.Sprintf("%d-%d", i, j)) }
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			var script strings.Builder
			for _, o := range options {
				fmt.Fprintf(&script, "option %s\n", o)
			}
			for j := range gets {
				fmt.Fprintf(&script, "get %s %s\n", bootFile, local(i, j))
			}
			script.WriteString("quit\n")
			ctx, cancel := context.WithTimeout(e.tb.Context(), 120*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.cli.Name, "atftp", serverPrefix.Addr().String(), "69")
			cmd.Stdin = strings.NewReader(script.String())
			cmd.WaitDelay = 5 * time.Second
			if out, err := cmd.CombinedOutput(); err != nil {
				fail(fmt.Errorf("atftp: %v: %.500s", err, out))
			}
		})
	}
	wg.Wait()
	d := time.Since(t0)
	for i := range n {
		for j := range gets {
			got, err := os.ReadFile(local(i, j))
			switch {
			case err != nil:
				fail(err)
			case sha256.Sum256(got) != want:
				// atftp exits 0 after a failed get; the file tells.
				fail(fmt.Errorf("download %d-%d: %d bytes with another sha256 than the loader's", i, j, len(got)))
			}
		}
	}
	return d, errs
}

// windowLoad logs /proc/loadavg and returns the 1-minute load average,
// which the benchmark reports beside its figures: the machine is shared.
func windowLoad(b *testing.B) float64 {
	l, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Logf("no load average: %v", err)
		return 0
	}
	b.Logf("load average: %s", strings.TrimSpace(string(l)))
	f, _ := strconv.ParseFloat(strings.Fields(string(l))[0], 64)
	return f
}
