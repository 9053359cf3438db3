// Package bench measures `vmprov serve` side by side with the servers it
// replaces, in one run, on a veth pair between two network namespaces:
//
//   - DHCPv4 capacity (perfdhcp DORA) of vmprov, Kea (memfile) and dnsmasq
//     serving the same reservations and boot file, and DHCPv6 capacity
//     (perfdhcp -6 Solicit-Advertise-Request-Reply) of vmprov and Kea
//     DHCPv6 with the same reservations, each beside the UDP ceiling of
//     the segment;
//   - TFTP: 100 concurrent downloads of a 1 MiB loader against tftpd-hpa;
//   - TFTP windowsize (RFC 7440): Debian's atftp downloads the 1 MiB loader
//     with windowsize 16 from vmprov, against vmprov lockstep and tftpd-hpa
//     (no windowsize), with one client and with ten at once;
//   - HTTP: concurrent downloads of a 64 MiB initrd against nginx (wrk).
//
// vmprov runs as operators run it: the real binary, `vmprov serve --config
// FILE`, against a real BIND holding the hosts' A, AAAA, PTR and TXT
// records.
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
// means.
// VMPROV_BENCH_TFTP_WINDOW_CLIENTS and VMPROV_BENCH_TFTP_WINDOW_GETS set
// BenchmarkServeTFTPWindow's concurrent atftp processes (default 10) and
// the downloads each makes (default 10).
//
// The DHCP benchmarks measure capacity, not overload: perfdhcp offers each
// server a ladder of rates (VMPROV_BENCH_DHCP_RATES, comma-separated,
// default 2000,4000,6000,8000,12000,16000,20000 a second), each for
// VMPROV_BENCH_DHCP_SECONDS (default 3), and a server's ladder stops at
// its first step where more than 2.5 % of the exchanges offered did not
// complete. The benchmark reports each server's highest sustained rate,
// vmprov's ratio to each peer, and its ratio to the ceiling: the rate a
// bare responder in this process sustains on the same veth with the same
// ladder, answering each request with a reply crafted from it, without
// DNS or any decision. Every step is logged with the load average beside
// it; when every server fails the lowest step the run says it measured
// overload. VMPROV_BENCH_HTTP_SECONDS sets the length of each wrk round
// (5 s).
//
// BenchmarkTFTPInProcess runs vmprov's TFTP server inside the test process
// for `go test -cpuprofile`; its rate is not comparable to the others, as
// server and clients share one Go runtime.
//
// Only addresses of 198.18.0.0/15 and 2001:db8::/32 inside namespaces the
// run creates are used; every process is stopped by its PID and every load
// is bounded.
package bench
