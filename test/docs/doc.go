// Package docs tests what vmprov's documentation and deployment files say
// against the code: README.md's examples run for real (console blocks against
// a real BIND and the libvirt test driver, YAML blocks through the strict
// config loader), its configuration reference lists every key with its
// default, its BIND snippet passes named-checkconf with the key tsig-keygen
// writes, deploy/vmprov-serve.service grants exactly the capabilities
// `vmprov serve` needs, the Vagrantfile passes `vagrant validate`, and
// test/provision.sh provisions a lab whose installed `vmprov serve` answers
// DHCP.
//
// README conventions the tests rely on:
//   - A ```console block is executed: each "$ vmprov ..." line runs with
//     --config pointing at the README's reference configuration (BIND and
//     libvirt swapped for test instances) and must exit 0; the lines after
//     it are output that must appear, in that order ("..." marks omissions).
//     A console block may hold only vmprov commands.
//   - Every ```yaml block is a complete vmprov configuration.
//   - The first ```yaml block under "## Configuration reference" shows every
//     key; a key with a default shows exactly that default.
package docs
