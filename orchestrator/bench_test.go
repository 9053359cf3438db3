package orchestrator_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/test/lab"
)

// BenchmarkCreateDestroy50 creates and destroys 50 VMs with vmprov against
// real BIND and the libvirt test driver, then does the same work the way
// seed 000's scripts do: nsupdate for the same records and virsh for the
// same domain XML. It reports per-VM latency of both and their ratio.
func BenchmarkCreateDestroy50(b *testing.B) {
	for _, bin := range []string{"nsupdate", "virsh"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("needs %s (Debian bind9-utils, libvirt-clients)", bin)
		}
	}
	e := newEnv(b, "default-pool")
	o := e.orchestrator(b, testDriver(b))
	const n = 50
	dir := b.TempDir()
	name, alg, secret := e.bind.TSIG()
	var vmprovDur, baseDur time.Duration
	for i := 0; i < b.N; i++ {
		plans := make([]*orchestrator.Plan, n)
		start := time.Now()
		for j := range n {
			p, err := o.Create(b.Context(), orchestrator.Request{Name: fmt.Sprintf("bench-%d-%d", i, j), IPv4: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + j)}), Distro: "core"})
			if err != nil {
				b.Fatal(err)
			}
			plans[j] = p
		}
		for j := range n {
			if err := o.Destroy(b.Context(), plans[j].Name); err != nil {
				b.Fatal(err)
			}
		}
		vmprovDur += time.Since(start)

		// Baseline: the same records with nsupdate (one process per
		// change, as a shell script calls it) and the same XML with virsh.
		start = time.Now()
		for j, p := range plans {
			xmlFile := filepath.Join(dir, p.Name+".xml")
			xml := strings.Replace(p.DomainXML, "<name>"+p.Name+"</name>", "<name>base-"+p.Name+"</name>", 1)
			if err := os.WriteFile(xmlFile, []byte(xml), 0o600); err != nil {
				b.Fatal(err)
			}
			nsupdate(b, e, name, alg, secret, recordScript(p, "add", j))
			virsh(b, "define "+xmlFile+" ; start base-"+p.Name+" ; destroy base-"+p.Name+" ; undefine base-"+p.Name)
			nsupdate(b, e, name, alg, secret, recordScript(p, "delete", j))
		}
		baseDur += time.Since(start)
	}
	perVM := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N*n) }
	b.ReportMetric(perVM(vmprovDur), "vmprov-ms/vm")
	b.ReportMetric(perVM(baseDur), "nsupdate+virsh-ms/vm")
	b.ReportMetric(float64(vmprovDur)/float64(baseDur), "vmprov/baseline")
}

func recordScript(p *orchestrator.Plan, op string, _ int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "zone example.com.\n")
	for _, r := range p.Records {
		if r.Type == "PTR" {
			continue
		}
		fmt.Fprintf(&sb, "update %s %s 60 %s %s\n", op, r.Name, r.Type, r.Data)
	}
	sb.WriteString("send\n")
	for _, r := range p.Records {
		if r.Type == "PTR" {
			for _, z := range lab.TestReverseZones() {
				if strings.HasSuffix(r.Name, "."+z) {
					fmt.Fprintf(&sb, "zone %s\n", z)
				}
			}
			fmt.Fprintf(&sb, "update %s %s 60 PTR %s\nsend\n", op, r.Name, r.Data)
		}
	}
	return sb.String()
}

func nsupdate(b *testing.B, e *env, name, alg, secret, script string) {
	b.Helper()
	host, port, _ := strings.Cut(e.bind.Addr().String(), ":")
	cmd := exec.Command("nsupdate", "-y", strings.TrimSuffix(alg, ".")+":"+strings.TrimSuffix(name, ".")+":"+secret)
	cmd.Stdin = strings.NewReader("server " + host + " " + port + "\n" + script)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("nsupdate: %v\n%s\n%s", err, out, script)
	}
}

func virsh(b *testing.B, cmds string) {
	b.Helper()
	if out, err := exec.Command("virsh", "-q", "-c", "test:///default", cmds).CombinedOutput(); err != nil {
		b.Fatalf("virsh %s: %v\n%s", cmds, err, out)
	}
}
