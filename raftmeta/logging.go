package raftmeta

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// raftLogger routes etcd raft's log lines to slog. raft names nodes by
// their raft ids (node.id+1, see raftID) formatted with %x; the logger
// rewrites those arguments so lines name shoal's node ids. Of raft's info
// lines only leadership changes reach INFO (operators want those); its
// election steps and configuration chatter are DEBUG.
type raftLogger struct{ l *slog.Logger }

// raftInfoKept are the parts of raft info messages that stay at INFO.
var raftInfoKept = []string{"became leader", "elected leader", "lost leader", "changed leader"}

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(raftSprintf(format, v)) }
func (r raftLogger) Info(v ...any)                  { r.info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.info(raftSprintf(format, v)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(raftSprintf(format, v))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(raftSprintf(format, v)) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic(s)
}
func (r raftLogger) Panicf(format string, v ...any) {
	s := raftSprintf(format, v)
	r.l.Error(s)
	panic(s)
}

func (r raftLogger) info(msg string) {
	for _, k := range raftInfoKept {
		if strings.Contains(msg, k) {
			r.l.Info(msg)
			return
		}
	}
	r.l.Debug(msg)
}

// raftSprintf formats a raft log line with every uint64 argument of a %x
// verb (raft's node ids) printed as shoal's node id, in decimal; raft.None
// (no node) prints as -1, as a partition without a leader does.
func raftSprintf(format string, args []any) string {
	out := slices.Clone(args)
	f := []byte(format)
	arg := 0
	for i := 0; i < len(f) && arg < len(out); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		// Skip flags, width and precision up to the verb.
		for i < len(f) && strings.IndexByte("+-# 0123456789.", f[i]) >= 0 {
			i++
		}
		if i >= len(f) {
			break
		}
		if id, ok := out[arg].(uint64); ok && f[i] == 'x' {
			out[arg], f[i] = nodeID(id), 'd'
		}
		arg++
	}
	return fmt.Sprintf(string(f), out...)
}

// pebbleLogger routes pebble's log lines to slog; its informational lines
// (compactions, flushes) are debug-level noise for a metadata store.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.l.Error(s)
	panic(s)
}
