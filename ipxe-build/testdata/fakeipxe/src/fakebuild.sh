#!/bin/sh
# Records the target, EMBED, make flags and the config headers into $FAKE_IPXE_LOG, then
# writes a fake output; for .rom targets also TARGET.tmp (holding the embedded script, as
# iPXE's uncompressed image does) and a TARGET.tmp.map naming (obj_ipv6) when
# config/local/general.h enables IPv6 and FAKE_IPXE_NO_IPV6 is unset.
# FAKE_IPXE_FAIL makes it fail; FAKE_IPXE_SLEEP makes it hang.
set -eu
target=$1 embed=$2 flags=$3
log=${FAKE_IPXE_LOG:?FAKE_IPXE_LOG not set}
if [ -n "${FAKE_IPXE_SLEEP:-}" ]; then
	sleep "$FAKE_IPXE_SLEEP"
fi
if [ -n "${FAKE_IPXE_FAIL:-}" ]; then
	echo "fakebuild: $target: $FAKE_IPXE_FAIL" >&2
	exit 2
fi
# One write per record, so records of parallel targets do not interleave.
record=$(printf 'target %s\nembed %s\nflags %s\ncwd-has-makefile %s' "$target" "$embed" "$flags" \
	"$(test -f Makefile && echo yes || echo no)")
printf '%s\n' "$record" >>"$log"
mkdir -p "$log.d"
cat config/local/general.h >"$log.d/general.h"
cat config/local/console.h >"$log.d/console.h"
cat "$embed" >"$log.d/embed.ipxe"
mkdir -p "$(dirname "$target")"
case $target in
*.rom)
	# 0x55 0xAA, 1 x 512 bytes, PCIR at 0x1c: vendor 1af4 device 1000, length 1, code type 0
	{
		printf '\125\252\001'
		head -c 21 /dev/zero
		printf '\034\000\000\000'
		printf 'PCIR\364\032\000\020'
		head -c 8 /dev/zero
		printf '\001\000\000\000\000\000\000\000'
		head -c 460 /dev/zero
	} >"$target"
	cat "$embed" >>"$target"
	cp "$target" "$target.tmp"
	{
		echo "Archive member included to satisfy reference by file (symbol)"
		echo "bin/blib.a(ping.o)  bin/blib.a(config.o) (obj_ping)"
		if [ -z "${FAKE_IPXE_NO_IPV6:-}" ] && grep -q '^#define NET_PROTO_IPV6' config/local/general.h; then
			echo "bin/blib.a(ipv6.o)  bin/blib.a(config.o) (obj_ipv6)"
		fi
	} >"$target.tmp.map"
	;;
*)
	{ echo "fake $target"; cat "$embed"; } >"$target"
	;;
esac
