package fetchsession

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The scripts in testdata drive a Cache:
//
//	new slots=N [partitions=P]        a fresh cache (at most P partitions)
//	open name=F at=SECS [session=S] epoch=E [ids] [follower]
//	  topic-partition@offset          a partition the request names
//	  forget topic-partition          a partition it forgets
//	finish name=F at=SECS
//	  hw/logstart [err] [news]        the read of each partition, in order
//	stats
//
// Session ids are random, so the output names them S1, S2, ... in the
// order they are made; session=S1 in a command is that session's id.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var c *Cache
		fetches := map[string]*Fetch{}
		alias := map[int32]string{}
		ids := map[string]int32{}
		at := func(d *datadriven.TestData) time.Time {
			var secs int
			d.ScanArgs(t, "at", &secs)
			return time.Unix(1_000_000, 0).Add(time.Duration(secs) * time.Second)
		}
		name := func(id int32) string {
			if id == 0 {
				return "none"
			}
			if a, ok := alias[id]; ok {
				return a
			}
			a := fmt.Sprintf("S%d", len(alias)+1)
			alias[id], ids[a] = a, id
			return a
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "new":
				var slots int
				d.ScanArgs(t, "slots", &slots)
				c = New(slots)
				if d.HasArg("partitions") {
					d.ScanArgs(t, "partitions", &c.maxPartitions)
				}
				return ""
			case "open":
				var fname, sess string
				var epoch int
				d.ScanArgs(t, "name", &fname)
				d.ScanArgs(t, "epoch", &epoch)
				r := Request{Epoch: int32(epoch), TopicIDs: d.HasArg("ids"), Privileged: d.HasArg("follower")}
				if d.HasArg("session") {
					d.ScanArgs(t, "session", &sess)
					id, ok := ids[sess]
					if !ok {
						n, err := strconv.Atoi(sess)
						if err != nil {
							d.Fatalf(t, "unknown session %q", sess)
						}
						id = int32(n)
					}
					r.SessionID = id
				}
				for _, line := range lines(d.Input) {
					if k, ok := strings.CutPrefix(line, "forget "); ok {
						r.Forgotten = append(r.Forgotten, key(t, k, r.TopicIDs))
						continue
					}
					kp, off, _ := strings.Cut(line, "@")
					o, _ := strconv.ParseInt(off, 10, 64)
					r.Partitions = append(r.Partitions, Partition{Key: key(t, kp, r.TopicIDs), Params: Params{FetchOffset: o}})
				}
				f := c.Open(at(d), r)
				fetches[fname] = f
				if f.Kind == Failed {
					return "failed: " + kerr.ErrorForCode(f.Err).Error() + "\n"
				}
				return []string{"sessionless", "full", "incremental"}[f.Kind] + ": " + describe(f.Partitions) + "\n"
			case "finish":
				var fname string
				d.ScanArgs(t, "name", &fname)
				f := fetches[fname]
				var results []Result
				for _, line := range lines(d.Input) {
					fs := strings.Fields(line)
					hw, ls, _ := strings.Cut(fs[0], "/")
					r := Result{}
					r.HighWatermark, _ = strconv.ParseInt(hw, 10, 64)
					r.LogStartOffset, _ = strconv.ParseInt(ls, 10, 64)
					for _, flag := range fs[1:] {
						r.Errored = r.Errored || flag == "err"
						r.News = r.News || flag == "news"
					}
					results = append(results, r)
				}
				if len(results) != len(f.Partitions) {
					d.Fatalf(t, "%d results for %d partitions", len(results), len(f.Partitions))
				}
				keep := make([]bool, len(results))
				id, code := f.Finish(at(d), results, keep)
				var kept []Partition
				for i, k := range keep {
					if k {
						kept = append(kept, f.Partitions[i])
					}
				}
				out := "session=" + name(id)
				if code != 0 {
					out += " error=" + kerr.ErrorForCode(code).Error()
				}
				return out + " carries: " + describe(kept) + "\n"
			case "stats":
				s := c.Stats()
				return fmt.Sprintf("sessions=%d partitions=%d evictions=%d\n", s.Sessions, s.Partitions, s.Evictions)
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// key parses topic-partition; with ids the topic is a topic id whose
// first byte is the topic's first letter.
func key(t *testing.T, s string, ids bool) Key {
	i := strings.LastIndexByte(s, '-')
	p, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("partition %q: %v", s, err)
	}
	k := Key{Partition: int32(p)}
	if ids {
		k.TopicID[0] = s[0]
	} else {
		k.Topic = s[:i]
	}
	return k
}

func describe(parts []Partition) string {
	if len(parts) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		topic := p.Topic
		if p.TopicID != ([16]byte{}) {
			topic = "id:" + string(p.TopicID[0])
		}
		fmt.Fprintf(&b, "%s-%d@%d", topic, p.Partition, p.FetchOffset)
	}
	return b.String()
}

func TestNextEpochWraps(t *testing.T) {
	for _, c := range []struct{ in, want int32 }{{0, 1}, {1, 2}, {2147483647, 1}, {-1, -1}} {
		if got := nextEpoch(c.in); got != c.want {
			t.Errorf("nextEpoch(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
