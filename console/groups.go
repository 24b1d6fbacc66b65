package console

import (
	"context"
	"net/http"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

type groupRow struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // consumer (KIP-848), classic or share
	State       string `json:"state"`
	Coordinator int32  `json:"coordinator"`
	Lag         int64  `json:"lag"` // total; -1 for share groups (see the group page)
}

type groupsView struct {
	Groups []groupRow `json:"groups"`
}

// groupTypes are the group types the console lists, in ListGroups' terms.
var groupTypes = []string{"consumer", "classic", "share"}

func (c *Console) groups(ctx context.Context, k *kafkaConn, _ *http.Request) (any, error) {
	v := groupsView{Groups: []groupRow{}}
	for _, typ := range groupTypes {
		listed, err := k.adm.ListGroupsByType(ctx, []string{typ})
		if err != nil {
			return nil, err
		}
		for _, g := range listed.Sorted() {
			row := groupRow{Name: g.Group, Type: typ, State: g.State, Coordinator: g.Coordinator, Lag: -1}
			if typ != "share" {
				if p, ok := c.hist.last("lag:" + g.Group); ok {
					row.Lag = int64(p.V)
				}
			}
			v.Groups = append(v.Groups, row)
		}
	}
	return v, nil
}

type memberView struct {
	ID         string             `json:"id"`
	InstanceID string             `json:"instanceId,omitempty"`
	ClientID   string             `json:"clientId"`
	ClientHost string             `json:"clientHost"`
	Epoch      int32              `json:"epoch"`
	Assignment map[string][]int32 `json:"assignment"`
}

type lagRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: no commit
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
	Error     string `json:"error,omitempty"`
}

type groupView struct {
	Name     string       `json:"name"`
	Type     string       `json:"type"`
	State    string       `json:"state"`
	Protocol string       `json:"protocol"`
	Epoch    int32        `json:"epoch"`
	Members  []memberView `json:"members"`
	Offsets  []lagRow     `json:"offsets"`
	TotalLag int64        `json:"totalLag"`
	LagChart []point      `json:"lagChart"`
}

// group describes a consumer group (KIP-848 or classic) with its
// committed offsets and lag per partition.
func (c *Console) group(ctx context.Context, k *kafkaConn, r *http.Request) (any, error) {
	name, err := nameParam(r)
	if err != nil {
		return nil, err
	}
	v := groupView{Name: name, Members: []memberView{}, LagChart: c.hist.get("lag:" + name)}
	owner := partitionOwners{}
	cgs, err := k.adm.DescribeConsumerGroups(ctx, name)
	if g, ok := cgs[name]; err == nil && ok && g.Err == nil {
		v.Type, v.State, v.Protocol, v.Epoch = "consumer", g.State, g.AssignorName, g.Epoch
		for _, m := range g.Members {
			mv := memberView{ID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Epoch: m.MemberEpoch, Assignment: topicsSetMap(m.Assignment)}
			if m.InstanceID != nil {
				mv.InstanceID = *m.InstanceID
			}
			owner.own(m.MemberID, mv.Assignment)
			v.Members = append(v.Members, mv)
		}
	} else {
		dgs, err := k.adm.DescribeGroups(ctx, name)
		if err != nil {
			return nil, err
		}
		g, ok := dgs[name]
		if !ok || g.Err != nil {
			return nil, &apiError{http.StatusNotFound, "group " + name + ": " + errString(g.Err)}
		}
		v.Type, v.State, v.Protocol = "classic", g.State, g.Protocol
		for _, m := range g.Members {
			mv := memberView{ID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignment: map[string][]int32{}}
			if m.InstanceID != nil {
				mv.InstanceID = *m.InstanceID
			}
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					mv.Assignment[t.Topic] = t.Partitions
				}
			}
			owner.own(m.MemberID, mv.Assignment)
			v.Members = append(v.Members, mv)
		}
	}
	lags, err := k.groupLag(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, l := range lags {
		l.Member = owner[l.Topic][l.Partition]
		if l.Lag > 0 {
			v.TotalLag += l.Lag
		}
		v.Offsets = append(v.Offsets, l)
	}
	if v.Offsets == nil {
		v.Offsets = []lagRow{}
	}
	return v, nil
}

// partitionOwners maps each assigned partition, by topic, to the member
// it is assigned to.
type partitionOwners map[string]map[int32]string

func (o partitionOwners) own(member string, assignment map[string][]int32) {
	for t, ps := range assignment {
		if o[t] == nil {
			o[t] = map[int32]string{}
		}
		for _, p := range ps {
			o[t][p] = member
		}
	}
}

// groupLag is a group's committed offset, end offset and lag for every
// partition it has committed, sorted by topic and partition. Lag counts
// from the end offset (read_uncommitted), as kafka-consumer-groups.sh does.
func (k *kafkaConn) groupLag(ctx context.Context, group string) ([]lagRow, error) {
	commits, err := k.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	topics := commits.Offsets().TopicsSet().Topics()
	var ends kadm.ListedOffsets
	if len(topics) > 0 {
		if ends, err = k.adm.ListEndOffsets(ctx, topics...); err != nil {
			return nil, err
		}
	}
	var out []lagRow
	commits.Each(func(o kadm.OffsetResponse) {
		row := lagRow{Topic: o.Topic, Partition: o.Partition, Committed: o.At, End: -1, Lag: -1, Error: errString(o.Err)}
		if e, ok := ends.Lookup(o.Topic, o.Partition); ok && e.Err == nil {
			row.End = e.Offset
			if o.Err == nil && o.At >= 0 {
				row.Lag = max(0, e.Offset-o.At)
			}
		}
		out = append(out, row)
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].Topic < out[j].Topic || out[i].Topic == out[j].Topic && out[i].Partition < out[j].Partition
	})
	return out, nil
}

func topicsSetMap(s kadm.TopicsSet) map[string][]int32 {
	out := map[string][]int32{}
	for t, ps := range s {
		for p := range ps {
			out[t] = append(out[t], p)
		}
		sort.Slice(out[t], func(i, j int) bool { return out[t][i] < out[t][j] })
	}
	return out
}
