// Package archtest checks the dependency directions of docs/design.md ("Package map").
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vmprov/vmprov"

// deps returns the packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func packages(t *testing.T, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", pattern).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}

func TestDependencyDirections(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	tests := []struct {
		pattern   string
		forbidden []string // import path prefixes
		allowed   []string // packages allowed although a prefix forbids them
	}{
		// Leaves: they know nothing of the rest of vmprov.
		{module + "/config", []string{module + "/"}, nil},
		{module + "/inventory", []string{module + "/"}, nil},
		{module + "/dnsupdate", []string{module + "/"}, nil},
		{module + "/templates", []string{module + "/"}, nil},
		// The boot service never reaches into the VM workflow or libvirt.
		{module + "/netboot/...", []string{module + "/orchestrator", "libvirt.org/", module + "/cmd/"}, nil},
		// The boot servers take explicit configuration: only serveconfig,
		// the mapping the command line uses, reads the YAML configuration.
		{module + "/netboot/...", []string{module + "/config"}, nil},
		// Build states are DNS and the intent only: the protocol servers use
		// them, never the other way round.
		{module + "/netboot/buildstate", []string{module + "/netboot/httpboot", module + "/netboot/dhcp4", module + "/netboot/dhcp6",
			module + "/netboot/tftp", module + "/netboot/bsdp", module + "/netboot/serveconfig"}, nil},
		// The workflow talks to ports; only the command line wires adapters.
		{module + "/orchestrator", []string{"libvirt.org/go/libvirt/", module + "/netboot", module + "/cmd/"}, nil},
		// The fleet knows hypervisors through the port only.
		{module + "/orchestrator/fleet", []string{"libvirt.org/go/libvirt/", module + "/netboot", module + "/cmd/", module + "/config", module + "/dnsupdate"}, nil},
		// The ROM build and install use the hypervisor port (virt.VolumeStore)
		// and nothing else of the workflow; the command line hands them the
		// libvirt adapter.
		{module + "/ipxe-build", []string{module + "/orchestrator", "libvirt.org/go/libvirt/", module + "/netboot", module + "/cmd/"},
			[]string{module + "/orchestrator/virt"}},
	}
	for _, tt := range tests {
		for _, pkg := range packages(t, tt.pattern) {
			if strings.HasSuffix(pkg, "test") && pkg != tt.pattern {
				continue // conformance suites and fakes may use the real adapters
			}
			if pkg == module+"/netboot/serveconfig" && slices.Contains(tt.forbidden, module+"/config") {
				continue
			}
			for _, d := range deps(t, pkg) {
				if d == pkg || slices.Contains(tt.allowed, d) {
					continue
				}
				for _, f := range tt.forbidden {
					if strings.HasPrefix(d, f) || d == strings.TrimSuffix(f, "/") {
						t.Errorf("%s imports %s, which docs/design.md (\"Package map\") forbids", pkg, d)
					}
				}
			}
		}
	}
}

func TestOnlyCLIImportsCobra(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	for _, pkg := range packages(t, module+"/...") {
		if strings.HasPrefix(pkg, module+"/cmd/") || strings.HasPrefix(pkg, module+"/test/") {
			continue
		}
		for _, d := range deps(t, pkg) {
			if strings.HasPrefix(d, "github.com/spf13/cobra") {
				t.Errorf("%s imports %s: only cmd/vmprov/cli may", pkg, d)
			}
		}
	}
}
