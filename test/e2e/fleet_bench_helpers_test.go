package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// fleetBenchTimeout bounds every single command the fleet benchmarks run.
const fleetBenchTimeout = 3 * time.Minute

// fleetBenchPlan is what the fleet benchmarks read of `vmprov create -o
// json`.
type fleetBenchPlan struct {
	Name       string             `json:"name"`
	Hypervisor string             `json:"hypervisor"`
	DomainXML  string             `json:"domain_xml"`
	Records    []fleetBenchRecord `json:"records"`
}

type fleetBenchRecord struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// fleetBenchTarget is a hypervisor as the baseline scripts reach it: a
// remote URI and the target directory of its storage pool, which such a
// script has written down once.
type fleetBenchTarget struct {
	hv       *lab.Hypervisor
	uri      string
	poolPath string
}

// fleetBenchCreate runs `vmprov create` for one VM of the fleet benchmarks
// and returns its plan.
func fleetBenchCreate(b *testing.B, e *demo.Env, name, ip string) fleetBenchPlan {
	b.Helper()
	out, err := e.Vmprov(b.Context(), "create", "--name", name, "--ip", ip, "--distro", "core",
		"--memory", "64", "--vcpus", "1", "--disk-size", "1", "--boot", "hd", "-o", "json")
	if err != nil {
		b.Fatal(err)
	}
	var p fleetBenchPlan
	if err := json.Unmarshal(out, &p); err != nil {
		b.Fatalf("vmprov create -o json: %v\n%s", err, out)
	}
	if p.Name != name || p.DomainXML == "" || len(p.Records) == 0 {
		b.Fatalf("vmprov create -o json: no name, domain XML or records:\n%s", out)
	}
	return p
}

// fleetBenchNetns runs argv in the lab's namespace, bounded by
// fleetBenchTimeout, with stdin if not empty, and returns its combined
// output.
func fleetBenchNetns(ctx context.Context, e *demo.Env, stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fleetBenchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.Lab.State.Netns}, argv...)...)
	// virsh's ssh child may outlive a killed virsh, holding the pipe.
	cmd.WaitDelay = 2 * time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// fleetBenchVirsh runs `virsh -q -c URI ARGS...` in the lab's namespace,
// one process, as a script does.
func fleetBenchVirsh(b *testing.B, e *demo.Env, uri string, args ...string) string {
	b.Helper()
	out, err := fleetBenchNetns(b.Context(), e, "", append([]string{"virsh", "-q", "-c", uri}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// fleetBenchTargets returns the fleet's hypervisors as the baseline reaches
// them: over qemu+tcp only when tcpOnly (every fleet libvirtd listens on
// TCP, hv1 too), else over the URIs vmprov's configuration names (qemu+ssh
// for hv1). The pool paths are read here, outside any timing.
func fleetBenchTargets(b *testing.B, e *demo.Env, f *lab.Fleet, tcpOnly bool) []fleetBenchTarget {
	b.Helper()
	var ts []fleetBenchTarget
	for _, h := range f.Hypervisors {
		uri := h.URI
		if tcpOnly {
			uri = "qemu+tcp://" + h.Addr.String() + "/system"
		}
		out, err := h.Libvirt.Virsh(b.Context(), "pool-dumpxml", e.Lab.State.Pool)
		if err != nil {
			b.Fatal(err)
		}
		m := regexp.MustCompile(`<path>([^<]+)</path>`).FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("%s: pool %s has no target path:\n%s", h.Name, e.Lab.State.Pool, out)
		}
		ts = append(ts, fleetBenchTarget{hv: h, uri: uri, poolPath: m[1]})
	}
	return ts
}

// fleetBenchScriptVM is one VM of the baseline: vmprov's plan of a VM
// renamed, its domain XML pointed at a volume in the target's pool.
type fleetBenchScriptVM struct {
	name    string
	xmlFile string
	records []fleetBenchRecord
	target  fleetBenchTarget
}

var (
	fleetBenchSourceFile = regexp.MustCompile(`<source file="[^"]*"`)
	fleetBenchTXTHV      = regexp.MustCompile(`hypervisor=[^" ]*`)
)

// fleetBenchRename turns vmprov's plan p into the baseline's VM name on
// target t: the same domain XML and records with the name replaced (names
// are of fixed width, so that no name is a prefix of another), the disk in
// t's pool and TXT hypervisor= naming t.
func fleetBenchRename(p fleetBenchPlan, name, dir string, t fleetBenchTarget) (fleetBenchScriptVM, error) {
	xml := strings.ReplaceAll(p.DomainXML, p.Name, name)
	xml = fleetBenchSourceFile.ReplaceAllString(xml, `<source file="`+filepath.Join(t.poolPath, name+".qcow2")+`"`)
	vm := fleetBenchScriptVM{name: name, xmlFile: filepath.Join(dir, name+".xml"), target: t}
	for _, r := range p.Records {
		r.Name = strings.ReplaceAll(r.Name, p.Name, name)
		r.Data = strings.ReplaceAll(r.Data, p.Name, name)
		if r.Type == "TXT" {
			r.Data = fleetBenchTXTHV.ReplaceAllString(r.Data, "hypervisor="+t.hv.Name)
		}
		vm.records = append(vm.records, r)
	}
	// Writing the file is part of the script's work but not of the
	// timing's interest; it is written here and timed nowhere.
	return vm, os.WriteFile(vm.xmlFile, []byte(xml), 0o600)
}

// fleetBenchNsupdate is the nsupdate script of a VM's records: op is "add"
// or "delete"; the forward records in one message, each PTR in a message
// to its reverse zone, as seed 000's scripts send them.
func fleetBenchNsupdate(e *demo.Env, records []fleetBenchRecord, op string) (string, error) {
	host, port, err := net.SplitHostPort(e.Lab.State.DNS)
	if err != nil {
		return "", fmt.Errorf("lab DNS %q: %w", e.Lab.State.DNS, err)
	}
	ttl := ""
	if op == "add" {
		ttl = " 300"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "server %s %s\nzone %s\n", host, port, fleetBenchDotted(e.Lab.State.Zone))
	for _, r := range records {
		if r.Type != "PTR" {
			fmt.Fprintf(&sb, "update %s %s%s %s %s\n", op, r.Name, ttl, r.Type, r.Data)
		}
	}
	sb.WriteString("send\n")
	for _, r := range records {
		if r.Type != "PTR" {
			continue
		}
		for _, z := range e.Lab.State.ReverseZones {
			if strings.HasSuffix(fleetBenchDotted(r.Name), "."+fleetBenchDotted(z)) {
				fmt.Fprintf(&sb, "zone %s\n", fleetBenchDotted(z))
			}
		}
		fmt.Fprintf(&sb, "update %s %s%s PTR %s\nsend\n", op, r.Name, ttl, r.Data)
	}
	return sb.String(), nil
}

func fleetBenchDotted(s string) string { return strings.TrimSuffix(s, ".") + "." }

// fleetBenchRunNsupdate runs `nsupdate -k KEYFILE` with script in the
// lab's namespace.
func fleetBenchRunNsupdate(b *testing.B, e *demo.Env, script string) {
	b.Helper()
	if _, err := fleetBenchNetns(b.Context(), e, script, "nsupdate", "-k", e.Lab.State.KeyFile); err != nil {
		b.Fatalf("%v\n%s", err, script)
	}
}

// fleetBenchScriptCreate is the baseline's create of one VM: a volume, the
// domain defined and started, the records added; one process each.
func fleetBenchScriptCreate(b *testing.B, e *demo.Env, pool string, vm fleetBenchScriptVM) {
	b.Helper()
	fleetBenchVirsh(b, e, vm.target.uri, "vol-create-as", pool, vm.name+".qcow2", "1G", "--format", "qcow2")
	fleetBenchVirsh(b, e, vm.target.uri, "define", vm.xmlFile)
	fleetBenchVirsh(b, e, vm.target.uri, "start", vm.name)
	script, err := fleetBenchNsupdate(e, vm.records, "add")
	if err != nil {
		b.Fatal(err)
	}
	fleetBenchRunNsupdate(b, e, script)
}

// fleetBenchScriptDestroy undoes fleetBenchScriptCreate.
func fleetBenchScriptDestroy(b *testing.B, e *demo.Env, pool string, vm fleetBenchScriptVM) {
	b.Helper()
	fleetBenchVirsh(b, e, vm.target.uri, "destroy", vm.name)
	fleetBenchVirsh(b, e, vm.target.uri, "undefine", vm.name)
	fleetBenchVirsh(b, e, vm.target.uri, "vol-delete", "--pool", pool, vm.name+".qcow2")
	script, err := fleetBenchNsupdate(e, vm.records, "delete")
	if err != nil {
		b.Fatal(err)
	}
	fleetBenchRunNsupdate(b, e, script)
}

// fleetBenchRequireClean fails b if a domain, a volume or a DNS record
// whose name contains one of marks is left on the fleet or in the lab's
// zones. Marks end in '-', which neither hex nor the base64 of a TSIG
// signature holds. Untimed.
func fleetBenchRequireClean(b *testing.B, e *demo.Env, f *lab.Fleet, marks ...string) {
	b.Helper()
	var left []string
	has := func(s string) bool {
		s = strings.ToLower(s)
		for _, m := range marks {
			if strings.Contains(s, m) {
				return true
			}
		}
		return false
	}
	for _, h := range f.Hypervisors {
		for _, args := range [][]string{{"list", "--all", "--name"}, {"vol-list", e.Lab.State.Pool}} {
			out, err := h.Libvirt.Virsh(b.Context(), args...)
			if err != nil {
				b.Fatal(err)
			}
			for _, ln := range strings.Split(out, "\n") {
				if has(ln) {
					left = append(left, h.Name+" "+args[0]+": "+strings.TrimSpace(ln))
				}
			}
		}
	}
	host, port, err := net.SplitHostPort(e.Lab.State.DNS)
	if err != nil {
		b.Fatal(err)
	}
	for _, z := range append([]string{e.Lab.State.Zone}, e.Lab.State.ReverseZones...) {
		out, err := fleetBenchNetns(b.Context(), e, "", "dig", "-k", e.Lab.State.KeyFile, "@"+host, "-p", port, "AXFR", fleetBenchDotted(z), "+noall", "+answer")
		if err != nil {
			b.Fatal(err)
		}
		for _, ln := range strings.Split(out, "\n") {
			if has(ln) {
				left = append(left, "DNS: "+strings.Join(strings.Fields(ln), " "))
			}
		}
	}
	if len(left) > 0 {
		b.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
	}
}

// fleetBenchLoad returns the 1-minute load average and the whole
// /proc/loadavg triple for logs.
func fleetBenchLoad() (float64, string) {
	s := loadAverage()
	l, _ := strconv.ParseFloat(strings.Fields(s)[0], 64)
	return l, s
}
