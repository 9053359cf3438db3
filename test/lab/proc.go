package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process identifies a daemon the lab started. StartTime (clock ticks after
// boot, field 22 of /proc/PID/stat) guards against signalling a recycled PID.
type Process struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Log       string `json:"log,omitempty"`
}

// child is a daemon started as a child of this process, running in the
// foreground so that its PID is known without a pid file.
type child struct {
	Process
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returns
	err  error         // cmd.Wait's result, valid after done
}

// startChild runs argv (inside netns when it is not empty) with stdout and
// stderr appended to logPath. The child gets its own session so that it
// survives the exit of a short-lived parent such as `vmprov-lab up`.
func startChild(name, netns, logPath string, argv ...string) (*child, error) {
	return startChildAttr(name, netns, logPath, &syscall.SysProcAttr{Setsid: true}, nil, argv...)
}

// startChildAttr is startChild with explicit process attributes and extra
// environment variables.
func startChildAttr(name, netns, logPath string, attr *syscall.SysProcAttr, env []string, argv ...string) (*child, error) {
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = attr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	c.Name, c.PID, c.Log = name, cmd.Process.Pid, logPath
	c.StartTime, _ = procStartTime(c.PID)
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the child has exited, with a description if so.
func (c *child) exited() (bool, string) {
	select {
	case <-c.done:
		return true, fmt.Sprintf("%s (pid %d) exited: %v", c.Name, c.PID, c.err)
	default:
		return false, ""
	}
}

// stop sends SIGTERM (and SIGCONT), waits up to timeout, then SIGKILLs and reaps.
func (c *child) stop(timeout time.Duration) error {
	if done, _ := c.exited(); done {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Process.Signal(syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL", c.Name, c.PID)
	}
}

// procStartTime reads the start time of pid from /proc/PID/stat.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether p still runs (a zombie counts as gone) and is the
// same process that was recorded.
func (p Process) alive() bool {
	if p.PID <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && len(b) > i+2 && b[i+2] == 'Z' {
		return false
	}
	st, err := procStartTime(p.PID)
	return err == nil && (p.StartTime == 0 || st == p.StartTime)
}

// Kill stops a recorded process that need not be a child of this one:
// SIGTERM (and SIGCONT), up to timeout for it to go, then SIGKILL. A process that is
// already gone, or whose PID now belongs to another program, is left alone.
func (p Process) Kill(timeout time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	_ = syscall.Kill(p.PID, syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
	if waitGone(p, timeout) {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	if waitGone(p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("kill %s: pid %d still running after SIGKILL", p.Name, p.PID)
}

func waitGone(p Process, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !p.alive()
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a short command and returns its combined output in the error.
func run(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// poll calls fn until it returns nil, ctx ends or timeout passes, returning
// fn's last error in the latter cases.
func poll(ctx context.Context, timeout time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var stop stopPolling
		if errors.As(err, &stop) {
			return stop.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %v: %w)", err, timeout, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// stopPolling wraps an error that makes further polling pointless.
type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }
