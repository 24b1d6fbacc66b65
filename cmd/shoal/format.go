package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// Output modes of the global --output flag.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// outputMode validates the global --output flag.
func outputMode(c *cli.Context) (string, error) {
	switch o := strings.ToLower(globalString(c, "output")); o {
	case outputTable, outputJSON:
		return o, nil
	default:
		return "", usageError("--output: %q is not one of table, json", globalString(c, "output"))
	}
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return failure("writing output: %v", err)
	}
	return nil
}

// printRows prints rows as a JSON array under --output json, otherwise as
// a table under header with cells giving each row's columns: both modes
// print the same rows, so a script and a reader get one answer.
func printRows[R any](w io.Writer, out string, rows []R, header []string, cells func(R) []any) error {
	if out == outputJSON {
		return writeJSON(w, rows)
	}
	return writeTable(w, header, rows, cells)
}

// writeTable prints rows as a table under header, with cells giving each
// row's columns.
func writeTable[R any](w io.Writer, header []string, rows []R, cells func(R) []any) error {
	t := newTable(w, header...)
	for _, r := range rows {
		t.row(cells(r)...)
	}
	return t.flush()
}

// table prints aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprint(t.tw, "\n")
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return failure("writing output: %v", err)
	}
	return nil
}

// joinInt32s renders a replica list as "1,2,3".
func joinInt32s(xs []int32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

// printable renders bytes for a human: as they are when they are printable
// UTF-8, otherwise Go-quoted so control and binary bytes are visible.
// A nil slice (a Kafka null) prints as "null".
func printable(b []byte) string {
	if b == nil {
		return "null"
	}
	if utf8.Valid(b) {
		ok := true
		for _, r := range string(b) {
			if !unicode.IsPrint(r) && r != ' ' {
				ok = false
				break
			}
		}
		if ok {
			return string(b)
		}
	}
	return fmt.Sprintf("%q", b)
}

// parseKeyValues parses repeated k=v flags.
func parseKeyValues(flag string, kvs []string) (map[string]string, []string, error) {
	m := make(map[string]string, len(kvs))
	var order []string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, usageError("--%s: %q is not key=value", flag, kv)
		}
		if _, dup := m[k]; !dup {
			order = append(order, k)
		}
		m[k] = v
	}
	return m, order, nil
}

// sortByTopicPartition sorts rows by topic, then partition.
func sortByTopicPartition[T any](rows []T, key func(T) (topic string, partition int32)) {
	slices.SortFunc(rows, func(a, b T) int {
		ta, pa := key(a)
		tb, pb := key(b)
		return cmp.Or(strings.Compare(ta, tb), cmp.Compare(pa, pb))
	})
}
