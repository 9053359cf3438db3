package tftp

import (
	"fmt"
	"os"
	"strings"
)

// tree is an opened Tree.
type tree struct {
	prefix string // cleaned, without a trailing "/"; "" matches every name
	root   *os.Root
}

// match returns the name under t's directory for the cleaned name clean.
func (t tree) match(clean string) (string, bool) {
	if t.prefix == "" {
		return clean, true
	}
	rest, ok := strings.CutPrefix(clean, t.prefix+"/")
	return rest, ok && rest != ""
}

// openTrees opens the directories of ts.
func openTrees(ts []Tree) ([]tree, error) {
	var out []tree
	for _, t := range ts {
		prefix := ""
		if strings.Trim(t.Prefix, "/") != "" {
			p, err := CleanName(t.Prefix)
			if err != nil {
				closeTrees(out)
				return nil, fmt.Errorf("tftp: tree prefix %q: %w", t.Prefix, err)
			}
			prefix = p
		}
		r, err := os.OpenRoot(t.Dir)
		if err != nil {
			closeTrees(out)
			return nil, fmt.Errorf("tftp: tree %s: %w", t.Dir, err)
		}
		out = append(out, tree{prefix: prefix, root: r})
	}
	return out, nil
}

func closeTrees(ts []tree) {
	for _, t := range ts {
		t.root.Close()
	}
}
