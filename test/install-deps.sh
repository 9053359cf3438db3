#!/usr/bin/env bash
# Installs the Debian 12 packages vmprov's tests, benchmarks and lab use.
# Used by .ci/run, `make lab` and the Vagrantfile's provisioning.
set -euo pipefail

packages=(
	# build
	make gcc pkg-config libvirt-dev git ca-certificates
	# DNS: BIND with RFC 2136 + TSIG, nsupdate, dig
	bind9 bind9-utils dnsutils
	# libvirt + QEMU (TCG) + firmware and iPXE ROMs
	libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf
	# lab networking
	iproute2 radvd procps
	# protocol peers and clients
	curl atftp tftp-hpa
	# iPXE build toolchain (vmprov ipxe build)
	perl liblzma-dev mtools
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages are installed"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
