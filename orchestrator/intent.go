package orchestrator

import (
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/templates"
)

// checkIntent checks the boot intent that create, host add and reinstall
// write from --distro, --script and --txt, by the rules `vmprov serve`
// renders it with (templates.CheckIntent): a TXT record serve would refuse
// is never written. Each error names the flag and the value it refuses.
func checkIntent(distro, script string, vars []inventory.Var) error {
	if _, err := templates.LookupDistribution(distro); err != nil {
		return invalid("--distro: %w", err)
	}
	in := []templates.Var{{Name: inventory.KeyDistribution, Value: distro}}
	if script != "" {
		if err := templates.CheckScript(script); err != nil {
			return invalid("--script %s: %w", script, err)
		}
		in = append(in, templates.Var{Name: inventory.KeyFilename, Value: script})
	}
	for _, v := range vars {
		switch v.Key {
		case inventory.KeyFilename:
			return invalid("--txt %s=%s: set %s with --script", v.Key, v.Value, v.Key)
		case inventory.KeyDistribution:
			return invalid("--txt %s=%s: set %s with --distro", v.Key, v.Value, v.Key)
		case inventory.KeyFirmware:
			return invalid("--txt %s=%s: set %s with --firmware", v.Key, v.Value, v.Key)
		case inventory.KeyHypervisor:
			return invalid("--txt %s=%s: vmprov records where a VM is placed; choose the hypervisor with create --on", v.Key, v.Value)
		case inventory.KeyState, inventory.KeyBuildID:
			return invalid("--txt %s=%s: %s is vmprov's build record (docs/design.md, \"A host's life\"): create, host add and reinstall set it, vmprov serve advances it", v.Key, v.Value, v.Key)
		}
		tv := templates.Var{Name: v.Key, Value: v.Value}
		if err := templates.CheckVar(tv); err != nil {
			return invalid("--txt %s=%s: %w", v.Key, v.Value, err)
		}
		in = append(in, tv)
	}
	// Each value passed; what is left is a name given twice.
	if err := templates.CheckIntent(in); err != nil {
		return invalid("--txt: %w", err)
	}
	return nil
}

// templateVars converts a boot intent to the renderers' variables.
func templateVars(in inventory.Intent) []templates.Var {
	out := make([]templates.Var, len(in))
	for i, v := range in {
		out[i] = templates.Var{Name: v.Key, Value: v.Value}
	}
	return out
}
