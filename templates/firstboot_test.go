package templates

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// firstbootNames returns the shell variables the firstboot script assigns (and a few
// words of its unit file that look like assignments), read from the script itself so that
// a variable added later is tested too.
func firstbootNames(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)(?:^|[\s;(])([A-Za-z_][A-Za-z0-9_]*)=|\bfor ([A-Za-z_][A-Za-z0-9_]*) in\b`)
	seen := map[string]bool{}
	var names []string
	for _, m := range re.FindAllStringSubmatch(string(Firstboot()), -1) {
		n := m[1] + m[2]
		if n == "puppet_server" || n == "puppet_environment" {
			continue // read from the host variables of the same name on purpose
		}
		if !seen[n] && ValidVarName(n) == nil {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, want := range []string{"root", "etc", "state", "cmdline", "env", "hook"} {
		if !seen[want] {
			t.Fatalf("firstbootNames found %q, not %s: the pattern no longer matches the script", names, want)
		}
	}
	return names
}

// TestFirstbootInternalNames runs the first boot of the firstboot script with sh, with a
// kernel command line holding a host variable named like each of the script's own
// variables (and PATH and IFS) and pointing at a decoy directory: the script must run the
// hooks of its own root, hand them the variable, and leave the decoy alone.
func TestFirstbootInternalNames(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	names := append(firstbootNames(t), "PATH", "IFS")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			root, decoy := t.TempDir(), t.TempDir()
			script := filepath.Join(t.TempDir(), "firstboot")
			if err := os.WriteFile(script, Firstboot(), 0o755); err != nil {
				t.Fatal(err)
			}
			// The decoy holds a hook and an executable named like every command the
			// script runs, each leaving a mark; the variable points into it.
			mark := filepath.Join(decoy, "marks")
			decoyHook := "#!/bin/sh\necho \"$0\" >>" + shQuote(mark) + "\n"
			for _, f := range []string{"etc/vmprov/firstboot.d/10-decoy", "firstboot.d/10-decoy", "hook",
				"bin/mkdir", "bin/cat", "bin/sed", "bin/chmod", "bin/touch", "bin/dirname", "bin/env", "bin/sh", "bin/systemctl"} {
				writeExec(t, filepath.Join(decoy, f), decoyHook)
			}
			value := map[string]string{
				"etc":     filepath.Join(decoy, "etc/vmprov"),
				"hook":    filepath.Join(decoy, "hook"),
				"PATH":    filepath.Join(decoy, "bin"),
				"cmdline": filepath.Join(decoy, "hook"),
				"IFS":     "/",
			}[name]
			if value == "" {
				value = decoy
			}
			before := tree(t, decoy)

			seen := filepath.Join(root, "seen")
			writeExec(t, filepath.Join(root, "etc/vmprov/firstboot.d/10-hook"),
				"#!/bin/sh\nprintf '%s\\n' \"${"+name+"-unset}\" >>"+shQuote(seen)+"\n")
			cmdline := filepath.Join(t.TempDir(), "cmdline")
			line := "BOOT_IMAGE=/vmlinuz puppet_server=puppet.example.com " + name + "=" + value + "\n"
			if err := os.WriteFile(cmdline, []byte(line), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), sh, script, cmdline)
			cmd.Env = append(os.Environ(), "VMPROV_FIRSTBOOT_ROOT="+root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("firstboot: %v\n%s", err, out)
			}

			if got, err := os.ReadFile(seen); err != nil {
				t.Errorf("the hook of %s did not run: %v", root, err)
			} else if want := value + "\n"; name != "IFS" && name != "PATH" && string(got) != want {
				// (sh may not take IFS from its environment, and PATH is checked below.)
				t.Errorf("the hook saw %s=%q, want %q once", name, got, want)
			}
			if got, err := os.ReadFile(mark); err == nil {
				t.Errorf("the decoy ran:\n%s", got)
			}
			if after := tree(t, decoy); !slices.Equal(before, after) {
				t.Errorf("the decoy changed: %q, was %q", after, before)
			}
			env, err := os.ReadFile(filepath.Join(root, "etc/vmprov/firstboot.env"))
			if err != nil || !strings.Contains(string(env), "\n"+name+"='"+value+"'\n") {
				t.Errorf("firstboot.env lacks %s='%s': %v\n%s", name, value, err, env)
			}
			if conf, err := os.ReadFile(filepath.Join(root, "etc/puppetlabs/puppet/puppet.conf")); err != nil || string(conf) != "[agent]\nserver = puppet.example.com\n" {
				t.Errorf("puppet.conf = %q, %v", conf, err)
			}
			if _, err := os.Stat(filepath.Join(root, "var/lib/vmprov/firstboot.done")); err != nil {
				t.Errorf("done marker: %v", err)
			}
			if t.Failed() {
				t.Logf("firstboot output:\n%s", out)
			}
		})
	}
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// tree lists the files under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
