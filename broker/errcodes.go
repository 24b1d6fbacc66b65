package broker

import (
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorCodes calls fn for every non-zero ErrorCode field in a response:
// top-level, per topic, per partition, per group. The field paths are found
// once per response type by reflection and cached, so a scan is a walk over
// the response's slices, not a reflection of its whole type each time.
func errorCodes(resp kmsg.Response, fn func(code int16)) {
	v := reflect.ValueOf(resp).Elem()
	walkErrorCodes(v, planFor(v.Type()), fn)
}

// errPlan says where ErrorCode fields sit in a struct type: the index of its
// own ErrorCode (-1: none) and the slices of structs to descend into.
type errPlan struct {
	code   int
	slices []slicePlan
}

type slicePlan struct {
	field int
	elem  *errPlan
}

var errPlans sync.Map // reflect.Type -> *errPlan

func planFor(t reflect.Type) *errPlan {
	if p, ok := errPlans.Load(t); ok {
		return p.(*errPlan)
	}
	p := &errPlan{code: -1}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch {
		case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
			p.code = i
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if sub := planFor(f.Type.Elem()); sub.code >= 0 || len(sub.slices) > 0 {
				p.slices = append(p.slices, slicePlan{i, sub})
			}
		}
	}
	errPlans.Store(t, p)
	return p
}

func walkErrorCodes(v reflect.Value, p *errPlan, fn func(int16)) {
	if p.code >= 0 {
		if c := int16(v.Field(p.code).Int()); c != 0 {
			fn(c)
		}
	}
	for _, sp := range p.slices {
		s := v.Field(sp.field)
		for i := 0; i < s.Len(); i++ {
			walkErrorCodes(s.Index(i), sp.elem, fn)
		}
	}
}
