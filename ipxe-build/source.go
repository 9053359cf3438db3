package ipxebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// topDir accepts an iPXE checkout's top directory or its src/ directory and returns the
// top directory (the one holding src/Makefile).
func topDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if isFile(filepath.Join(abs, "src", "Makefile")) && isFile(filepath.Join(abs, "src", "config", "general.h")) {
		return abs, nil
	}
	if isFile(filepath.Join(abs, "Makefile")) && isFile(filepath.Join(abs, "config", "general.h")) {
		return filepath.Dir(abs), nil
	}
	return "", fmt.Errorf("%s is not an iPXE source tree (no src/Makefile and src/config/general.h)", dir)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// isCommit reports whether ref is a full hex SHA-1 commit name.
func isCommit(ref string) bool {
	if len(ref) != 40 {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// git runs git with args and returns its trimmed standard output.
func git(ctx context.Context, env []string, args ...string) (string, error) {
	bin, err := command(env, "git", "git")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// identifyDir fills the identity of a local tree: its commit when it is a clean git work
// tree (untracked files count as changes, ignored ones do not), else a content hash; plus a
// hash of the config/local/ files git ignores but the build reads (none in a fresh
// checkout, so a clean local tree and the same commit fetched share a cache key).
func identifyDir(ctx context.Context, env []string, top string) (Source, error) {
	src := Source{Dir: top}
	if ownRepo(ctx, env, top) {
		if commit, err := git(ctx, env, "-C", top, "rev-parse", "--verify", "HEAD^{commit}"); err == nil && isCommit(commit) {
			src.Commit = commit
			status, err := git(ctx, env, "-C", top, "status", "--porcelain")
			src.Dirty = err != nil || status != ""
		}
	}
	if src.Commit == "" || src.Dirty {
		sum, err := hashTree(top, func(rel string) bool { return !generatedHeader(rel) })
		if err != nil {
			return Source{}, fmt.Errorf("hash source tree %s: %w", top, err)
		}
		src.TreeSHA256 = sum
	}
	local, err := hashTree(top, func(rel string) bool {
		return strings.HasPrefix(rel, "src/config/local/") && !generatedHeader(rel) && rel != "src/config/local/.gitignore"
	})
	if err != nil {
		return Source{}, fmt.Errorf("hash %s/src/config/local: %w", top, err)
	}
	src.LocalSHA256 = local
	return src, nil
}

// ownRepo reports whether top is the top of a git work tree, not a directory inside some
// other repository (whose commit would say nothing about this tree).
func ownRepo(ctx context.Context, env []string, top string) bool {
	got, err := git(ctx, env, "-C", top, "rev-parse", "--show-toplevel")
	if err != nil {
		return false
	}
	a, err1 := filepath.EvalSymlinks(got)
	b, err2 := filepath.EvalSymlinks(top)
	return err1 == nil && err2 == nil && a == b
}

// resolveRef returns the commit ref names at url: ref itself when it is a full commit,
// else what `git ls-remote` says (a peeled tag wins over the tag object).
func resolveRef(ctx context.Context, env []string, url, ref string) (string, error) {
	if isCommit(ref) {
		return ref, nil
	}
	out, err := git(ctx, env, "ls-remote", url, ref, ref+"^{}")
	if err != nil {
		return "", err
	}
	commit := ""
	for _, line := range strings.Split(out, "\n") {
		sha, name, ok := strings.Cut(line, "\t")
		if !ok || !isCommit(sha) {
			continue
		}
		if strings.HasSuffix(name, "^{}") || commit == "" {
			commit = sha
		}
	}
	if commit == "" {
		return "", fmt.Errorf("git ls-remote %s %s: no such ref", url, ref)
	}
	return commit, nil
}

// checkout fetches commit from url into the new directory dir. A shallow fetch of the
// commit is tried first; servers that refuse it get a full fetch.
func checkout(ctx context.Context, env []string, url, commit, dir string) error {
	if _, err := git(ctx, env, "init", "-q", dir); err != nil {
		return err
	}
	if _, err := git(ctx, env, "-C", dir, "fetch", "-q", "--depth", "1", url, commit); err != nil {
		if _, err := git(ctx, env, "-C", dir, "fetch", "-q", url); err != nil {
			return err
		}
	}
	if _, err := git(ctx, env, "-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit); err != nil {
		return err
	}
	got, err := git(ctx, env, "-C", dir, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if got != commit {
		return fmt.Errorf("git checkout %s: got %s", commit, got)
	}
	return nil
}
