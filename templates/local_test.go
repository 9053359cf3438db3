package templates

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmprov/vmprov/internal/golden"
)

// TestLocalBoot renders the files an installed host gets: the iPXE script
// that exits to the next boot device, and the GRUB and PXELINUX
// configurations that boot the local disk.
func TestLocalBoot(t *testing.T) {
	in := LocalInput{FQDN: "test-centos7.example.com.", MAC: net.HardwareAddr{2, 4, 6, 8, 0x73, 0xac}}
	tests := []struct {
		name   string
		render func(LocalInput) ([]byte, error)
	}{
		{"local-ipxe", LocalScript},
		{"local-grub", GrubLocalConfig},
		{"local-pxelinux", PXELinuxLocalConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.render(in)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), got)
			bad := in
			bad.FQDN = "bad name.example.com"
			if _, err := tt.render(bad); !errors.Is(err, ErrInvalidHost) {
				t.Errorf("host name %q: err = %v, want ErrInvalidHost", bad.FQDN, err)
			}
		})
	}
	if _, err := GrubLocalConfig(LocalInput{FQDN: in.FQDN}); !errors.Is(err, ErrInvalidHost) {
		t.Errorf("grub.cfg without MAC: err = %v, want ErrInvalidHost", err)
	}
}

// TestGrubLocalSyntax checks the local-boot grub.cfg with GRUB's own
// parser (grub-script-check, package grub-common).
func TestGrubLocalSyntax(t *testing.T) {
	check, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("needs grub-script-check (install grub-common)")
	}
	b, err := GrubLocalConfig(LocalInput{FQDN: "h.example.com", MAC: net.HardwareAddr{2, 4, 6, 8, 0x73, 0xac}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), check, f).CombinedOutput(); err != nil {
		t.Errorf("grub-script-check: %v\n%s", err, out)
	}
}
