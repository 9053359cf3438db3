// Package e2e holds vmprov's end-to-end tests: real VMs in the test lab
// (test/lab) booting from a real `vmprov serve`. They need root and the
// Debian packages test/install-deps.sh installs (make deps) and skip, naming
// what is missing, without.
package e2e
