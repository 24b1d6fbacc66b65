package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/syncbuf"
	"github.com/shoalmq/shoal/internal/testwait"
)

func TestParseFrom(t *testing.T) {
	now := time.UnixMilli(10_000_000_000)
	for _, c := range []struct {
		in   string
		want startPosition
	}{
		{"earliest", startPosition{kind: "earliest"}},
		{"latest", startPosition{kind: "latest"}},
		{"0", startPosition{kind: "offset"}},
		{"1500", startPosition{kind: "offset", offset: 1500}},
		{"-10", startPosition{kind: "relative", offset: 10}},
		{"@1700000000000", startPosition{kind: "time", millis: 1700000000000}},
		{"@1970-01-01T00:00:01Z", startPosition{kind: "time", millis: 1000}},
		{"-1h", startPosition{kind: "time", millis: now.Add(-time.Hour).UnixMilli()}},
		{"-90s", startPosition{kind: "time", millis: now.Add(-90 * time.Second).UnixMilli()}},
		{"-2d", startPosition{kind: "time", millis: now.Add(-48 * time.Hour).UnixMilli()}},
	} {
		got, err := parseFrom(c.in, now)
		if err != nil || got != c.want {
			t.Errorf("parseFrom(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "yesterday", "@", "@x", "-", "-1x", "-0s", "-d", "1.5"} {
		if _, err := parseFrom(in, now); err == nil {
			t.Errorf("parseFrom(%q) accepted", in)
		}
	}
}

func TestFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v\x00w"),
		Timestamp: time.UnixMilli(1234),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}},
	}
	for _, c := range []struct{ format, want string }{
		{`%s\n`, "v\x00w\n"},
		{`%t/%p/%o %T [%k] %K %S %h\t100%%\\`, "t/3/42 1234 [k] 1 3 a=1,b=\t100%\\"},
		{`plain %s`, "plain v\x00w"},
	} {
		f, err := compileFormat(c.format)
		if err != nil {
			t.Fatalf("%q: %v", c.format, err)
		}
		var b bytes.Buffer
		f.write(&b, r)
		if b.String() != c.want {
			t.Errorf("%q: %q, want %q", c.format, b.String(), c.want)
		}
	}
	null := &kgo.Record{}
	f, _ := compileFormat(`%K %S`)
	var b bytes.Buffer
	f.write(&b, null)
	if b.String() != "-1 -1" {
		t.Errorf("null key and value lengths: %q", b.String())
	}
	for _, bad := range []string{`%`, `%x`, `abc%`, `json`, `plain\n`} {
		if _, err := compileFormat(bad); err == nil {
			t.Errorf("compileFormat(%q) accepted", bad)
		}
	}
}

func TestProgress(t *testing.T) {
	in := &countingReader{r: strings.NewReader(strings.Repeat("x", 2048))}
	buf := make([]byte, 1024)
	in.Read(buf)
	var st produceStats
	st.acked.Store(7)

	var plain syncbuf.Buffer
	p := startProgress(&plain, false, time.Millisecond, in, 2048, &st)
	testwait.For(t, "a plain progress line", func() bool { return strings.Count(plain.String(), "\n") >= 2 })
	p.stop()
	line, _, _ := strings.Cut(plain.String(), "\n")
	if line != "read 1.0 KiB / 2.0 KiB (50%), 7 records acked, 0 failed, 7000 records/s" &&
		!strings.HasPrefix(line, "read 1.0 KiB / 2.0 KiB (50%), 7 records acked, 0 failed, ") {
		t.Fatalf("plain progress line %q", line)
	}
	if strings.Contains(plain.String(), "\r") {
		t.Fatalf("plain progress uses \\r: %q", plain.String())
	}

	var tty syncbuf.Buffer
	p = startProgress(&tty, true, time.Millisecond, in, -1, &st)
	testwait.For(t, "a terminal progress line", func() bool { return strings.Count(tty.String(), "\r") >= 2 })
	p.stop()
	out := tty.String()
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "\rread 1.0 KiB, 7 records acked") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Fatalf("terminal progress %q", out)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
