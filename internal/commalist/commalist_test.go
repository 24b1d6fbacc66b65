package commalist

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"a", []string{"a"}},
		{"a, b,,c ", []string{"a", "b", "c"}},
		{" host one:9092 ,host2:9092", []string{"host one:9092", "host2:9092"}},
	} {
		if got := Split(c.in); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("Split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
