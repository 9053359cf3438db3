package orchestrator_test

import "github.com/vmprov/vmprov/dnsupdate/dnstest"

func dnstestFake() *dnstest.Fake {
	return dnstest.NewFake("example.com.", "2.0.192.in-addr.arpa.", "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.")
}
