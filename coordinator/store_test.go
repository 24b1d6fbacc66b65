package coordinator

import (
	"io"
	"log/slog"
	"testing"
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
	if err := st.Apply(2, 41, []Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
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
