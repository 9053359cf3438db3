package dhcp6

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// A server whose interfaces have no MAC (lo here; a bridge whose last port
// left has none either) still gets a DUID: a DUID-UUID of the machine id,
// the same on every start, different between machines, and not the
// machine id itself.
func TestServerDUIDWithoutMAC(t *testing.T) {
	machine := func(id string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(id + "\n"), nil }
	}
	a, err := duidFromInterfaces([]string{"lo"}, machine("3d1219c7c4c5404aaa1f6d2a48adfda4"))
	if err != nil {
		t.Fatal(err)
	}
	u, ok := a.(*dhcpv6.DUIDUUID)
	if !ok {
		t.Fatalf("DUID %v is a %T, want a DUID-UUID", a, a)
	}
	if id, _ := hex.DecodeString("3d1219c7c4c5404aaa1f6d2a48adfda4"); bytes.Equal(u.UUID[:], id) {
		t.Error("the DUID-UUID is the machine id itself")
	}
	again, err := duidFromInterfaces([]string{"lo"}, machine("3d1219c7c4c5404aaa1f6d2a48adfda4"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ToBytes(), a.ToBytes()) {
		t.Errorf("a restart changed the DUID: %x, then %x", a.ToBytes(), again.ToBytes())
	}
	other, err := duidFromInterfaces([]string{"lo"}, machine("0f0e0d0c0b0a09080706050403020100"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.ToBytes(), a.ToBytes()) {
		t.Errorf("two machines got the same DUID %x", a.ToBytes())
	}
	parsed, err := dhcpv6.DUIDFromBytes(a.ToBytes())
	if err != nil {
		t.Fatalf("the DUID %x does not parse: %v", a.ToBytes(), err)
	}
	if parsed.DUIDType() != dhcpv6.DUID_UUID {
		t.Errorf("the DUID parses as type %v, want DUID-UUID", parsed.DUIDType())
	}

	_, err = duidFromInterfaces([]string{"lo"}, func() ([]byte, error) { return nil, errors.New("no /etc/machine-id") })
	if err == nil || !strings.Contains(err.Error(), "serve.dhcp6.server_duid") {
		t.Errorf("without MAC and machine id: error %v, want one naming serve.dhcp6.server_duid", err)
	}
}
