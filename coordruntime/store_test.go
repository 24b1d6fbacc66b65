package coordruntime

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/shoalmq/shoal/coordinator"
)

func TestStoreApplied(t *testing.T) {
	st, err := OpenStore(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if a, err := st.Applied(2); err != nil || a != -1 {
		t.Fatalf("applied of an empty partition: %d %v", a, err)
	}
	if err := st.Apply(2, 41, []coordinator.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if a, err := st.Applied(2); err != nil || a != 41 {
		t.Fatalf("applied: %d %v, want 41", a, err)
	}
	if a, err := st.Applied(3); err != nil || a != -1 {
		t.Fatalf("applied of another partition: %d %v", a, err)
	}
	if err := st.Drop(2); err != nil {
		t.Fatal(err)
	}
	if a, err := st.Applied(2); err != nil || a != -1 {
		t.Fatalf("applied after a drop: %d %v", a, err)
	}
}

func TestStoreApplyLoadDrop(t *testing.T) {
	st, err := OpenStore(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := coordinator.Record{Key: []byte("a"), Value: []byte("1")}
	b := coordinator.Record{Key: []byte("b"), Value: []byte("2")}
	if err := st.Apply(3, 10, []coordinator.Record{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(3, 11, []coordinator.Record{{Key: []byte("a")}}); err != nil { // tombstone
		t.Fatal(err)
	}
	if err := st.Apply(4, 5, []coordinator.Record{a}); err != nil {
		t.Fatal(err)
	}
	var got []coordinator.Record
	applied, err := st.Load(3, func(r coordinator.Record) error { got = append(got, r); return nil })
	if err != nil || applied != 11 || len(got) != 1 || !bytes.Equal(got[0].Key, []byte("b")) {
		t.Fatalf("load 3: applied %d, %v, %v", applied, got, err)
	}
	if err := st.Drop(3); err != nil {
		t.Fatal(err)
	}
	got = nil
	if applied, _ := st.Load(3, func(r coordinator.Record) error { got = append(got, r); return nil }); applied != -1 || len(got) != 0 {
		t.Fatalf("after drop: applied %d, %v", applied, got)
	}
	if applied, _ := st.Load(4, func(coordinator.Record) error { return nil }); applied != 5 {
		t.Fatalf("partition 4 lost by dropping 3: applied %d", applied)
	}
}

// A batch holding several records of a key leaves the last one: a value
// overwritten, a value then its tombstone, a tombstone then a new value.
func TestStoreApplyKeepsLastRecordOfKey(t *testing.T) {
	st, err := OpenStore(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := func(k, v string) coordinator.Record {
		r := coordinator.Record{Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	if err := st.Apply(0, 1, []coordinator.Record{rec("gone", "old"), rec("back", "old")}); err != nil {
		t.Fatal(err)
	}
	batch := []coordinator.Record{
		rec("over", "1"), rec("gone", "2"), rec("back", ""), rec("over", "3"),
		rec("gone", ""), rec("back", "4"), rec("over", "5"),
	}
	if err := st.Apply(0, 8, batch); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	applied, err := st.Load(0, func(r coordinator.Record) error { got[string(r.Key)] = string(r.Value); return nil })
	if err != nil || applied != 8 {
		t.Fatalf("load: applied %d, %v", applied, err)
	}
	if len(got) != 2 || got["over"] != "5" || got["back"] != "4" {
		t.Fatalf("stored %v, want over=5 and back=4", got)
	}
}
