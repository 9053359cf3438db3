package docs

import (
	"bytes"
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"

	"github.com/vmprov/vmprov/config"
)

// referenceHeading is the README section whose first yaml block is the
// configuration reference.
const referenceHeading = "Configuration reference"

// referenceBlock returns the configuration reference's yaml block.
func referenceBlock(t testing.TB) block {
	t.Helper()
	for _, b := range readBlocks(t, filepath.Join(repoRoot(t), "README.md")) {
		if b.lang == "yaml" && b.heading == referenceHeading {
			return b
		}
	}
	t.Fatalf("README.md has no yaml block under %q", "## "+referenceHeading)
	return block{}
}

// decodeStrict decodes a configuration without defaults, rejecting unknown
// keys as config.Parse does.
func decodeStrict(text string) (config.Config, error) {
	var c config.Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

// TestYAMLBlocksParse loads every yaml block of README.md and
// deploy/vmprov.yaml with the strict loader: unknown keys, bad values and
// missing required keys fail.
func TestYAMLBlocksParse(t *testing.T) {
	root := repoRoot(t)
	n := 0
	for _, b := range readBlocks(t, filepath.Join(root, "README.md")) {
		if b.lang != "yaml" {
			continue
		}
		n++
		t.Run(b.String(), func(t *testing.T) {
			if _, err := config.Parse([]byte(b.text)); err != nil {
				t.Errorf("%v:\n%s", err, b.text)
			}
		})
	}
	if n == 0 {
		t.Error("README.md has no yaml block")
	}
	t.Run("deploy/vmprov.yaml", func(t *testing.T) {
		path := filepath.Join(root, "deploy", "vmprov.yaml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(c.Serve.Interfaces) == 0 || c.Boot.URL == "" || len(c.VLANs) == 0 {
			t.Errorf("%s does not configure a boot server: interfaces %v, boot.url %q, %d VLANs", path, c.Serve.Interfaces, c.Boot.URL, len(c.VLANs))
		}
		if c.Serve.Dir != "/var/lib/vmprov" {
			t.Errorf("%s: serve.dir = %q, want the unit's StateDirectory /var/lib/vmprov", path, c.Serve.Dir)
		}
	})
}

// TestConfigReference checks README's configuration reference against
// config.Config: every key of the type (found by reflection over the yaml
// tags) appears, and every key with a default shows exactly that default.
// Defaults derived from other keys (boot.site, boot.assets, vlans[].bridge)
// are computed from the reference's own dns.zone, boot.url and vlans[].id.
func TestConfigReference(t *testing.T) {
	ref := referenceBlock(t)
	refCfg, err := decodeStrict(ref.text)
	if err != nil {
		t.Fatalf("%v: %v", ref, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(ref.text), &doc); err != nil || len(doc.Content) != 1 {
		t.Fatalf("%v: not one YAML document: %v", ref, err)
	}

	var defaults config.Config
	defaults.DNS.Zone = refCfg.DNS.Zone
	defaults.Boot.URL = refCfg.Boot.URL
	for _, v := range refCfg.VLANs {
		defaults.VLANs = append(defaults.VLANs, config.VLAN{ID: v.ID})
	}
	defaults.SetDefaults()

	shown := map[string]bool{}
	walkReference(t, doc.Content[0], reflect.ValueOf(defaults), "", shown)
	for _, key := range configKeys(reflect.TypeOf(config.Config{}), "") {
		if !shown[key] {
			t.Errorf("%v: the configuration reference lacks %s", ref, key)
		}
	}
}

// walkReference records in shown the key paths of node and checks each
// value against the default def of the same key.
func walkReference(t *testing.T, node *yaml.Node, def reflect.Value, path string, shown map[string]bool) {
	t.Helper()
	typ := def.Type()
	switch {
	case isSection(typ):
		if node.Kind != yaml.MappingNode {
			t.Errorf("README %s (line %d) is not a mapping", path, node.Line)
			return
		}
		fields := map[string]int{}
		for i := range typ.NumField() {
			fields[yamlName(typ.Field(i))] = i
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i].Value, node.Content[i+1]
			idx, ok := fields[k]
			if !ok {
				t.Errorf("README %s%s (line %d) is not a configuration key", path, k, node.Content[i].Line)
				continue
			}
			walkReference(t, v, def.Field(idx), path+k+".", shown)
		}
	case typ.Kind() == reflect.Slice && isSection(typ.Elem()):
		if node.Kind != yaml.SequenceNode {
			t.Errorf("README %s (line %d) is not a list", strings.TrimSuffix(path, "."), node.Line)
			return
		}
		shown[strings.TrimSuffix(path, ".")] = true
		for i, item := range node.Content {
			elem := reflect.New(typ.Elem()).Elem()
			if i < def.Len() {
				elem = def.Index(i)
			}
			walkReference(t, item, elem, strings.TrimSuffix(path, ".")+"[].", shown)
		}
	default:
		key := strings.TrimSuffix(path, ".")
		shown[key] = true
		if def.IsZero() {
			return // no default: the reference shows an example
		}
		got := reflect.New(typ)
		if err := node.Decode(got.Interface()); err != nil {
			t.Errorf("README %s (line %d): %v", key, node.Line, err)
			return
		}
		if diff := cmp.Diff(def.Interface(), got.Elem().Interface(), cmpopts.EquateEmpty()); diff != "" {
			var b bytes.Buffer
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			_ = enc.Encode(def.Interface())
			t.Errorf("README %s (line %d) shows %q; its default is %s(-default +README):\n%s", key, node.Line, node.Value, b.String(), diff)
		}
	}
}

// configKeys lists the key paths of typ: "dns.server", "vlans[].id", ...
// Lists of sections are listed themselves and by their keys.
func configKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := yamlName(f)
		if name == "-" || !f.IsExported() {
			continue
		}
		switch {
		case isSection(f.Type):
			keys = append(keys, configKeys(f.Type, prefix+name+".")...)
		case f.Type.Kind() == reflect.Slice && isSection(f.Type.Elem()):
			keys = append(keys, prefix+name)
			keys = append(keys, configKeys(f.Type.Elem(), prefix+name+"[].")...)
		default:
			keys = append(keys, prefix+name)
		}
	}
	return keys
}

// isSection reports whether typ is a struct the YAML file spells as a
// mapping of keys (netip.Addr and other text values are not).
func isSection(typ reflect.Type) bool {
	return typ.Kind() == reflect.Struct && !reflect.PointerTo(typ).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func TestConfigKeys(t *testing.T) {
	keys := configKeys(reflect.TypeOf(config.Config{}), "")
	for _, want := range []string{"dns.server", "dns.tsig.secret_file", "vlans", "vlans[].ipv4", "serve.loaders", "bsdp.images[].bootfile"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("configKeys lacks %s: %v", want, keys)
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "vlans[].ipv4.") {
			t.Errorf("configKeys descends into netip.Prefix: %s", k)
		}
	}
}
