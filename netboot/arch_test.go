package netboot_test

import (
	"testing"

	"github.com/vmprov/vmprov/netboot"
)

func TestArchPXE(t *testing.T) {
	for _, tt := range []struct{ in, want netboot.Arch }{
		{netboot.ArchBIOS, netboot.ArchBIOS},
		{netboot.ArchUEFIx64, netboot.ArchUEFIx64},
		{15, netboot.ArchUEFIx86},
		{netboot.ArchHTTPx64, netboot.ArchUEFIx64},
		{17, netboot.ArchUEFIBC},
		{18, 10},
		{netboot.ArchHTTPARM64, netboot.ArchUEFIARM64},
	} {
		if got := tt.in.PXE(); got != tt.want {
			t.Errorf("Arch(%d).PXE() = %d, want %d", tt.in, got, tt.want)
		}
	}
}
