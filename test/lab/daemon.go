package lab

import (
	"fmt"
	"time"
)

// Daemon is a long-running process that Lab.Start started in the lab's
// namespace and recorded in state.json, so that Down stops it by PID from any
// process.
type Daemon struct {
	c *child
}

// Start runs argv inside the lab's namespace in a session of its own (it
// outlives a short-lived caller such as `vmprov-lab demo`), with stdout and
// stderr appended to logPath, and records it in DIR/state.json under name.
// Close and Down stop it before the lab's own daemons.
func (l *Lab) Start(name, logPath string, argv ...string) (*Daemon, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s: no command", name)
	}
	c, err := startChild(name, l.State.Netns, logPath, argv...)
	if err != nil {
		return nil, err
	}
	d := &Daemon{c: c}
	l.Daemons = append(l.Daemons, d)
	l.State.Processes = append(l.State.Processes, c.Process)
	if err := l.save(); err != nil {
		return d, fmt.Errorf("start %s: record in state: %w", name, err)
	}
	l.log.Info("daemon started", "name", name, "pid", c.PID, "file", logPath)
	return d, nil
}

// Process identifies the daemon, as recorded in state.json.
func (d *Daemon) Process() Process { return d.c.Process }

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.c.done }

// Exited reports whether the daemon has exited, with a description if so.
func (d *Daemon) Exited() (bool, string) { return d.c.exited() }

// Stop sends SIGTERM, waits up to 15 s, then SIGKILLs. Stopping twice is
// harmless.
func (d *Daemon) Stop() error { return d.c.stop(15 * time.Second) }
