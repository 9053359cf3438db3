#!/usr/bin/env bash
# Installs the Debian 12 packages vmprov's tests, benchmarks and lab use.
# Used by .ci/run, `make lab` and the Vagrantfile's provisioning.
set -euo pipefail

packages=(
	# build
	make gcc pkg-config libvirt-dev git ca-certificates
	# DNS: BIND with RFC 2136 + TSIG, nsupdate, dig
	bind9 bind9-utils dnsutils
	# DNS interop: Knot DNS and PowerDNS Authoritative (gsqlite3 backend)
	knot pdns-server pdns-backend-sqlite3 pdns-backend-bind sqlite3
	# libvirt + QEMU (TCG) + firmware and iPXE ROMs
	libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf
	# lab networking
	iproute2 radvd procps
	# protocol peers and clients
	curl atftp tftp-hpa
	# DHCP clients and relays against vmprov serve (test/interop); dhcpcd-base
	# is dhcpcd without the service that would run it on the host's interfaces
	isc-dhcp-client udhcpc dhcpcd-base isc-dhcp-relay
	# benchmark peers (make bench): perfdhcp, Kea, dnsmasq, tftpd-hpa, nginx, wrk
	kea-admin kea-dhcp4-server kea-dhcp6-server dnsmasq-base tftpd-hpa nginx-light wrk
	# iPXE build toolchain (vmprov ipxe build), ISO targets included
	perl liblzma-dev mtools isolinux syslinux-common genisoimage
	# GRUB netboot image (vmprov grub build)
	grub-efi-amd64-bin
	# the real Debian 12 installer (linux, initrd.gz) that the e2e tests boot
	# through vmprov's chain (test/lab's d-i helper)
	debian-installer-12-netboot-amd64
	# arm64 UEFI: QEMU's aarch64 system emulator, AAVMF and the arm64 installer
	# (its signed shim bootnetaa64.efi and GRUB grubaa64.efi, linux, initrd.gz)
	qemu-system-arm qemu-efi-aarch64 debian-installer-12-netboot-arm64
	# Secure Boot: sbverify checks the signatures of the chain serve hands out
	sbsigntool
	# a fleet of hypervisors: sshd inside a lab hypervisor's namespaces, the far
	# end of qemu+ssh:// (its own service stays down, as below)
	openssh-server openssh-client
	# Vagrantfile check (vagrant validate, libvirt provider)
	vagrant vagrant-libvirt
	# systemd unit check (systemd-analyze) and running serve with the unit's
	# capabilities (setpriv); as and ld for the lab's stand-in kernel
	systemd util-linux binutils
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
# The lab and the tests start BIND, libvirtd, Kea, nginx, tftpd-hpa and sshd
# themselves, inside network namespaces; the packages' own services must not
# start on the host's interfaces. policy-rc.d keeps them down while
# installing (a policy already in place is left as it is).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
