#!/usr/bin/env bash
# Provisions a Debian 12 machine with the vmprov lab and `vmprov serve` as a
# systemd unit. The Vagrantfile runs it in the box; test/docs runs it too.
#
#   test/provision.sh [SRC]     SRC: the vmprov source tree (default: this script's ../)
#
# Steps: the Debian packages (test/install-deps.sh), Go if the one on PATH is
# older than go.mod asks, `make build`, the lab (test/lab/cmd/vmprov-lab up:
# network namespace vmprov-lab with bridge br135, BIND, libvirtd, radvd), then
# /usr/local/bin/vmprov, /etc/vmprov/vmprov.yaml for the lab, the TSIG key,
# the user vmprov and deploy/vmprov-serve.service with a drop-in that runs it
# inside the lab's namespace, started when systemd is running.
#
# Environment (defaults in brackets):
#   VMPROV_ROOT       install below this directory instead of / [/]; the user
#                     vmprov is created and systemd touched only when it is /
#   VMPROV_LAB_DIR    the lab's directory [/var/lib/vmprov-lab]
#   VMPROV_LAB_NETNS  the lab's network namespace [vmprov-lab]
#   VMPROV_LAB_FLAGS  extra flags for vmprov-lab up, e.g. --no-libvirt []
#   VMPROV_GO         Go release to install when go is missing or too old [1.26.8]
set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
root=${VMPROV_ROOT:-/}
root=${root%/}
lab_dir=${VMPROV_LAB_DIR:-/var/lib/vmprov-lab}
netns=${VMPROV_LAB_NETNS:-vmprov-lab}
go_release=${VMPROV_GO:-1.26.8}
# golang.org/dl, pinned: `goX.Y.Z download` fetches the release and checks
# its SHA-256 before unpacking it.
go_dl=v0.0.0-20260901195035-4393e4265563

say() { echo "provision: $*"; }

cd "$src"
[ -f go.mod ] && [ -f test/install-deps.sh ] || { echo "provision: $src is not a vmprov source tree" >&2; exit 1; }

say "Debian packages"
bash test/install-deps.sh

# Go: the one on PATH if it is at least go.mod's version, else the release
# named by VMPROV_GO, bootstrapped with Debian's golang-go.
need=$(awk '$1 == "go" {print $2; exit}' go.mod)
go_ok() {
	command -v go >/dev/null || return 1
	have=$(go env GOVERSION | sed 's/^go//')
	[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" = "$need" ]
}
if ! go_ok; then
	sdk=/usr/local/lib/vmprov-go
	if [ ! -x "$sdk/go$go_release/bin/go" ]; then
		say "Go $go_release (go.mod needs $need)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go
		GOBIN=$sdk/bin GOFLAGS= /usr/lib/go/bin/go install "golang.org/dl/go$go_release@$go_dl"
		HOME=$sdk "$sdk/bin/go$go_release" download
		ln -sfn "$sdk/sdk/go$go_release" "$sdk/go$go_release"
	fi
	export PATH=$sdk/go$go_release/bin:$PATH
	go_ok || { echo "provision: go $need or newer is needed; $(command -v go) is $(go env GOVERSION)" >&2; exit 1; }
fi

say "build"
# -buildvcs=false: the tree may be a copy without .git, owned by another user.
export GOFLAGS="-mod=mod -buildvcs=false"
make build

say "lab in $lab_dir (namespace $netns)"
# shellcheck disable=SC2086 # VMPROV_LAB_FLAGS is a list of flags
go run ./test/lab/cmd/vmprov-lab up --dir "$lab_dir" --netns "$netns" ${VMPROV_LAB_FLAGS:-}
state=$lab_dir/state.json
field() { sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$state" | head -n1; }
key_file=$(field key_file)
bridge=$(field bridge)
[ -n "$key_file" ] && [ -n "$bridge" ] || { echo "provision: $state lacks key_file or bridge" >&2; exit 1; }

say "install into ${root:-/}"
install -d -m 0755 "$root/usr/local/bin" "$root/etc/vmprov" "$root/etc/systemd/system/vmprov-serve.service.d"
install -m 0755 bin/vmprov "$root/usr/local/bin/vmprov"
install -m 0644 deploy/vmprov-serve.service "$root/etc/systemd/system/vmprov-serve.service"
# The lab's BIND and bridge live in its namespace: so does the service.
cat >"$root/etc/systemd/system/vmprov-serve.service.d/lab.conf" <<EOF
# Written by test/provision.sh: serve the lab's bridge $bridge.
[Service]
NetworkNamespacePath=/run/netns/$netns
EOF
# The lab's configuration as `make lab` writes it (test/lab/demo), with the
# paths and ports of the unit: HTTP on port 80, TFTP on port 69.
go run ./test/lab/cmd/vmprov-lab config --dir "$lab_dir" --key-file "$root/etc/vmprov/tsig.secret" \
	--serve-dir "$root/var/lib/vmprov" --http-port 80 --tftp :69 >"$root/etc/vmprov/vmprov.yaml"
install -m 0640 "$key_file" "$root/etc/vmprov/tsig.secret"

if [ -z "$root" ]; then
	getent passwd vmprov >/dev/null ||
		adduser --system --group --home /var/lib/vmprov --no-create-home --quiet vmprov
	chgrp vmprov /etc/vmprov/tsig.secret
	if [ -d /run/systemd/system ]; then
		# Started, not enabled: the lab's namespace exists only once this
		# script has run, so at boot the unit would fail until it runs again.
		systemctl daemon-reload
		systemctl reset-failed vmprov-serve.service 2>/dev/null || true
		systemctl restart vmprov-serve.service
		say "vmprov-serve.service started: journalctl -u vmprov-serve"
	else
		say "systemd is not running: vmprov-serve.service installed, not started"
	fi
fi
say "done: ip netns exec $netns vmprov list"
