package templates

import "fmt"

// InstallBoot is what a host's installer boots, as install/default.ipxe and
// grub.cfg compute it: the kernel and initrd URLs, the kernel command line
// and the answer file (kickstart, preseed or autoinstall) URL.
type InstallBoot struct {
	Distribution string `json:"distribution"`
	Kernel       string `json:"kernel"`
	Initrd       string `json:"initrd"`
	Cmdline      string `json:"cmdline"`
	AnswerFile   string `json:"answer_file"`
}

// Install returns the install boot of h: the same values grub.cfg
// renders and install/default.ipxe computes at boot (variables a site
// bootstrap script sets in iPXE are not known here).
func Install(h Host) (InstallBoot, error) {
	x, err := h.prepare()
	if err != nil {
		return InstallBoot{}, fmt.Errorf("install: %w", err)
	}
	return InstallBoot{
		Distribution: x.Dist.Name,
		Kernel:       x.PXEBootURL + "/" + x.Dist.Kernel,
		Initrd:       x.PXEBootURL + "/" + x.Dist.Initrd,
		Cmdline:      x.Cmdline,
		AnswerFile:   x.answerURL(),
	}, nil
}
