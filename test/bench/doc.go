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
// Run them with `make bench`, or alone:
//
//	go test -run '^$' -bench . -benchtime 1x ./test/bench/ -v
//
// Each benchmark runs its whole comparison once (it takes longer than the
// default benchtime); -benchtime Nx repeats it N times and reports the
// means. VMPROV_BENCH_DHCP_RATE and VMPROV_BENCH_DHCP_SECONDS set
// perfdhcp's offered rate (default 10000 a second) and period (10 s);
// VMPROV_BENCH_HTTP_SECONDS the length of each wrk round (5 s).
// BenchmarkTFTPInProcess runs vmprov's TFTP server inside the test process
// for `go test -cpuprofile`; its rate is not comparable to the others, as
// server and clients share one Go runtime.
//
// Only addresses of 198.18.0.0/15 inside namespaces the run creates are
// used; every process is stopped by its PID and every load is bounded.
package bench
