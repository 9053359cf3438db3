// Package bench measures `vmprov serve` side by side with the servers it
// replaces, in one run, on a veth pair between two network namespaces:
//
//   - DHCPv4 DORA rate (perfdhcp) against vmprov, Kea (memfile) and dnsmasq
//     serving the same reservations and boot file;
//   - TFTP: 100 concurrent downloads of a 1 MiB loader against tftpd-hpa;
//   - HTTP: concurrent downloads of a 64 MiB initrd against nginx (wrk).
//
// vmprov runs as operators run it: the real binary, `vmprov serve --config
// FILE`, against a real BIND holding the hosts' A, PTR and TXT records.
// Every server runs alone in the server namespace, one after another; the
// load generators run in the client namespace. The benchmarks report each
// server's rate and vmprov's ratio to every peer as custom metrics; the
// tests of the package check, without timing anything, that every server
// answers the same reservations and serves byte-identical files.
//
// Only addresses of 198.18.0.0/15 inside namespaces the run creates are
// used; every process is stopped by its PID and every load is bounded.
package bench
