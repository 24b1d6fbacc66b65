package firsterr

import (
	"errors"
	"sync"
	"testing"
)

func TestKeepsTheFirstError(t *testing.T) {
	var k Keeper
	if k.Err() != nil {
		t.Fatalf("zero Keeper: %v, want nil", k.Err())
	}
	first, second := errors.New("first"), errors.New("second")
	k.Set(nil)
	k.Set(first)
	k.Set(nil)
	k.Set(second)
	if k.Err() != first {
		t.Fatalf("kept %v, want %v", k.Err(), first)
	}
}

func TestConcurrentSets(t *testing.T) {
	var k Keeper
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		errs[i] = errors.New("failure")
		wg.Go(func() { k.Set(errs[i]) })
	}
	wg.Wait()
	got := k.Err()
	for _, err := range errs {
		if got == err {
			return
		}
	}
	t.Fatalf("kept %v, none of the errors set", got)
}
