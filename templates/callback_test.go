package templates

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAnswerFilesCallBack checks that every answer file hands the host's callback URL to
// firstboot --install, and that a host without a token gets no callback.
func TestAnswerFilesCallBack(t *testing.T) {
	want := "--install /proc/cmdline 'http://boot.example.com/done?token=" + seedToken + "'"
	wantDI := "--install /etc/vmprov/install-cmdline 'http://boot.example.com/done?token=" + seedToken + "'"
	for _, tt := range []struct{ distro, file, want string }{
		{"core", "ks.cfg", want},
		{"rocky9", "ks.cfg", want},
		{"bookworm", "preseed.cfg", wantDI},
		{"noble", "user-data", wantDI},
	} {
		t.Run(tt.distro+"/"+tt.file, func(t *testing.T) {
			h := seedHost(t, tt.distro)
			got, err := InstallFile(h, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), tt.want) {
				t.Errorf("%s does not call back with %s:\n%s", tt.file, tt.want, got)
			}
			h.DoneToken = ""
			got, err = InstallFile(h, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(got), "/done") {
				t.Errorf("%s without a token calls back:\n%s", tt.file, got)
			}
		})
	}
	h := seedHost(t, "core")
	h.DoneToken = "x'; reboot; '"
	if _, err := Kickstart(h); err == nil || !strings.Contains(err.Error(), "done token") {
		t.Errorf("a token with quotes rendered: %v", err)
	}
}

// TestFirstbootCallback runs firstboot --install with a callback URL against a server that
// answers 503 twice (DNS refused the write) and then 200: the script calls until it gets
// the 200 and succeeds; against one that never answers 200 it gives up after 10 tries,
// says so, and still succeeds, so that the installer finishes.
func TestFirstbootCallback(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	for _, tt := range []struct {
		name      string
		failFirst int32
		wantCalls int32
		wantMsg   string
	}{
		{"retried until 200", 2, 3, ""},
		{"gives up", 100, 10, "did not answer 200 in 10 tries"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/done" || r.URL.Query().Get("token") != seedToken {
					http.Error(w, "wrong call", http.StatusBadRequest)
					return
				}
				if calls.Add(1) <= tt.failFirst {
					http.Error(w, "dns refused", http.StatusServiceUnavailable)
					return
				}
				w.Write([]byte("installed\n"))
			}))
			defer srv.Close()
			root := t.TempDir()
			script := filepath.Join(t.TempDir(), "firstboot")
			if err := os.WriteFile(script, Firstboot(), 0o755); err != nil {
				t.Fatal(err)
			}
			cmdline := filepath.Join(t.TempDir(), "cmdline")
			if err := os.WriteFile(cmdline, []byte("quiet\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), sh, script, "--install", cmdline, srv.URL+"/done?token="+seedToken)
			cmd.Env = append(os.Environ(), "VMPROV_FIRSTBOOT_ROOT="+root, "VMPROV_DONE_RETRY_DELAY=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("firstboot --install: %v\n%s", err, out)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("callback called %d times, want %d", got, tt.wantCalls)
			}
			if !strings.Contains(string(out), tt.wantMsg) {
				t.Errorf("output %q does not say %q", out, tt.wantMsg)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/vmprov-firstboot.service")); err != nil {
				t.Errorf("unit not enabled: %v", err)
			}
		})
	}
}
