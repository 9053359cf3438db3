package dhcp6_test

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

var xid = dhcpv6.TransactionID{0x12, 0x34, 0x56}

// msg builds a client message.
func msg(typ dhcpv6.MessageType, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: typ, TransactionID: xid}
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func duidLL(mac net.HardwareAddr) dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}
}

func duidLLT(mac net.HardwareAddr) dhcpv6.DUID {
	return &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 700000000, LinkLayerAddr: mac}
}

var duidUUID dhcpv6.DUID = &dhcpv6.DUIDUUID{UUID: [16]byte{0x4c, 0x4c, 0x45, 0x44, 0x00, 0x4b, 0x10, 0x38, 0x80, 0x31, 0xb2, 0xc0, 0x4f, 0x4b, 0x33, 0x32}}

var duidEN dhcpv6.DUID = &dhcpv6.DUIDEN{EnterpriseNumber: 43793, EnterpriseIdentifier: []byte{0x9d, 0x2e, 0x01, 0x77, 0x42, 0x10, 0xaa, 0x01}}

func hexDUID(d dhcpv6.DUID) string { return hex.EncodeToString(d.ToBytes()) }

// ia is an IA_NA with IAID 1 holding addrs (as a client hints or renews).
func ia(addrs ...netip.Addr) dhcpv6.Modifier {
	o := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
	for _, a := range addrs {
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(a.AsSlice()), PreferredLifetime: time.Hour, ValidLifetime: time.Hour})
	}
	return dhcpv6.WithOption(o)
}

func withUserClass(uc string) dhcpv6.Modifier { return dhcpv6.WithUserClass([]byte(uc)) }

func withVendorClass(data string) dhcpv6.Modifier {
	return dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(data)}})
}

// relay wraps inner in a Relay-forward from a relay on VLAN 136.
func relay(inner dhcpv6.DHCPv6, hop uint8, link, peer string, opts ...dhcpv6.Option) *dhcpv6.RelayMessage {
	r := &dhcpv6.RelayMessage{
		MessageType: dhcpv6.MessageTypeRelayForward,
		HopCount:    hop,
		LinkAddr:    net.ParseIP(link),
		PeerAddr:    net.ParseIP(peer),
	}
	for _, o := range opts {
		r.AddOption(o)
	}
	r.AddOption(dhcpv6.OptRelayMessage(inner))
	return r
}

// Expected configuration options on VLAN 135 and 136.
var (
	dns135  = []string{"2001:db8:135::53"}
	domains = []string{"example.com"}
	ianaOf  = func(a netip.Addr) []string {
		return []string{"IA_NA 00000001 T1=30m0s T2=48m0s " + a.String() + "/1h0m0s/1h0m0s"}
	}
	noAddrs = []string{"IA_NA 00000001 T1=0s T2=0s NoAddrsAvail"}
)

func TestHandle(t *testing.T) {
	for bname, newBackend := range backends() {
		t.Run(bname, func(t *testing.T) {
			b := newBackend(t)
			load(t, b, records()...)
			strict := newServer(t, b, false)
			open := newServer(t, b, true)
			tests := []struct {
				name         string
				msg          dhcpv6.DHCPv6
				in           dhcp6.Ingress
				unidentified bool
				want         *summary // nil: no answer
				malformed    bool
			}{
				{
					name: "solicit DUID-LL known host gets its AAAA",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia()),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: 255,
						IAs: ianaOf(v6onlyAddr), DNS: dns135, Domains: domains},
				},
				{
					name: "solicit DUID-LLT with rapid commit gets a Reply",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLLT(sm1MAC)), ia(), dhcpv6.WithRapidCommit),
					in:   direct(privacyLL),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLLT(sm1MAC)), ServerID: true, RapidCommit: true, Preference: -1,
						IAs: ianaOf(sm1Addr), DNS: dns135, Domains: domains},
				},
				{
					name: "solicit DUID-UUID identified by its EUI-64 link-local (seed 004)",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidUUID), ia(), withUserClass("iPXE")),
					in:   direct(linkLocal(fcMAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidUUID), ServerID: true, Preference: 255,
						IAs: ianaOf(fcAddr), DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/boot.ipxe"},
				},
				{
					name: "solicit from a MAC unknown to DNS: silence",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(strangerMAC)), ia()),
					in:   direct(linkLocal(strangerMAC)),
				},
				{
					name: "solicit DUID-UUID without EUI-64 link-local: silence by default",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidUUID), ia(), withUserClass("iPXE")),
					in:   direct(privacyLL),
				},
				{
					name:         "solicit DUID-UUID without MAC, answering unidentified: no address",
					msg:          msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidUUID), ia(), withUserClass("iPXE"), dhcpv6.WithRapidCommit),
					in:           direct(privacyLL),
					unidentified: true,
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidUUID), ServerID: true, Preference: -1,
						IAs: noAddrs, DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/boot.ipxe"},
				},
				{
					name:         "information-request DUID-EN without MAC, answering unidentified: stateless boot answer",
					msg:          msg(dhcpv6.MessageTypeInformationRequest, dhcpv6.WithClientID(duidEN), withUserClass("iPXE")),
					in:           direct(privacyLL),
					unidentified: true,
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidEN), ServerID: true, Preference: -1,
						DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/boot.ipxe"},
				},
				{
					name:         "stranger MAC stays silent even when answering unidentified",
					msg:          msg(dhcpv6.MessageTypeInformationRequest, dhcpv6.WithClientID(duidLL(strangerMAC))),
					in:           direct(privacyLL),
					unidentified: true,
				},
				{
					name: "information-request from iPXE gets the boot script URL",
					msg:  msg(dhcpv6.MessageTypeInformationRequest, dhcpv6.WithClientID(duidUUID), withUserClass("iPXE"), dhcpv6.WithArchType(iana.EFI_X86_64), withVendorClass("PXEClient:Arch:00007:UNDI:003010")),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidUUID), ServerID: true, Preference: -1,
						DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/boot.ipxe"},
				},
				{
					name: "information-request without client identifier is answered",
					msg:  msg(dhcpv6.MessageTypeInformationRequest),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ServerID: true, Preference: -1, DNS: dns135, Domains: domains},
				},
				{
					name: "solicit from UEFI PXE firmware (arch 7) gets snponly.efi over TFTP",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLLT(sm1MAC)), ia(), dhcpv6.WithArchType(iana.EFI_X86_64), withVendorClass("PXEClient:Arch:00007:UNDI:003016")),
					in:   direct(linkLocal(sm1MAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLLT(sm1MAC)), ServerID: true, Preference: 255,
						IAs: ianaOf(sm1Addr), DNS: dns135, Domains: domains, BootFile: "tftp://[2001:db8:135::1]/snponly.efi"},
				},
				{
					name: "solicit from BIOS PXE (arch 0) gets undionly.kpxe",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLLT(sm1MAC)), ia(), dhcpv6.WithArchType(iana.INTEL_X86PC)),
					in:   direct(linkLocal(sm1MAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLLT(sm1MAC)), ServerID: true, Preference: 255,
						IAs: ianaOf(sm1Addr), DNS: dns135, Domains: domains, BootFile: "tftp://[2001:db8:135::1]/undionly.kpxe"},
				},
				{
					name: "solicit from UEFI HTTP boot (arch 16) gets the loader over HTTP",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(sm1MAC)), ia(), dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), withVendorClass("HTTPClient:Arch:00016:UNDI:003001")),
					in:   direct(linkLocal(sm1MAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLL(sm1MAC)), ServerID: true, Preference: 255,
						IAs: ianaOf(sm1Addr), DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/ipxe/snponly.efi", VendorClass: "343:HTTPClient"},
				},
				{
					name: "known host without AAAA: no address, boot answer still",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(centosMAC)), ia(), withUserClass("iPXE")),
					in:   direct(linkLocal(centosMAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLL(centosMAC)), ServerID: true, Preference: -1,
						IAs: noAddrs, DNS: dns135, Domains: domains, BootFile: "http://[2001:db8:135::1]/boot.ipxe"},
				},
				{
					name: "request naming this server gets the address",
					msg:  msg(dhcpv6.MessageTypeRequest, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID), ia(v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1,
						IAs: ianaOf(v6onlyAddr), DNS: dns135, Domains: domains},
				},
				{
					name: "request naming another server: silence",
					msg:  msg(dhcpv6.MessageTypeRequest, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(duidLL(mustMAC("02:00:00:00:99:99"))), ia(v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
				},
				{
					name:      "request without server identifier is malformed",
					msg:       msg(dhcpv6.MessageTypeRequest, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia(v6onlyAddr)),
					in:        direct(linkLocal(v6onlyMAC)),
					malformed: true,
				},
				{
					name: "renew with a stale address: the DNS address, the stale one at lifetime 0",
					msg:  msg(dhcpv6.MessageTypeRenew, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID), ia(netip.MustParseAddr("2001:db8:135::99"), v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1,
						IAs: []string{"IA_NA 00000001 T1=30m0s T2=48m0s " + v6onlyAddr.String() + "/1h0m0s/1h0m0s 2001:db8:135::99/0s/0s"},
						DNS: dns135, Domains: domains},
				},
				{
					name: "rebind from a known host without AAAA: NoBinding",
					msg:  msg(dhcpv6.MessageTypeRebind, dhcpv6.WithClientID(duidLL(centosMAC)), ia(netip.MustParseAddr("2001:db8:135::99"))),
					in:   direct(linkLocal(centosMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(centosMAC)), ServerID: true, Preference: -1,
						IAs: []string{"IA_NA 00000001 T1=0s T2=0s 2001:db8:135::99/0s/0s NoBinding"},
						DNS: dns135, Domains: domains},
				},
				{
					name: "IA_TA and IA_PD are refused per IA",
					msg: msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia(),
						dhcpv6.WithIATA([4]byte{0, 0, 0, 2}), dhcpv6.WithIAPD([4]byte{0, 0, 0, 3})),
					in: direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "ADVERTISE", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: 255,
						IAs: append(ianaOf(v6onlyAddr), "IA_TA 00000002 NoAddrsAvail", "IA_PD 00000003 NoPrefixAvail"), DNS: dns135, Domains: domains},
				},
				{
					name: "release gets Success",
					msg:  msg(dhcpv6.MessageTypeRelease, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID), ia(v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1, Status: "Success"},
				},
				{
					name: "decline gets Success",
					msg:  msg(dhcpv6.MessageTypeDecline, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID), ia(v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1, Status: "Success"},
				},
				{
					name: "confirm of an on-link address: Success",
					msg:  msg(dhcpv6.MessageTypeConfirm, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia(v6onlyAddr)),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1, Status: "Success"},
				},
				{
					name: "confirm of an address of another link: NotOnLink",
					msg:  msg(dhcpv6.MessageTypeConfirm, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia(v6onlyAddr, netip.MustParseAddr("2001:db8:999::5"))),
					in:   direct(linkLocal(v6onlyMAC)),
					want: &summary{Type: "REPLY", ClientID: hexDUID(duidLL(v6onlyMAC)), ServerID: true, Preference: -1, Status: "NotOnLink"},
				},
				{
					name: "confirm without addresses: silence",
					msg:  msg(dhcpv6.MessageTypeConfirm, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia()),
					in:   direct(linkLocal(v6onlyMAC)),
				},
				{
					name: "relayed solicit identified by option 79 gets a Relay-reply echoing Interface-ID",
					msg: relay(msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidEN), ia()), 0, "2001:db8:136::1", "fe80::9c1a:3bff:1e42:77d1",
						dhcpv6.OptInterfaceID([]byte("ge-0/0/1.136")), dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, farMAC)),
					in: relayed(),
					want: &summary{Relays: []string{`0 2001:db8:136::1 fe80::9c1a:3bff:1e42:77d1 "ge-0/0/1.136"`},
						Type: "ADVERTISE", ClientID: hexDUID(duidEN), ServerID: true, Preference: 255, IAs: ianaOf(farAddr), Domains: domains},
				},
				{
					name: "nested relays: each level echoes its own Interface-ID; the inner link-address picks the VLAN",
					msg: relay(
						relay(msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidEN), ia()), 0, "2001:db8:136::1", linkLocal(farMAC).String(),
							dhcpv6.OptInterfaceID([]byte("inner"))),
						1, "2001:db8:135::2", "2001:db8:136::1", dhcpv6.OptInterfaceID([]byte("outer"))),
					in: relayed(),
					want: &summary{Relays: []string{`1 2001:db8:135::2 2001:db8:136::1 "outer"`, `0 2001:db8:136::1 ` + linkLocal(farMAC).String() + ` "inner"`},
						Type: "ADVERTISE", ClientID: hexDUID(duidEN), ServerID: true, Preference: 255, IAs: ianaOf(farAddr), Domains: domains},
				},
				{
					name: "relayed from a link of no configured VLAN: silence",
					msg: relay(msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(farMAC)), ia()), 0, "2001:db8:777::1", "fe80::1",
						dhcpv6.OptInterfaceID([]byte("x"))),
					in: relayed(),
				},
				{
					name: "known host seen on another VLAN: silence",
					msg:  relay(msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(sm1MAC)), ia()), 0, "2001:db8:136::1", "fe80::1"),
					in:   relayed(),
				},
				{
					name: "direct message on an interface of no VLAN: silence",
					msg:  msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia()),
					in:   dhcp6.Ingress{Interface: "eth9", Source: linkLocal(v6onlyMAC)},
				},
				{
					name: "advertise from another server: ignored",
					msg:  msg(dhcpv6.MessageTypeAdvertise, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID)),
					in:   direct(linkLocal(v6onlyMAC)),
				},
				{
					name: "relay-reply: ignored",
					msg: &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayReply, LinkAddr: net.ParseIP("2001:db8:136::1"), PeerAddr: net.ParseIP("fe80::1"),
						Options: dhcpv6.RelayOptions{Options: dhcpv6.Options{dhcpv6.OptRelayMessage(msg(dhcpv6.MessageTypeReply))}}},
					in: relayed(),
				},
				{
					name:      "solicit with a server identifier is malformed",
					msg:       msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(v6onlyMAC)), dhcpv6.WithServerID(serverDUID), ia()),
					in:        direct(linkLocal(v6onlyMAC)),
					malformed: true,
				},
				{
					name:      "solicit without client identifier is malformed",
					msg:       msg(dhcpv6.MessageTypeSolicit, ia()),
					in:        direct(linkLocal(v6onlyMAC)),
					malformed: true,
				},
				{
					name:      "information-request with an IA is malformed",
					msg:       msg(dhcpv6.MessageTypeInformationRequest, dhcpv6.WithClientID(duidLL(v6onlyMAC)), ia()),
					in:        direct(linkLocal(v6onlyMAC)),
					malformed: true,
				},
				{
					name:      "relay-forward without relay message is malformed",
					msg:       &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.ParseIP("2001:db8:136::1"), PeerAddr: net.ParseIP("fe80::1")},
					in:        relayed(),
					malformed: true,
				},
				{
					name:      "relay chain deeper than the hop limit is malformed",
					msg:       deepRelay(10),
					in:        relayed(),
					malformed: true,
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := strict
					if tt.unidentified {
						s = open
					}
					// Decode the wire form, as Serve does.
					in, err := dhcpv6.FromBytes(tt.msg.ToBytes())
					if err != nil {
						t.Fatalf("test message does not decode: %v", err)
					}
					got, err := s.Handle(t.Context(), in, tt.in)
					if tt.malformed {
						if !errors.Is(err, dhcp6.ErrMalformed) {
							t.Fatalf("Handle = %v, %v; want ErrMalformed", got, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Handle: %v", err)
					}
					if tt.want == nil {
						if got != nil {
							t.Fatalf("Handle answered %s, want silence", got.Summary())
						}
						return
					}
					if got == nil {
						t.Fatal("Handle gave no answer")
					}
					if diff := cmp.Diff(*tt.want, summarize(t, got)); diff != "" {
						t.Errorf("reply (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// deepRelay nests a Solicit in n Relay-forward messages.
func deepRelay(n int) dhcpv6.DHCPv6 {
	var d dhcpv6.DHCPv6 = msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(farMAC)), ia())
	for i := range n {
		d = relay(d, uint8(i), "2001:db8:136::1", "fe80::1")
	}
	return d
}

// A DNS failure is an error that is neither ErrMalformed nor silence: the
// message is not answered and the operator sees why.
func TestHandleDNSFailure(t *testing.T) {
	cfg := testConfig(t)
	dead, err := dnsupdate.New(dnsupdate.Config{Server: "127.0.0.1:9", Timeout: 50 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := dhcp6.New(dhcp6.Config{DHCPConfig: serveconfig.DHCP(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), dead), nil), ServerDUID: serverDUID})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Handle(t.Context(), msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(sm1MAC)), ia()), direct(linkLocal(sm1MAC)))
	if err == nil || errors.Is(err, dhcp6.ErrMalformed) || errors.Is(err, netboot.ErrUnknown) || got != nil {
		t.Fatalf("Handle = %v, %v; want a DNS error and no reply", got, err)
	}
}

func TestNew(t *testing.T) {
	cfg := testConfig(t)
	pol := netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), fakeBackend(t))
	tests := []struct {
		name string
		cfg  dhcp6.Config
	}{
		{"no policy", dhcp6.Config{DHCPConfig: serveconfig.DHCP(cfg, nil, nil), ServerDUID: serverDUID}},
		{"no lease time", dhcp6.Config{DHCPConfig: netboot.DHCPConfig{Policy: pol}, ServerDUID: serverDUID}},
		{"no such interface for the DUID", dhcp6.Config{DHCPConfig: withInterfaces(serveconfig.DHCP(cfg, pol, nil), "vmprov-none0")}},
		{"empty DUID", dhcp6.Config{DHCPConfig: serveconfig.DHCP(cfg, pol, nil), ServerDUID: &dhcpv6.DUIDOpaque{Type: 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := dhcp6.New(tt.cfg); err == nil {
				t.Fatalf("New = %v, want an error", s)
			}
		})
	}
	s, err := dhcp6.New(dhcp6.Config{DHCPConfig: serveconfig.DHCP(cfg, pol, nil), ServerDUID: serverDUID})
	if err != nil {
		t.Fatal(err)
	}
	if !s.ServerDUID().Equal(serverDUID) {
		t.Errorf("ServerDUID = %v, want %v", s.ServerDUID(), serverDUID)
	}
}

func TestReplyAddr(t *testing.T) {
	client := netip.MustParseAddrPort("[fe80::1%br135]:546")
	relayPeer := netip.MustParseAddrPort("[2001:db8:136::1]:547")
	relayHigh := netip.MustParseAddrPort("[2001:db8:136::1]:10547")
	inner := msg(dhcpv6.MessageTypeSolicit, dhcpv6.WithClientID(duidLL(farMAC)))
	tests := []struct {
		name string
		peer netip.AddrPort
		msg  dhcpv6.DHCPv6
		want netip.AddrPort
	}{
		{"direct: back to the client", client, inner, client},
		{"relayed: the relay's port 547", relayHigh, relay(inner, 0, "2001:db8:136::1", "fe80::1"), relayPeer},
		{"relayed with Relay Source Port: its port", relayHigh, relay(inner, 0, "2001:db8:136::1", "fe80::1", dhcpv6.OptRelayPort(10547)), relayHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dhcp6.ReplyAddr(tt.peer, tt.msg); got != tt.want {
				t.Errorf("ReplyAddr = %v, want %v", got, tt.want)
			}
		})
	}
}
