// Package lab starts the real parts vmprov is tested against — BIND (and,
// for the DNS tests, Knot DNS and PowerDNS) with TSIG-protected dynamic
// zones, network namespaces with a bridge, libvirtd, radvd, a fleet of
// libvirtds reached over qemu+tcp and qemu+ssh (Lab.StartFleet) — and tears
// them down again.
//
// One implementation serves Go integration tests (BINDForTest,
// NamespaceForTest, ...), `make lab` (Up / Down through cmd/vmprov-lab, and
// the lab scenario of subpackage demo, which the end-to-end tests run too)
// and provisioning of development machines. Every daemon is a child process
// started by PID; nothing is ever stopped by name. Up records what it started
// in DIR/state.json so that Down can undo it from another process.
//
// Everything here needs root and the Debian packages test/install-deps.sh
// installs (`make deps`); the *ForTest helpers skip the test, naming what is
// missing, when they are absent.
package lab
