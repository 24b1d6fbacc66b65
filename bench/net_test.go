package bench

import (
	"context"
	"testing"
)

func TestNetMovesEveryByte(t *testing.T) {
	r, err := Net(context.Background(), 64<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes != 64<<20 || r.MBPerSec <= 0 || r.Elapsed <= 0 {
		t.Fatalf("result %+v", r)
	}
	if _, err := Net(context.Background(), 0, 1); err == nil {
		t.Fatal("zero bytes accepted")
	}
}
