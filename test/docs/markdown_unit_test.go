package docs

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseBlocks(t *testing.T) {
	text := "# T\n\n## Use\n\n```console\n$ vmprov list\nNAME\n```\n\ntext\n\n## Config\n\n```yaml\ndns: {zone: a.}\n```\n"
	got, err := parseBlocks(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []block{
		{lang: "console", heading: "Use", line: 5, text: "$ vmprov list\nNAME\n"},
		{lang: "yaml", heading: "Config", line: 14, text: "dns: {zone: a.}\n"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(block{})); diff != "" {
		t.Errorf("parseBlocks (-want +got):\n%s", diff)
	}
	if _, err := parseBlocks("```sh\nmake\n"); err == nil {
		t.Error("an unclosed block parsed")
	}
}

func TestParseConsole(t *testing.T) {
	b := block{lang: "console", line: 10, text: "$ vmprov create --name a \\\n    --distro core\nname:   a   \n...\nvlan:   135\n\n$ vmprov list -o json  # all of them\n"}
	got, err := parseConsole(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []command{
		{line: 11, args: []string{"vmprov", "create", "--name", "a", "--distro", "core"}, want: []string{"name:   a", "vlan:   135"}},
		{line: 17, args: []string{"vmprov", "list", "-o", "json"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(command{})); diff != "" {
		t.Errorf("parseConsole (-want +got):\n%s", diff)
	}
	if _, err := parseConsole(block{text: "output first\n$ vmprov list\n"}); err == nil {
		t.Error("output before a command parsed")
	}
}

func TestSplitWords(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "vmprov list", want: []string{"vmprov", "list"}},
		{in: "  vmprov   show  a ", want: []string{"vmprov", "show", "a"}},
		{in: `vmprov create --txt 'k=a b' --txt "x=\"y\"" --txt z\ w`, want: []string{"vmprov", "create", "--txt", "k=a b", "--txt", `x="y"`, "--txt", "z w"}},
		{in: "vmprov list # a comment", want: []string{"vmprov", "list"}},
		{in: "vmprov create --txt a#b", want: []string{"vmprov", "create", "--txt", "a#b"}},
		{in: "vmprov show ''", want: []string{"vmprov", "show", ""}},
		{in: "vmprov list | grep x", bad: true},
		{in: "vmprov show $NAME", bad: true},
		{in: `vmprov show "$NAME"`, bad: true},
		{in: "vmprov show 'a", bad: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitWords(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("splitWords = %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("splitWords (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMissingLines(t *testing.T) {
	got := "name:   a\nfqdn:   a.example.com.   \nvlan:   135\n"
	for _, tt := range []struct {
		name string
		want []string
		miss []string
	}{
		{"all in order", []string{"name:   a", "vlan:   135"}, nil},
		{"trailing blanks ignored", []string{"fqdn:   a.example.com."}, nil},
		{"out of order", []string{"vlan:   135", "name:   a"}, []string{"name:   a"}},
		{"absent", []string{"mac:    x"}, []string{"mac:    x"}},
		{"partial line", []string{"vlan:"}, []string{"vlan:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.miss, missingLines(got, tt.want)); diff != "" {
				t.Errorf("missingLines (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzSplitWords checks that splitWords never panics and that the words it
// returns, quoted again, split back into the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"vmprov list", `vmprov create --txt 'k=a b' --txt "x=\"y\"" z\ w # c`, "vmprov show ''", "a | b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := splitWords(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("splitWords(%q) = %q, which quoted again does not split: %v", s, words, err)
		}
		if diff := cmp.Diff(words, again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("splitWords(%q) quoted again (-first +again):\n%s", s, diff)
		}
	})
}
