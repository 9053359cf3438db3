// Package interop tests `vmprov serve` against clients and relays vmprov did
// not write: ISC dhclient (-4 and -6), busybox udhcpc, dhcpcd and ISC
// dhcrelay (-4 and -6), from Debian's packages, in network namespaces of
// their own.
//
// A client proves what it got by what it reports and configures: the
// environment it hands its hook script, its lease file, the address and
// route on its interface. Every client runs once on a bridge where vmprov
// serves directly and once behind dhcrelay, on a client bridge without a
// vmprov interface, and must get the same answers both ways.
//
// No client touches the machine: each has its own configuration, lease,
// PID and hook files in the test's directory, and its hook only records
// and configures the client's own interface, where the packaged scripts
// would rewrite /etc/resolv.conf and the host name.
//
// The tests need root and the packages test/install-deps.sh installs; they
// skip, naming what is missing, without them.
package interop
