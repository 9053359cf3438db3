package netboot

import (
	"context"
	"log/slog"
)

// RequestLog is the logger of one request: the attributes its lines share
// (MAC, transaction, VLAN, host, ...), collected while the request is
// handled and formatted only when a line is written. slog.Logger.With
// formats its attributes at each call, and a DHCP request gathers half a
// dozen before its one decision line, which made With a fifth of the
// DHCPv4 server's time per exchange.
type RequestLog struct {
	l     *slog.Logger
	attrs []any
}

// NewRequestLog returns l with the attributes args (key-value pairs, as
// slog.Logger.With takes them).
func NewRequestLog(l *slog.Logger, args ...any) RequestLog {
	return RequestLog{l: l, attrs: args}
}

// With returns r with args added; r itself is unchanged.
func (r RequestLog) With(args ...any) RequestLog {
	return RequestLog{l: r.l, attrs: append(r.attrs[:len(r.attrs):len(r.attrs)], args...)}
}

// Debug, Info, Warn and Error write a line with r's attributes, then args.
func (r RequestLog) Debug(msg string, args ...any) { r.log(slog.LevelDebug, msg, args) }
func (r RequestLog) Info(msg string, args ...any)  { r.log(slog.LevelInfo, msg, args) }
func (r RequestLog) Warn(msg string, args ...any)  { r.log(slog.LevelWarn, msg, args) }
func (r RequestLog) Error(msg string, args ...any) { r.log(slog.LevelError, msg, args) }

func (r RequestLog) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	r.l.Log(ctx, level, msg, append(r.attrs[:len(r.attrs):len(r.attrs)], args...)...)
}
