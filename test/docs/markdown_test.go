package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// block is one fenced code block of a Markdown file.
type block struct {
	lang    string // the fence's info string, e.g. "console", "yaml"
	heading string // the nearest "## " heading above it, without the hashes
	line    int    // line of the opening fence, 1-based
	text    string // the lines between the fences, each ending in "\n"
}

func (b block) String() string {
	return fmt.Sprintf("README.md:%d (%s block under %q)", b.line, b.lang, b.heading)
}

// repoRoot is the top of the vmprov tree: two levels above this file.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("docs: cannot locate the source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// readBlocks returns the fenced code blocks of the Markdown file at path.
func readBlocks(t testing.TB, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return blocks
}

// parseBlocks splits Markdown text into its fenced code blocks (``` fences
// only, as README.md uses).
func parseBlocks(text string) ([]block, error) {
	var (
		blocks  []block
		heading string
		cur     *block
	)
	for i, line := range strings.Split(text, "\n") {
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.text += line + "\n"
			continue
		}
		if strings.HasPrefix(line, "## ") {
			heading = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		}
		if strings.HasPrefix(line, "```") {
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), heading: heading, line: i + 1}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: code block never closed", cur.line)
	}
	return blocks, nil
}

// command is one "$ ..." line of a console block and the output shown
// after it.
type command struct {
	line int      // README line of the "$"
	args []string // the command line split into words as sh would
	want []string // output lines shown, "..." omitted
}

// parseConsole splits a console block into commands. A line ending in a
// backslash continues on the next.
func parseConsole(b block) ([]command, error) {
	var cmds []command
	lines := strings.Split(strings.TrimSuffix(b.text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		n := b.line + 1 + i
		if strings.HasPrefix(line, "$ ") {
			cmdline := strings.TrimPrefix(line, "$ ")
			for strings.HasSuffix(cmdline, "\\") && i+1 < len(lines) {
				i++
				cmdline = strings.TrimSuffix(cmdline, "\\") + " " + lines[i]
			}
			args, err := splitWords(cmdline)
			if err != nil {
				return nil, fmt.Errorf("README.md:%d: %w", n, err)
			}
			cmds = append(cmds, command{line: n, args: args})
			continue
		}
		if len(cmds) == 0 {
			return nil, fmt.Errorf("README.md:%d: console block output before any \"$ \" command", n)
		}
		if t := strings.TrimSpace(line); t != "" && t != "..." {
			cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, strings.TrimRight(line, " \t"))
		}
	}
	return cmds, nil
}

// splitWords splits a command line as a POSIX shell would for the simple
// cases READMEs use: blanks, '...' and "..." quoting, backslash escapes and
// # comments. Expansions ($VAR, globs, pipes) are refused.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(rs) {
					i++
					word.WriteRune(rs[i])
				}
			case '$', '`':
				return nil, fmt.Errorf("%q: expansions are not supported in examples", s)
			default:
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\':
			if i+1 < len(rs) {
				i++
				word.WriteRune(rs[i])
				in = true
			}
		case r == ' ' || r == '\t':
			if in {
				words = append(words, word.String())
				word.Reset()
				in = false
			}
		case r == '#' && !in:
			i = len(rs)
		case strings.ContainsRune("$`|&;<>()*?[]~", r):
			return nil, fmt.Errorf("%q: %q is not supported in examples", s, r)
		default:
			word.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if in {
		words = append(words, word.String())
	}
	return words, nil
}

// missingLines returns the lines of want that do not appear in got in
// order (each one at or after the line the previous one matched).
func missingLines(got string, want []string) []string {
	var lines []string
	for _, l := range strings.Split(got, "\n") {
		lines = append(lines, strings.TrimRight(l, " \t"))
	}
	var missing []string
	at := 0
	for _, w := range want {
		found := false
		for j := at; j < len(lines); j++ {
			if lines[j] == w {
				at, found = j+1, true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	return missing
}
