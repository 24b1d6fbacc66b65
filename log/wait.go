package log

import (
	"context"
	"reflect"
	"time"
)

// WaitResult says what ended a WaitAny.
type WaitResult int

const (
	// WaitWoken: one of the wake channels fired.
	WaitWoken WaitResult = iota
	// WaitTimeout: the timer fired first.
	WaitTimeout
	// WaitCanceled: the context ended first.
	WaitCanceled
)

// WaitAny blocks until one of the wake channels fires (Partition.Wait, or a
// caller's own change channels), the timer fires or ctx ends: the long poll
// of a fetch over several partitions.
func WaitAny(ctx context.Context, timer <-chan time.Time, wake []<-chan struct{}) WaitResult {
	cases := make([]reflect.SelectCase, 0, len(wake)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
	)
	for _, ch := range wake {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	switch i, _, _ := reflect.Select(cases); i {
	case 0:
		return WaitTimeout
	case 1:
		return WaitCanceled
	default:
		return WaitWoken
	}
}
