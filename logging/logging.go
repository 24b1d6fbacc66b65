// Package logging builds the broker's slog logger from the log.level and
// log.format settings: a default level, per-component levels, and text or
// JSON lines.
//
// log.level syntax (modelled on log4j's root logger plus named loggers, as
// a Kafka operator sets them in log4j.properties, but in one value):
//
//	info                          every component at info
//	info,request=debug            requests at debug, everything else at info
//	warn,raftmeta=info,conn=info  a quiet log that still shows raft and connections
//
// The first element without '=' is the default level; each component=level
// element overrides it for the lines that carry that "component" attribute.
// Levels are debug, info, warn and error (case-insensitive; warning is
// accepted for warn).
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ComponentKey is the attribute that names the part of the broker a line
// comes from; per-component levels match on its value.
const ComponentKey = "component"

// Levels is a parsed log.level value.
type Levels struct {
	Default    slog.Level
	Components map[string]slog.Level
}

// ParseLevels parses a log.level value (see the package doc).
func ParseLevels(spec string) (Levels, error) {
	lv := Levels{Default: slog.LevelInfo}
	sawDefault := false
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, level, hasName := strings.Cut(part, "=")
		if !hasName {
			level, name = name, ""
		}
		l, err := parseLevel(strings.TrimSpace(level))
		if err != nil {
			return Levels{}, err
		}
		name = strings.TrimSpace(name)
		switch {
		case !hasName && sawDefault:
			return Levels{}, fmt.Errorf("%q: more than one default level", spec)
		case !hasName:
			lv.Default, sawDefault = l, true
		case name == "":
			return Levels{}, fmt.Errorf("%q: empty component name", part)
		default:
			if lv.Components == nil {
				lv.Components = map[string]slog.Level{}
			}
			lv.Components[name] = l
		}
	}
	return lv, nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (debug, info, warn or error)", s)
}

// min is the lowest level any component logs at: the base handler must
// let those lines through, the component filter does the rest.
func (lv Levels) min() slog.Level {
	m := lv.Default
	for _, l := range lv.Components {
		m = min(m, l)
	}
	return m
}

// New returns a logger writing to w in format "text" or "json" (log.format)
// at the given levels.
func New(w io.Writer, format string, lv Levels) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv.min()}
	var base slog.Handler
	switch strings.ToLower(format) {
	case "", "text":
		base = slog.NewTextHandler(w, opts)
	case "json":
		base = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("unknown log format %q (text or json)", format)
	}
	return slog.New(&componentHandler{next: base, levels: lv, level: lv.Default}), nil
}

// componentHandler applies the level of the component a logger was made
// for (logger.With("component", name)); lines of loggers without one use
// the default level.
type componentHandler struct {
	next   slog.Handler
	levels Levels
	// level is the level of this logger's component.
	level slog.Level
}

func (h *componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.next.Enabled(ctx, l)
}

func (h *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h *componentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	level := h.level
	for _, a := range attrs {
		if a.Key != ComponentKey {
			continue
		}
		if l, ok := h.levels.Components[a.Value.String()]; ok {
			level = l
		}
	}
	return &componentHandler{next: h.next.WithAttrs(attrs), levels: h.levels, level: level}
}

func (h *componentHandler) WithGroup(name string) slog.Handler {
	return &componentHandler{next: h.next.WithGroup(name), levels: h.levels, level: h.level}
}
