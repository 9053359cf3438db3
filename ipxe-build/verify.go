package ipxebuild

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
)

// LinkedObjects returns the iPXE configuration objects (obj_ipv6, obj_https, ...) named in
// a GNU ld link map: config/config*.c references obj_NAME for every enabled feature, and ld
// lists each archive member it pulled in "(obj_NAME)". The result is sorted and unique.
func LinkedObjects(linkMap []byte) []string {
	var out []string
	for rest := linkMap; ; {
		i := bytes.Index(rest, []byte("(obj_"))
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		j := 0
		for j < len(rest) && (rest[j] == '_' || rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z' || rest[j] >= '0' && rest[j] <= '9') {
			j++
		}
		if j < len(rest) && rest[j] == ')' {
			out = append(out, string(rest[:j]))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// verifyOutput inspects what make leaves beside a target (TARGET.tmp, the uncompressed ELF
// image, and TARGET.tmp.map, its link map) and fills o.Objects and o.ScriptEmbedded. It
// fails if the link map shows IPv6 was left out: that is the point of the build (seed 000).
func verifyOutput(built string, script []byte, o *Output) error {
	if m, err := os.ReadFile(built + ".tmp.map"); err == nil {
		o.Objects = LinkedObjects(m)
		if !slices.Contains(o.Objects, "obj_ipv6") {
			return fmt.Errorf("%s was linked without IPv6 (no obj_ipv6 in %s.tmp.map) although config/local/general.h defines NET_PROTO_IPV6", o.Target, o.Target)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if elf, err := os.ReadFile(built + ".tmp"); err == nil {
		o.ScriptEmbedded = bytes.Contains(elf, script)
		if !o.ScriptEmbedded {
			return fmt.Errorf("%s: the embedded script is not in %s.tmp", o.Target, o.Target)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
