package lab

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestProcessKill(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("lab: cannot run sleep: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	st, err := procStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	// A recorded process whose start time differs is another program that
	// reused the PID: it must be left alone.
	other := Process{Name: "sleep", PID: cmd.Process.Pid, StartTime: st + 1}
	if err := other.Kill(time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("Kill signalled a process with another start time")
	case <-time.After(200 * time.Millisecond):
	}

	p := Process{Name: "sleep", PID: cmd.Process.Pid, StartTime: st}
	if !p.alive() {
		t.Fatal("alive() = false for a running process")
	}
	if err := p.Kill(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after Kill")
	}
	if p.alive() {
		t.Error("alive() = true after Kill")
	}
	if (Process{Name: "self", PID: os.Getpid()}).alive() != true {
		t.Error("alive() = false for this process")
	}
}
