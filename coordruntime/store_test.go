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
