package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/redrive"
)

// The console tests drive Debian's chromium headless against a real
// `shoal serve` and compare what the pages show with what kadm reads from
// the same node.

// chromiumPath finds a Chromium binary. Without one the browser tests
// skip, except under CI, where they must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium binary on PATH and CI is set: the console's browser tests must run (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium binary on PATH (apt-get install chromium): skipping the console's browser tests")
	return ""
}

// browser is one headless Chromium tab on a node's console.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // http://admin/ui/
	shots string
}

func newBrowser(t *testing.T, n *node) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	shots := os.Getenv("SHOAL_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", shots)
	return &browser{t: t, ctx: ctx, base: "http://" + n.AdminAddr() + "/ui/", shots: shots}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open loads the console (a full navigation) at a route, waits until the
// page has rendered its data, and measures the load.
func (b *browser) open(route, page string) {
	b.t.Helper()
	// By way of a blank page, so that opening the route the tab already
	// shows loads it afresh instead of only moving to its anchor.
	b.do("open "+route, chromedp.Navigate("about:blank"), chromedp.Navigate(b.base+route),
		chromedp.WaitVisible(chromedp.CSS(`main[data-ready][data-page="`+page+`"]`)))
	b.noError()
	b.measure(page)
}

// follow clicks a link or button and waits for the page it leads to.
func (b *browser) follow(sel, page string) {
	b.t.Helper()
	b.eval(`document.getElementById("main").removeAttribute("data-ready"), ""`)
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitVisible(chromedp.CSS(`main[data-ready][data-page="`+page+`"]`)))
	b.noError()
}

func (b *browser) noError() {
	b.t.Helper()
	if msg := b.eval(`(document.getElementById("error") || {}).textContent || ""`); msg != "" {
		b.t.Fatalf("the page shows an error: %s", msg)
	}
}

// text is the visible text of the first element matching a CSS selector,
// read in one evaluation in the page once the element exists. The page
// re-renders every 5 s: a query that found the element before a re-render
// and read it after would read the replaced copy, detached and blank.
func (b *browser) text(sel string) string {
	b.t.Helper()
	// "=" marks a found element, so that an empty text is told from none.
	js := `(() => { const el = document.querySelector(` + strconv.Quote(sel) + `); return el ? "=" + el.innerText : "" })()`
	var s string
	waitFor(b.t, 10*time.Second, sel, func() (bool, string) {
		if s = b.eval(js); s != "" {
			return true, ""
		}
		return false, "no such element; the page shows:\n" + b.eval(`document.getElementById("main").innerText`)
	})
	return strings.TrimSpace(strings.TrimPrefix(s, "="))
}

// fillAndClick sets the value of the input sel and clicks button, in one
// evaluation in the page: the page re-renders every 5 s, and a re-render
// between the two resets the input to its default (a delete of the records
// below offset 2 ran below the partition's end instead). The click opens a
// confirmation, which holds re-renders off until it is answered.
func (b *browser) fillAndClick(sel, value, button string) {
	b.t.Helper()
	b.eval(`document.querySelector(` + strconv.Quote(sel) + `).value = ` + strconv.Quote(value) +
		`, document.querySelector(` + strconv.Quote(button) + `).click(), ""`)
}

// redrive picks the records at offsets on the messages page and asks for
// their redrive, which opens the confirmation.
func (b *browser) redrive(what string, offsets ...int) {
	b.t.Helper()
	var clicks []chromedp.Action[chromedp.Void]
	for _, o := range offsets {
		clicks = append(clicks, chromedp.Click(chromedp.CSS(`#messages tr[data-offset="`+strconv.Itoa(o)+`"] input.pick`)))
	}
	b.do(what, append(clicks, chromedp.Click(chromedp.CSS("#redrive")))...)
}

// confirm answers the open confirmation yes and returns the action's
// result once ok accepts it.
func (b *browser) confirm(what string, ok func(string) bool) string {
	b.t.Helper()
	b.do("confirm "+what, chromedp.Click(chromedp.CSS("#confirm-yes")))
	return b.waitText("#action-result", what, ok)
}

// shown accepts any result: the caller checks what it says.
func shown(s string) bool { return s != "" }

// number is an element's text as an integer (the page groups digits).
func (b *browser) number(sel string) int64 {
	b.t.Helper()
	s := strings.ReplaceAll(b.text(sel), ",", "")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		b.t.Fatalf("%s shows %q, not a number", sel, s)
	}
	return n
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, "console-"+name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitText waits until an element's text satisfies ok.
func (b *browser) waitText(sel, what string, ok func(string) bool) string {
	b.t.Helper()
	var last string
	waitFor(b.t, 20*time.Second, what, func() (bool, string) {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
			`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ""`))
		last = s
		return err == nil && ok(s), fmt.Sprintf("%s shows %q (err %v)", sel, s, err)
	})
	return last
}

// consoleFixture is the cluster state the console test looks at.
type consoleFixture struct {
	orders, jobs, dlq, group, share string
	group848                        string // a KIP-848 consumer group
	perPartition                    int
	committed                       map[int32]int64
	member                          *kgo.Client
	shareMember                     *kgo.Client
}

// setUpConsoleCluster creates a topic with keyed JSON records on three
// partitions, a consumer group with lag (a live member that committed part
// of each partition), and a share group with records in flight, two of
// them rejected to the dead-letter topic.
func setUpConsoleCluster(t *testing.T, n *node) consoleFixture {
	t.Helper()
	f := consoleFixture{orders: "orders", jobs: "jobs", dlq: "dlq.jobs", group: "billing", group848: "audit", share: "workers",
		perPartition: 10, committed: map[int32]int64{0: 4, 1: 7, 2: 10}}
	cl := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, f.orders, 3, nil)
	createTopic(t, adm, f.jobs, 1, nil)
	createTopic(t, adm, f.dlq, 1, map[string]*string{"errors.deadletterqueue.group.enable": strp("true")})

	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for i := 0; i < f.perPartition; i++ {
			r := &kgo.Record{Topic: f.orders, Partition: p, Key: []byte(fmt.Sprintf("order-%d-%d", p, i)),
				Value: []byte(fmt.Sprintf(`{"partition":%d,"n":%d,"item":"widget"}`, p, i))}
			if i%2 == 0 {
				r.Headers = []kgo.RecordHeader{{Key: "region", Value: []byte("eu")}}
			}
			recs = append(recs, r)
		}
	}
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: f.jobs, Partition: 0, Key: []byte(fmt.Sprintf("job-%d", i)), Value: []byte(fmt.Sprintf("payload %d", i)),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprintf("t%d", i))}}})
	}
	if err := cl.ProduceSync(ctxT(t, opTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	// A live consumer group member that committed part of each partition.
	f.member = n.Client(t, kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(f.orders), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeN(t, f.member, 3*f.perPartition, opTimeout)
	commit := map[string]map[int32]kgo.EpochOffset{f.orders: {}}
	for p, o := range f.committed {
		commit[f.orders][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	if err := commitSync(t, f.member, commit); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// A KIP-848 consumer group that read and committed everything.
	audit := n.Client(t, kgo.ConsumerGroup(f.group848), kgo.ConsumeTopics(f.orders), kgo.ServerSideBalancer(),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeN(t, audit, 3*f.perPartition, opTimeout)
	if err := audit.CommitUncommittedOffsets(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("commit %s: %v", f.group848, err)
	}

	// A share group: 3 records accepted, 2 rejected (dead-lettered), the
	// other 5 acquired and held by a live member.
	// A delivery limit of 2 puts the records in flight one failure from it;
	// dead letters carry the job itself, for the redrive below.
	setGroupConfigs(t, cl, f.share, "share.auto.offset.reset=earliest", "errors.deadletterqueue.topic.name="+f.dlq, "share.delivery.count.limit=2",
		"errors.deadletterqueue.copy.record.enable=true")
	// The ten jobs are one batch, so one poll acquires them all: a second
	// poll with records would implicitly accept the unmarked ones.
	f.shareMember = shareClient(t, n, f.share, f.jobs)
	var got []*kgo.Record
	waitFor(t, opTimeout, "the share member to acquire the 10 jobs", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		got = append(got, f.shareMember.PollRecords(ctx, 100).Records()...)
		return len(got) >= 10, fmt.Sprintf("%d acquired", len(got))
	})
	for _, r := range got {
		switch string(r.Key) {
		case "job-0", "job-1", "job-2":
			f.shareMember.MarkAcks(kgo.AckAccept, r)
		case "job-3", "job-4":
			f.shareMember.MarkAcks(kgo.AckReject, r)
		}
	}
	if err := f.shareMember.FlushAcks(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("flush acks: %v", err)
	}
	waitFor(t, opTimeout, "two dead letters", func() (bool, string) {
		ends := highWatermarks(t, n, f.dlq)
		return ends[0] == 2, fmt.Sprintf("dead-letter topic end %d", ends[0])
	})
	return f
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

func commitSync(t *testing.T, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) error {
	var cerr error
	cl.CommitOffsetsSync(ctxT(t, opTimeout), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 && cerr == nil {
					cerr = fmt.Errorf("%s/%d: error code %d", rt.Topic, rp.Partition, rp.ErrorCode)
				}
			}
		}
	})
	return cerr
}

func TestConsoleInBrowser(t *testing.T) {
	chromiumPath(t)
	// The share page is checked to show records 5-9 delivered once, their
	// lock running, after the pages before it: on a loaded machine that
	// is more than Kafka's 30 s lock, and an expired lock lets the member
	// acquire them again. Locks here outlast the test.
	n := startShareNode(t, "group.share.record.lock.duration.ms=600000", "group.share.max.record.lock.duration.ms=600000")
	f := setUpConsoleCluster(t, n)
	adm := n.Admin(t)
	ctx := ctxT(t, 2*time.Minute)
	b := newBrowser(t, n)

	// Cluster: the node, the controller and a healthy quorum.
	b.open("#/cluster", "cluster")
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.number("#n-brokers"); got != int64(len(md.Brokers)) {
		t.Errorf("cluster page shows %d brokers, Metadata has %d", got, len(md.Brokers))
	}
	if got := b.number("#controller"); got != int64(md.Controller) {
		t.Errorf("cluster page shows controller %d, Metadata says %d", got, md.Controller)
	}
	if got := b.number("#n-urp"); got != 0 {
		t.Errorf("cluster page shows %d under-replicated partitions on a one-node cluster", got)
	}
	if got := b.number(`[data-k="quorum-lag-1"]`); got != 0 {
		t.Errorf("quorum lag of the only voter: %d", got)
	}
	b.screenshot("cluster")

	// Topics: partitions, replication and a size from DescribeLogDirs.
	b.open("#/topics", "topics")
	row := `#topics tr[data-topic="` + f.orders + `"] `
	if got := b.number(row + `[data-k="partitions"]`); got != 3 {
		t.Errorf("topics page: %s has %d partitions, want 3", f.orders, got)
	}
	if got := b.number(row + `[data-k="rf"]`); got != 1 {
		t.Errorf("topics page: %s replication %d, want 1", f.orders, got)
	}
	if got := b.text(row + `[data-k="size"]`); got == "0 B" {
		t.Errorf("topics page: %s size %q after 30 records", f.orders, got)
	}
	b.screenshot("topics")

	// Topic: per-partition offsets equal ListStartOffsets/ListEndOffsets.
	b.follow(row+`[data-k="name"] a`, "topic")
	ends, err := adm.ListEndOffsets(ctx, f.orders)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if got := b.number(fmt.Sprintf(`[data-k="end-%d"]`, o.Partition)); got != o.Offset {
			t.Errorf("topic page: partition %d end %d, ListEndOffsets %d", o.Partition, got, o.Offset)
		}
		if got := b.number(fmt.Sprintf(`[data-k="lso-%d"]`, o.Partition)); got != o.Offset {
			t.Errorf("topic page: partition %d LSO %d, want %d (no transactions)", o.Partition, got, o.Offset)
		}
		if got := b.text(fmt.Sprintf(`[data-k="size-%d"]`, o.Partition)); got == "0 B" {
			t.Errorf("topic page: partition %d size %q after 10 records", o.Partition, got)
		}
		if got := b.number(fmt.Sprintf(`[data-k="start-%d"]`, o.Partition)); got != 0 {
			t.Errorf("topic page: partition %d start %d, want 0", o.Partition, got)
		}
	})
	if got := b.text(`[data-k="cfg-cleanup.policy"]`); got != "delete" {
		t.Errorf("topic page: cleanup.policy %q", got)
	}
	b.screenshot("topic")

	// Messages: browse partition 1 newest first from the topic page.
	b.follow(`#partitions tr:nth-child(3) a[href^="#/messages"]`, "messages")
	keys := b.eval(`[...document.querySelectorAll('#messages [data-k="key"]')].map(e => e.textContent).join(",")`)
	var want []string
	for i := f.perPartition - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("order-1-%d", i))
	}
	if keys != strings.Join(want, ",") {
		t.Errorf("messages newest first: keys %s, want %s", keys, strings.Join(want, ","))
	}
	// Oldest first from offset 3, as pretty JSON, only records with the
	// region header.
	b.do("fill the browse form",
		chromedp.SetValue(chromedp.CSS("#f-from"), "offset"), chromedp.SetValue(chromedp.CSS("#f-at"), "3"),
		chromedp.SetValue(chromedp.CSS("#f-order"), "oldest"), chromedp.SetValue(chromedp.CSS("#f-header"), "region=eu"),
		chromedp.SetValue(chromedp.CSS("#f-as"), "json"))
	b.follow("#f-go", "messages")
	offsets := b.eval(`[...document.querySelectorAll('#messages tr[data-offset]')].map(e => e.dataset.offset).join(",")`)
	if offsets != "4,6,8" {
		t.Errorf("messages oldest first from 3 with header region=eu: offsets %s, want 4,6,8", offsets)
	}
	if v := b.text(`#messages tr[data-offset="4"] [data-k="value"]`); !strings.Contains(v, "\"item\": \"widget\"") {
		t.Errorf("JSON view of offset 4: %q, want it pretty-printed", v)
	}
	b.screenshot("messages")
	// From a timestamp: the first record at or after it, as ListOffsets
	// finds it; a time after every record leaves nothing to show.
	lastTs := b.eval(`String(Date.parse(document.querySelector('#messages tr[data-offset="8"] td:nth-child(2)').textContent))`)
	b.eval(`document.getElementById("f-header").value = "", ""`)
	b.do("browse from a timestamp", chromedp.SetValue(chromedp.CSS("#f-from"), "timestamp"), chromedp.SetValue(chromedp.CSS("#f-at"), lastTs),
		chromedp.SetValue(chromedp.CSS("#f-limit"), "1"))
	b.follow("#f-go", "messages")
	byTime, err := adm.ListOffsetsAfterMilli(ctx, mustInt(t, lastTs), f.orders)
	if err != nil {
		t.Fatal(err)
	}
	o1, _ := byTime.Lookup(f.orders, 1)
	if got := b.eval(`[...document.querySelectorAll('#messages tr[data-offset]')].map(e => e.dataset.offset).join(",")`); got != strconv.FormatInt(o1.Offset, 10) {
		t.Errorf("messages from timestamp %s: offsets %s, ListOffsets says %d", lastTs, got, o1.Offset)
	}
	b.do("browse from the future", chromedp.SetValue(chromedp.CSS("#f-at"), strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)))
	b.follow("#f-go", "messages")
	if got := b.eval(`String(document.querySelectorAll('#messages tr[data-offset]').length)`); got != "0" {
		t.Errorf("messages from an hour ahead: %s records shown", got)
	}

	// Consumer group: members, committed offsets and lag as kadm sees them.
	b.open("#/groups", "groups")
	if got := b.text(`#groups tr[data-group="` + f.share + `"] [data-k="type"]`); got != "share" {
		t.Errorf("groups page: %s type %q", f.share, got)
	}
	if got := b.text(`#groups tr[data-group="` + f.group848 + `"] [data-k="type"]`); got != "consumer" {
		t.Errorf("groups page: %s type %q, want consumer (KIP-848)", f.group848, got)
	}
	b.follow(`#groups tr[data-group="`+f.group848+`"] a`, "group")
	if got := b.text("#group-protocol"); !strings.HasPrefix(got, "consumer / ") {
		t.Errorf("KIP-848 group page: protocol %q", got)
	}
	if got := b.number("#group-members"); got != 1 {
		t.Errorf("KIP-848 group page: %d members, want 1", got)
	}
	for p := 0; p < 3; p++ {
		k := fmt.Sprintf("%s-%d", f.orders, p)
		if c, l := b.number(`[data-k="committed-`+k+`"]`), b.number(`[data-k="lag-`+k+`"]`); c != int64(f.perPartition) || l != 0 {
			t.Errorf("KIP-848 group page: %s committed %d lag %d, want %d and 0", k, c, l, f.perPartition)
		}
	}
	b.open("#/groups", "groups")
	b.follow(`#groups tr[data-group="`+f.group+`"] a`, "group")
	lags, err := adm.Lag(ctx, f.group)
	if err != nil {
		t.Fatal(err)
	}
	gl := lags[f.group]
	if got := b.text("#group-state"); got != gl.State {
		t.Errorf("group page: state %q, DescribeGroups %q", got, gl.State)
	}
	if got := b.number("#group-members"); got != 1 {
		t.Errorf("group page: %d members, want 1", got)
	}
	var total int64
	for p, c := range f.committed {
		k := fmt.Sprintf("%s-%d", f.orders, p)
		l, _ := gl.Lag.Lookup(f.orders, p)
		if got := b.number(`[data-k="committed-` + k + `"]`); got != c {
			t.Errorf("group page: committed %s = %d, want %d", k, got, c)
		}
		if got := b.number(`[data-k="lag-` + k + `"]`); got != l.Lag {
			t.Errorf("group page: lag %s = %d, kadm.Lag %d", k, got, l.Lag)
		}
		total += l.Lag
	}
	if got := b.number("#group-lag"); got != total || total != 3+6 {
		t.Errorf("group page: total lag %d, kadm %d, want 9", got, total)
	}
	// The lag chart fills from the sampler.
	b.waitText(".legend", "a lag sample in the chart", func(s string) bool { return strings.Contains(s, "lag: 9") })
	b.screenshot("group")

	// Share group: start offset and lag from DescribeShareGroupOffsets,
	// the dead letters, and the note on what the APIs do not expose.
	b.open("#/share/"+f.share, "share")
	so, err := adm.DescribeShareGroupOffsets(ctx, f.share)
	if err != nil {
		t.Fatal(err)
	}
	o := so[f.share].Offsets[f.jobs][0]
	if got := b.number(`[data-k="spso-` + f.jobs + `-0"]`); got != o.StartOffset || got != 5 {
		t.Errorf("share page: start offset %d, DescribeShareGroupOffsets %d, want 5 (0-4 done, 5-9 acquired)", got, o.StartOffset)
	}
	if got := b.number(`[data-k="slag-` + f.jobs + `-0"]`); got != o.Lag {
		t.Errorf("share page: lag %d, DescribeShareGroupOffsets %d", got, o.Lag)
	}
	if got := b.number("#dead-letters"); got != 2 {
		t.Errorf("share page: %d dead letters, want 2", got)
	}
	if got := b.number("#share-members"); got != 1 {
		t.Errorf("share page: %d members, want 1", got)
	}
	// The in-flight states, from this node's metrics: job-5..9 held by
	// the live member.
	for state, want := range map[string]int64{"available": 0, "acquired": 5, "acknowledged": 0, "archived": 0} {
		if got := b.number(`[data-k="` + state + `-` + f.jobs + `-0"]`); got != want {
			t.Errorf("share page: %d records %s, want %d", got, state, want)
		}
	}
	// What is stuck and why: job-5..9 held by the member, delivered once
	// of at most 2, their lock expiring; the two dead letters, rejected.
	described, err := adm.DescribeShareGroups(ctx, f.share)
	if err != nil || len(described[f.share].Members) != 1 {
		t.Fatalf("DescribeShareGroups: %v %+v", err, described)
	}
	member := described[f.share].Members[0].MemberID
	run := `#unsettled tr[data-range="` + f.jobs + `-0-5-9"] `
	if got := b.text(run + `[data-k="member"]`); got != member {
		t.Errorf("share page: records 5-9 held by %q, ShareGroupDescribe's member is %q", got, member)
	}
	if got := b.text(run + `[data-k="deliveries"]`); !strings.HasPrefix(got, "1 / 2") {
		t.Errorf("share page: records 5-9 deliveries %q, want 1 / 2", got)
	}
	if got := b.text(run + `[data-k="expiry"]`); !strings.HasPrefix(got, "lock expires in ") {
		t.Errorf("share page: records 5-9 lock %q", got)
	}
	if got := b.number("#near-limit"); got != 5 {
		t.Errorf("share page: %d records near the delivery limit, want 5", got)
	}
	if got := b.text(`[data-k="holds-` + member + `"]`); !strings.HasPrefix(got, f.jobs+"/0 5–9 (5 records") {
		t.Errorf("share page: the member holds %q", got)
	}
	dead := b.eval(`[...document.querySelectorAll('#dead-letter-table tr[data-offset]')].map(e => e.querySelector('[data-k="key"]').textContent + ":" + e.querySelector('[data-k="reason"]').textContent + ":" + e.querySelector('[data-k="source"]').textContent).join(",")`)
	if dead != "job-4:rejected:jobs/0 @ 4,job-3:rejected:jobs/0 @ 3" && dead != "job-3:rejected:jobs/0 @ 3,job-4:rejected:jobs/0 @ 4" {
		t.Errorf("share page dead letters: %s, want job-3 and job-4, rejected, from jobs/0 @ 3 and 4", dead)
	}
	b.screenshot("share")

	// The dead letters in the browser, with their reason header; a
	// redrive is refused while writes are off.
	b.follow(`a[href^="#/messages?topic=`+f.dlq+`"]`, "messages")
	if got := b.eval(`[...document.querySelectorAll('#messages [data-k="key"]')].map(e => e.textContent).join(",")`); got != "job-4,job-3" {
		t.Errorf("dead letters newest first: keys %s, want job-4,job-3", got)
	}
	b.screenshot("dlq")
	b.redrive("select job-3", 0)
	if got := b.confirm("the refusal", shown); !strings.Contains(got, "admin.ui.allow.writes") {
		t.Errorf("redrive with writes off: %q, want a refusal naming admin.ui.allow.writes", got)
	}
	if ends := highWatermarks(t, n, f.jobs); ends[0] != 10 {
		t.Errorf("a refused redrive produced: jobs end %d", ends[0])
	}

	// Writes on: delete records, reset an offset, redrive a dead letter.
	f.member.Close()
	f.shareMember.Close()
	n.Stop()
	n.opts.set = append(n.opts.set, "admin.ui.allow.writes=true")
	n.Restart()
	adm = n.Admin(t)

	b.open("#/topic/"+f.orders, "topic")
	b.fillAndClick("#delete-at-0", "2", "#delete-0")
	b.confirm("the delete of partition 0's records below 2", func(s string) bool { return strings.Contains(s, "log start is now 2") })
	starts, err := adm.ListStartOffsets(ctx, f.orders)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup(f.orders, 0); s.Offset != 2 {
		t.Errorf("after delete records in the console: log start %d, want 2", s.Offset)
	}

	b.open("#/group/"+f.group, "group")
	k := f.orders + "-0"
	b.fillAndClick("#reset-to-"+k, "latest", "#reset-"+k)
	b.confirm("the reset of partition 0 to latest", func(s string) bool { return strings.Contains(s, "Committed offset 10") })
	fetched, err := adm.FetchOffsets(ctx, f.group)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := fetched.Lookup(f.orders, 0); c.At != 10 {
		t.Errorf("after reset in the console: committed %d, want 10", c.At)
	}

	b.open("#/messages?topic="+f.dlq+"&partition=0", "messages")
	b.redrive("redrive job-3", 0)
	b.confirm("the redrive of job-3", func(s string) bool { return strings.Contains(s, "0: redriven → "+f.jobs+"/0") })
	rd := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.jobs: {0: kgo.NewOffset().At(10)}}))
	got := consumeN(t, rd, 1, opTimeout)[0]
	if string(got.Key) != "job-3" || string(got.Value) != "payload 3" {
		t.Errorf("redriven record: key %q value %q, want job-3 / payload 3", got.Key, got.Value)
	}
	for _, h := range got.Headers {
		if strings.HasPrefix(h.Key, "__dlq.") {
			t.Errorf("redriven record kept header %s", h.Key)
		}
	}
	// A second redrive of the same record is not produced again.
	b.open("#/messages?topic="+f.dlq+"&partition=0", "messages")
	b.redrive("redrive job-3 again", 0)
	b.confirm("the repeated redrive of job-3", func(s string) bool { return strings.Contains(s, "already redriven") })
	// Each redrive is a transaction: the record and its commit marker.
	if ends := highWatermarks(t, n, f.jobs); ends[0] != 12 {
		t.Errorf("jobs end %d after one redrive, want 12 (job-3 at 10, a commit marker at 11)", ends[0])
	}
	// And not after a restart either: the progress is a committed offset.
	// The same selection plus job-4 redrives only job-4.
	n.Stop()
	n.Restart()
	b.open("#/messages?topic="+f.dlq+"&partition=0", "messages")
	b.redrive("redrive job-3 and job-4 after a restart", 0, 1)
	if got := b.confirm("the redrive after a restart", shown); !strings.Contains(got, "0: already redriven") || !strings.Contains(got, "1: redriven → "+f.jobs+"/0") {
		t.Errorf("redrive of job-3 and job-4 after a restart: %q, want job-3 already redriven and job-4 redriven", got)
	}
	if ends := highWatermarks(t, n, f.jobs); ends[0] != 14 {
		t.Errorf("jobs end %d after redriving job-3 once and job-4 once, want 14 (two records, two commit markers)", ends[0])
	}
	var redriven []string
	for _, r := range consumeN(t, n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.jobs: {0: kgo.NewOffset().At(10)}})), 2, opTimeout) {
		redriven = append(redriven, string(r.Key))
	}
	if strings.Join(redriven, ",") != "job-3,job-4" {
		t.Errorf("records redriven to %s: %v, want job-3,job-4", f.jobs, redriven)
	}
	// The progress is the redrive package's markers, which the CLI reads
	// too: both dead letters redriven to their source partition.
	marked, err := redrive.Redriven(ctx, append([]kgo.Opt{kgo.SeedBrokers(n.Addr())}, n.opts.clientOpts...), f.dlq)
	if err != nil {
		t.Fatal(err)
	}
	if marked["0:0"] != f.jobs+"/0" || marked["0:1"] != f.jobs+"/0" {
		t.Errorf("redrive markers of %s: %v, want 0:0 and 0:1 redriven to %s/0", f.dlq, marked, f.jobs)
	}
	for _, what := range []string{"console: deleted records", "console: reset group offset", "console: redrove dead letter"} {
		if !strings.Contains(n.Output(), what) {
			t.Errorf("server log lacks %q", what)
		}
	}
}

// pageLoad is what the browser measured of one full load of a page.
type pageLoad struct {
	InteractiveMs, LoadMs, ReadyMs float64
	Transfer, Body                 int64
	Requests                       int
}

// measure reads the Navigation and Resource Timing of the page just
// loaded: bytes over the wire (the page, its assets and its API calls),
// DOM interactive, load, and when the page showed its data (the
// console-ready mark app.js sets after the first render). It logs them and
// fails if the data took more than a generous bound.
func (b *browser) measure(page string) {
	b.t.Helper()
	js := `JSON.stringify((() => {
		const nav = performance.getEntriesByType("navigation")[0];
		const res = performance.getEntriesByType("resource");
		return {
			interactiveMs: nav.domInteractive, loadMs: nav.loadEventEnd,
			readyMs: (performance.getEntriesByName("console-ready")[0] || {}).startTime || -1,
			transfer: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0),
			body: nav.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
			requests: 1 + res.length,
		};
	})())`
	var m pageLoad
	if err := json.Unmarshal([]byte(b.eval(js)), &m); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("console page %-8s: %d requests, %6d bytes transferred (%6d decoded), DOM interactive %4.0f ms, loaded %4.0f ms, data shown %4.0f ms",
		page, m.Requests, m.Transfer, m.Body, m.InteractiveMs, m.LoadMs, m.ReadyMs)
	// The bound is loose on purpose: CI shares two cores with other
	// tests; the figures logged are what to compare.
	if m.ReadyMs < 0 || m.ReadyMs > 10_000 {
		b.t.Errorf("the console showed the %s page's data after %.0f ms", page, m.ReadyMs)
	}
}

// openExpectingError loads a route whose page must show an error, and
// returns it.
func (b *browser) openExpectingError(route, page string) string {
	b.t.Helper()
	b.do("open "+route, chromedp.Navigate("about:blank"), chromedp.Navigate(b.base+route),
		chromedp.WaitVisible(chromedp.CSS(`main[data-ready][data-page="`+page+`"]`)))
	return b.text("#error")
}

// login fills the console's login form and waits for the page it shows
// next.
func (b *browser) login(user, password, page string) {
	b.t.Helper()
	b.eval(`document.getElementById("main").removeAttribute("data-ready"), ""`)
	b.do("log in as "+user, chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SetValue(chromedp.CSS("#login-user"), user), chromedp.SetValue(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-go")), chromedp.WaitVisible(chromedp.CSS(`main[data-ready][data-page="`+page+`"]`)))
	b.noError()
}

// logout clicks the header's log-out button and waits for the login page.
func (b *browser) logout() {
	b.t.Helper()
	b.eval(`document.getElementById("main").removeAttribute("data-ready"), ""`)
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS(`main[data-ready][data-page="login"]`)))
}

// TestConsoleActsAsTheLoggedInUser: on a SASL_SSL listener with an
// authorizer the console asks each person for their Kafka credentials and
// acts as them: alice, with READ on one topic, browses it and is refused
// the other; bob, without READ on the group or WRITE where a redrive
// writes, sees the broker's authorization errors and changes nothing.
func TestConsoleActsAsTheLoggedInUser(t *testing.T) {
	chromiumPath(t)
	sn := startSecureNode(t, "admin.ui.allow.writes=true")
	const alpha, beta, dlq, group = "alpha", "beta", "dlq.alpha", "alpha-readers"
	for _, u := range []string{"alice", "bob"} {
		sn.cli(t, "admin", "user", "scram", "set", "--name", u, "--mechanism", "SCRAM-SHA-512", "--password", u+"-secret")
	}
	for _, tp := range []string{alpha, beta, dlq} {
		sn.cli(t, "admin", "topic", "create", tp, "--partitions", "1")
	}
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:alice", "--allow-principal", "User:bob", "--operation", "READ", "--topic", alpha, "--topic", dlq)
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:bob", "--operation", "DESCRIBE", "--group", group)
	// What a redrive writes with, as docs/operations.md lists it.
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:alice", "--operation", "WRITE", "--topic", alpha)
	redriveACLs := [][]string{
		{"acl", "create", "--allow-principal", "User:alice", "--operation", "CREATE", "--operation", "READ", "--operation", "WRITE", "--topic", dlq + ".redriven"},
		{"acl", "create", "--allow-principal", "User:alice", "--operation", "WRITE", "--transactional-id", "shoal-redrive-" + dlq},
	}
	ops, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range redriveACLs {
		sn.cli(t, "admin", args...)
		if line := "shoal " + strings.Join(args, " ") + "\n"; !strings.Contains(string(ops), line) {
			t.Errorf("docs/operations.md does not show %q", line)
		}
	}

	admin := sn.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 2*time.Minute)
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: alpha, Key: []byte(fmt.Sprint("a-", i))}, &kgo.Record{Topic: beta, Key: []byte(fmt.Sprint("b-", i))})
	}
	// Dead letters of alpha, as a share group's dead-letter writer makes them.
	for i := range 2 {
		recs = append(recs, &kgo.Record{Topic: dlq, Key: []byte(fmt.Sprint("dead-", i)), Headers: []kgo.RecordHeader{
			{Key: "__dlq.errors.topic", Value: []byte(alpha)}, {Key: "__dlq.errors.partition", Value: []byte("0")},
			{Key: "__dlq.errors.reason", Value: []byte("rejected")}}})
	}
	if err := admin.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(admin)
	committed := kadm.Offsets{}
	committed.Add(kadm.Offset{Topic: alpha, Partition: 0, At: 1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, group, committed); err != nil {
		t.Fatal(err)
	}

	// The session cookie: HttpOnly, SameSite=Strict, expiring, only for
	// /ui/; a wrong password gets none.
	loginHTTP := func(user, password string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+sn.AdminAddr()+"/ui/api/login",
			strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)))
		req.Header.Set("X-Shoal-Console", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := loginHTTP("alice", "wrong"); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong password: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp := loginHTTP("alice", "alice-secret")
	if len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if ck := resp.Cookies()[0]; !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Path != "/ui/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, a Max-Age and Path=/ui/", ck)
	}
	// Without the cookie the API answers 401.
	if r, err := http.Get("http://" + sn.AdminAddr() + "/ui/api/topics"); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("topics without a session: %v %v", r.StatusCode, err)
	}

	b := newBrowser(t, sn.node)
	b.open("#/topics", "login")
	b.do("a wrong password", chromedp.SetValue(chromedp.CSS("#login-user"), "alice"), chromedp.SetValue(chromedp.CSS("#login-password"), "nope"),
		chromedp.Click(chromedp.CSS("#login-go")))
	if got := b.waitText("#login-error", "the login refusal", func(s string) bool { return s != "" }); !strings.Contains(got, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("login with a wrong password shows %q", got)
	}
	b.login("alice", "alice-secret", "topics")
	if got := b.text("#user"); got != "alice" {
		t.Errorf("header shows user %q", got)
	}
	if got := b.eval(`document.cookie`); got != "" {
		t.Errorf("the page's script can read cookies %q: the session cookie must be HttpOnly", got)
	}
	listed := b.eval(`[...document.querySelectorAll('#topics tr[data-topic]')].map(e => e.dataset.topic).join(",")`)
	if listed != alpha+","+dlq {
		t.Errorf("alice's topics page lists %q, want %s,%s (beta hidden by the authorizer)", listed, alpha, dlq)
	}
	b.open("#/messages?topic="+alpha+"&partition=0&order=oldest", "messages")
	if got := b.eval(`[...document.querySelectorAll('#messages [data-k="key"]')].map(e => e.textContent).join(",")`); got != "a-0,a-1,a-2" {
		t.Errorf("alice browsing %s: keys %q", alpha, got)
	}
	if got := b.openExpectingError("#/messages?topic="+beta+"&partition=0", "messages"); !strings.Contains(got, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("alice browsing %s: %q, want TOPIC_AUTHORIZATION_FAILED", beta, got)
	}
	b.screenshot("login-refused-topic")
	b.logout()

	// bob may describe the group and read the dead letters, but not
	// commit the group's offsets nor write where a redrive writes.
	b.open("#/group/"+group, "login")
	b.login("bob", "bob-secret", "group")
	k := alpha + "-0"
	b.fillAndClick("#reset-to-"+k, "latest", "#reset-"+k)
	if got := b.confirm("the reset as bob", shown); !strings.Contains(got, "GROUP_AUTHORIZATION_FAILED") {
		t.Errorf("bob resetting %s: %q, want GROUP_AUTHORIZATION_FAILED", group, got)
	}
	b.open("#/messages?topic="+dlq+"&partition=0", "messages")
	b.redrive("redrive as bob", 0)
	if got := b.confirm("the redrive as bob", shown); !strings.Contains(got, "AUTHORIZATION_FAILED") {
		t.Errorf("bob redriving: %q, want the broker's authorization error", got)
	}
	b.screenshot("login-refused-redrive")
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fetched.Lookup(alpha, 0); o.At != 1 {
		t.Errorf("after bob's refused reset: committed %d, want 1", o.At)
	}
	if ends := endOffsets(t, adm, alpha); ends[0] != 3 {
		t.Errorf("after bob's refused redrive: %s end %d, want 3", alpha, ends[0])
	}
	b.logout()

	// alice, with the ACLs a redrive needs, redrives.
	b.open("#/messages?topic="+dlq+"&partition=0", "login")
	b.login("alice", "alice-secret", "messages")
	b.redrive("redrive as alice", 0)
	if got := b.confirm("alice's redrive", shown); !strings.Contains(got, "0: redriven → "+alpha+"/0") {
		t.Errorf("alice redriving: %q", got)
	}
	if !strings.Contains(sn.Output(), `msg="console: redrove dead letter" component=console user=alice`) {
		t.Errorf("server log lacks alice's redrive")
	}
}
