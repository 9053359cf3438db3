package bench

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParsePerfdhcp(t *testing.T) {
	tests := []struct {
		file    string
		want    PerfdhcpReport
		wantErr bool
	}{
		{file: "perfdhcp-2000.txt", want: PerfdhcpReport{
			Rate: 1332.78, Expected: 2000,
			DO: Exchange{Sent: 3999, Received: 3999, AvgDelay: 387 * time.Microsecond},
			RA: Exchange{Sent: 3999, Received: 3999, AvgDelay: 359 * time.Microsecond},
		}},
		{file: "perfdhcp-drop.txt", want: PerfdhcpReport{
			Rate: 7.9742, Expected: 10,
			DO: Exchange{Sent: 5, Received: 4, Drops: 1, AvgDelay: 3632 * time.Microsecond},
			RA: Exchange{Sent: 4, Received: 4, AvgDelay: 518 * time.Microsecond},
		}},
		{file: "perfdhcp-error.txt", wantErr: true},
		{file: "perfdhcp6-2000.txt", want: PerfdhcpReport{
			Rate: 998.674, Expected: 2000,
			DO: Exchange{Sent: 1999, Received: 1999, AvgDelay: 334 * time.Microsecond},
			RA: Exchange{Sent: 1999, Received: 1999, AvgDelay: 323 * time.Microsecond},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParsePerfdhcp(readTestdata(t, tt.file))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := (PerfdhcpReport{DO: Exchange{Drops: 2}, RA: Exchange{Drops: 3}}).Drops(); got != 5 {
		t.Errorf("Drops() = %d, want 5", got)
	}
}

// TestIncomplete: the share of offered exchanges without ACK (Reply) counts
// exchanges perfdhcp never started as incomplete too.
func TestIncomplete(t *testing.T) {
	tests := []struct {
		name    string
		r       PerfdhcpReport
		offered uint64
		want    float64
	}{
		{"all completed", PerfdhcpReport{DO: Exchange{Sent: 6000}, RA: Exchange{Received: 6000}}, 6000, 0},
		{"lost in either half", PerfdhcpReport{DO: Exchange{Sent: 6000}, RA: Exchange{Received: 5700}}, 6000, 0.05},
		{"perfdhcp fell behind", PerfdhcpReport{DO: Exchange{Sent: 3000}, RA: Exchange{Received: 3000}}, 6000, 0.5},
		{"more sent than offered", PerfdhcpReport{DO: Exchange{Sent: 6001}, RA: Exchange{Received: 5999}}, 6000, 2.0 / 6001},
		{"nothing offered", PerfdhcpReport{}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Incomplete(tt.offered); !approx(got, tt.want) {
				t.Errorf("Incomplete(%d) = %v, want %v", tt.offered, got, tt.want)
			}
		})
	}
}

func TestParseWrk(t *testing.T) {
	const socketErrors = `Running 10s test @ http://198.18.0.1:8080/assets/initrd.img
  2 threads and 16 connections
  3 requests in 10.00s, 192.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 4
Requests/sec:      0.30
Transfer/sec:     19.20MB
`
	tests := []struct {
		name, out string
		want      WrkReport
		wantErr   bool
	}{
		{name: "wrk.txt", want: WrkReport{Requests: 803, Duration: 2010 * time.Millisecond, Bytes: 2.24 * (1 << 30),
			RequestsPerS: 400.27, BytesPerS: 1.12 * (1 << 30)}},
		{name: "wrk-404.txt", want: WrkReport{Requests: 1412, Duration: time.Second, Bytes: 717.03 * (1 << 10),
			RequestsPerS: 1410.20, BytesPerS: 716.12 * (1 << 10), Non2xx3xx: 1412}},
		{name: "socket errors", out: socketErrors, want: WrkReport{Requests: 3, Duration: 10 * time.Second, Bytes: 192 * (1 << 20),
			RequestsPerS: 0.3, BytesPerS: 19.2 * (1 << 20), SocketErrors: 7}},
		{name: "wrk-refused.txt", wantErr: true},
		{name: "empty", out: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			if filepath.Ext(tt.name) == ".txt" {
				out = readTestdata(t, tt.name)
			}
			got, err := ParseWrk(out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(approx)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// approx compares floats to a relative 1e-9, as scaled decimal units
// round.
func approx(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	m := max(a, b, -a, -b)
	return d <= 1e-9*m
}

func seedFromTestdata(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

func FuzzParsePerfdhcp(f *testing.F) {
	seedFromTestdata(f, "perfdhcp")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := ParsePerfdhcp(out)
		if err != nil {
			return
		}
		if math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate < 0 || r.DO.AvgDelay < 0 || r.RA.AvgDelay < 0 {
			t.Errorf("rate %v or a delay out of range from %q", r.Rate, out)
		}
	})
}

func FuzzParseWrk(f *testing.F) {
	seedFromTestdata(f, "wrk")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := ParseWrk(out)
		if err != nil {
			return
		}
		if r.Duration < 0 {
			t.Errorf("negative duration from %q", out)
		}
	})
}
