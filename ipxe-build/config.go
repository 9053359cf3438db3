package ipxebuild

import (
	"fmt"
	"slices"
	"strings"
)

// validOption reports whether s is an iPXE config switch name such as DOWNLOAD_PROTO_HTTPS.
func validOption(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// GeneralHeader returns config/local/general.h. config/general.h includes it last, after
// the block that #undefs NET_PROTO_IPV6 for PLATFORM_pcbios, so the #define here is what
// puts IPv6 into BIOS ROMs such as bin/1af41000.rom (seed 000 edited config/general.h in
// place instead). options are further general.h switches to enable (DOWNLOAD_PROTO_HTTPS,
// PING_CMD, NSLOOKUP_CMD, ...); they are sorted and deduplicated so that the header, and
// with it the cache key, does not depend on their order.
func GeneralHeader(options []string) ([]byte, error) {
	opts := slices.Clone(options)
	for _, o := range opts {
		if !validOption(o) {
			return nil, fmt.Errorf("ipxe config: option %q is not an iPXE config switch (want e.g. DOWNLOAD_PROTO_HTTPS)", o)
		}
	}
	slices.Sort(opts)
	opts = slices.Compact(opts)
	var b strings.Builder
	b.WriteString("/* config/local/general.h written by vmprov: included after config/general.h */\n\n")
	b.WriteString("/* IPv6 for every platform: upstream #undefs it for PLATFORM_pcbios */\n")
	b.WriteString("#undef NET_PROTO_IPV6\n#define NET_PROTO_IPV6\n")
	for _, o := range opts {
		if o == "NET_PROTO_IPV6" {
			continue
		}
		fmt.Fprintf(&b, "\n#undef %s\n#define %s\n", o, o)
	}
	return []byte(b.String()), nil
}

// ConsoleHeader returns config/local/console.h: a serial console (COM1, 115200 8N1 by
// config/serial.h) beside the usual one when serial is set, else only a comment.
func ConsoleHeader(serial bool) []byte {
	s := "/* config/local/console.h written by vmprov: included after config/console.h */\n"
	if serial {
		s += "\n#undef CONSOLE_SERIAL\n#define CONSOLE_SERIAL\n"
	}
	return []byte(s)
}
