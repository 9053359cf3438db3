package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"no command", nil, "usage", ""},
		{"no dir", []string{"up"}, "usage", ""},
		{"unknown command", []string{"sideways", "--dir", "/nonexistent"}, "unknown command", ""},
		{"extra args", []string{"down", "--dir", "/x", "y"}, "usage", ""},
		{"status without lab", []string{"status", "--dir", "/nonexistent"}, "", "no lab in /nonexistent"},
		{"down without lab", []string{"down", "--dir", "/nonexistent"}, "", ""},
		{"demo without vmprov", []string{"demo", "--dir", "/nonexistent"}, "--vmprov", ""},
		{"config without serve dir", []string{"config", "--dir", "/nonexistent"}, "--serve-dir", ""},
		{"config without lab", []string{"config", "--dir", "/nonexistent", "--serve-dir", "/srv"}, "state.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("run(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("run(%q) output = %q, want it to contain %q", tt.args, out.String(), tt.wantOut)
			}
		})
	}
}
