package raftmeta

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Controller is the active controller: it decides requests against the
// latest image (see Decider) and proposes the resulting records through the
// Node. It answers only on the raft leader.
//
// Decisions are serialised: mu is held from reading the image to the
// proposal being applied, so every decision sees the effect of the one
// before it and two requests cannot, say, both create the same topic.
// Metadata changes are rare enough that one at a time is not a bottleneck.
type Controller struct {
	n  *Node
	d  Decider
	mu sync.Mutex

	// Broker sessions, guarded by mu. They live in the active controller's
	// memory, not in the log: a new leader starts every session afresh.
	now          func() time.Time
	sessionTerm  uint64              // the term the sessions belong to
	lastSeen     map[int32]time.Time // last heartbeat or registration
	shuttingDown map[int32]int64     // broker -> epoch that shut down
	unclean      UncleanFunc

	// suspects are brokers that may have died (see Suspect).
	suspects chan BrokerProbe
}

// NewController returns the controller for n. validateConfig checks a topic
// config key and value (nil value: the key is being deleted); nil accepts
// everything.
func NewController(n *Node, validateConfig func(name string, value *string) error) *Controller {
	return &Controller{n: n, d: Decider{
		ValidateConfig: validateConfig,
		NewTopicID:     func() [16]byte { return uuid.New() },
		PlacementStart: rand.IntN,
	}, now: time.Now, suspects: make(chan BrokerProbe, 64)}
}

// begin takes the decision lock and returns the image to decide against,
// once this node is leader and has applied everything it knows committed
// (a new leader may still be applying its predecessor's entries).
func (c *Controller) begin(ctx context.Context) (*Image, error) {
	if !c.n.IsLeader() {
		return nil, ErrNotController
	}
	c.mu.Lock()
	img, err := c.n.WaitFor(ctx, func(img *Image) bool { return img.Applied >= c.n.CommitIndex() })
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	return img, nil
}

// proposeAny proposes recs, if there are any: a decision that changes
// nothing needs no raft entry.
func (c *Controller) proposeAny(ctx context.Context, img *Image, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	_, err := c.propose(ctx, img, recs...)
	return err
}

// proposeOr proposes recs, if there are any, and hands a failure to fail,
// which marks the items that had succeeded so far.
func (c *Controller) proposeOr(ctx context.Context, img *Image, recs []Record, fail func(error)) {
	if err := c.proposeAny(ctx, img, recs); err != nil {
		fail(err)
	}
}

// proposeResults is proposeOr for results that only carry an error when
// they fail: a failed proposal becomes the error of every result that had
// none. errOf points at a result's error.
func proposeResults[T any](ctx context.Context, c *Controller, img *Image, recs []Record, results []T, errOf func(*T) *error) {
	c.proposeOr(ctx, img, recs, func(err error) {
		for i := range results {
			if e := errOf(&results[i]); *e == nil {
				*e = err
			}
		}
	})
}

// failAll is the answer to n items when the request as a whole failed: set
// marks each one.
func failAll[T any](n int, set func(*T)) []T {
	out := make([]T, n)
	for i := range out {
		set(&out[i])
	}
	return out
}

// CreateTopics creates topics. All topics that pass validation are created
// in one raft entry. With validateOnly nothing is proposed and results carry
// no topic id.
func (c *Controller) CreateTopics(ctx context.Context, reqs []CreateTopicRequest, def Defaults, validateOnly bool) []CreateTopicResult {
	img, err := c.begin(ctx)
	if err != nil {
		return failCreateTopics(reqs, err)
	}
	defer c.mu.Unlock()
	recs, results := c.d.CreateTopics(img, reqs, def)
	if validateOnly {
		for i := range results {
			results[i].ID = [16]byte{}
		}
		return results
	}
	c.proposeOr(ctx, img, recs, func(err error) {
		for i := range results {
			if results[i].Err == nil {
				results[i] = CreateTopicResult{Name: results[i].Name, Err: err}
			}
		}
	})
	return results
}

func failCreateTopics(reqs []CreateTopicRequest, err error) []CreateTopicResult {
	results := make([]CreateTopicResult, len(reqs))
	for i, r := range reqs {
		results[i] = CreateTopicResult{Name: r.Name, Err: err}
	}
	return results
}

// DeleteTopics deletes topics by name and by id; see Decider.DeleteTopics
// for the order of results.
func (c *Controller) DeleteTopics(ctx context.Context, names []string, ids [][16]byte) []DeleteTopicResult {
	img, err := c.begin(ctx)
	if err != nil {
		results := make([]DeleteTopicResult, 0, len(names)+len(ids))
		for _, name := range names {
			results = append(results, DeleteTopicResult{Name: name, Err: err})
		}
		for _, id := range ids {
			results = append(results, DeleteTopicResult{ID: id, Err: err})
		}
		return results
	}
	defer c.mu.Unlock()
	recs, results := c.d.DeleteTopics(img, names, ids)
	proposeResults(ctx, c, img, recs, results, func(r *DeleteTopicResult) *error { return &r.Err })
	return results
}

// CreatePartitions grows topics; the i-th error is the outcome of reqs[i].
func (c *Controller) CreatePartitions(ctx context.Context, reqs []CreatePartitionsRequest, validateOnly bool) []error {
	return c.decideEachAndPropose(ctx, len(reqs), validateOnly, func(img *Image) ([]Record, []error) {
		return c.d.CreatePartitions(img, reqs)
	})
}

// AlterTopicConfigs sets and deletes config overrides of one topic. The
// broker turns a full-replacement AlterConfigs into set plus delete of every
// other override.
func (c *Controller) AlterTopicConfigs(ctx context.Context, topic string, set map[string]string, del []string, validateOnly bool) error {
	return c.decideAndPropose(ctx, validateOnly, func(img *Image) ([]Record, error) {
		return c.d.AlterTopicConfigs(img, topic, set, del)
	})
}

// SetGroupConfigValidator installs the check of consumer group config
// overrides used by AlterGroupConfigs: f gets a key and value (nil value:
// the key is being deleted); nil, the default, accepts everything.
func (c *Controller) SetGroupConfigValidator(f func(name string, value *string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.ValidateGroupConfig = f
}

// SetMaxBrokerPartitions installs the cap on partition replicas per broker
// (see Decider.MaxBrokerPartitions); 0, the default, is no cap.
func (c *Controller) SetMaxBrokerPartitions(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.MaxBrokerPartitions = n
}

// AlterGroupConfigs sets and deletes config overrides of one consumer group.
func (c *Controller) AlterGroupConfigs(ctx context.Context, group string, set map[string]string, del []string, validateOnly bool) error {
	return c.decideAndPropose(ctx, validateOnly, func(img *Image) ([]Record, error) {
		return c.d.AlterGroupConfigs(img, group, set, del)
	})
}

// decideAndPropose runs one all-or-nothing decision against the current
// image and proposes its records, unless it failed or validateOnly asks
// only for the decision.
func (c *Controller) decideAndPropose(ctx context.Context, validateOnly bool, decide func(*Image) ([]Record, error)) error {
	img, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	recs, err := decide(img)
	if err != nil || validateOnly {
		return err
	}
	_, err = c.propose(ctx, img, recs...)
	return err
}

// decideEachAndPropose is decideAndPropose for a request of n independent
// items: decide returns one error per item and the records of the items
// that passed.
func (c *Controller) decideEachAndPropose(ctx context.Context, n int, validateOnly bool, decide func(*Image) ([]Record, []error)) []error {
	return decideEach(ctx, c, n, validateOnly, decide, func(e *error) *error { return e })
}

// decideEach decides a request of n independent items, whose results carry
// an error (errOf points at it), and proposes the records of the items that
// passed. Those records go into one raft entry, so a failed proposal fails
// every item that had passed; a failure before deciding fails all n.
func decideEach[T any](ctx context.Context, c *Controller, n int, validateOnly bool, decide func(*Image) ([]Record, []T), errOf func(*T) *error) []T {
	img, err := c.begin(ctx)
	if err != nil {
		return failAll(n, func(r *T) { *errOf(r) = err })
	}
	defer c.mu.Unlock()
	recs, results := decide(img)
	if validateOnly {
		return results
	}
	proposeResults(ctx, c, img, recs, results, errOf)
	return results
}

// AllocateProducerIDs hands brokerID the next count producer ids and
// returns the first.
func (c *Controller) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (int64, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	recs, first, err := c.d.AllocateProducerIDs(img, brokerID, count)
	if err != nil {
		return 0, err
	}
	if _, err := c.propose(ctx, img, recs...); err != nil {
		return 0, err
	}
	return first, nil
}

// RegisterBroker registers b from its ID, IncarnationID, Endpoints and Rack;
// the epoch is assigned (the raft index of the registration) and the broker
// unfenced.
func (c *Controller) RegisterBroker(ctx context.Context, b Broker) error {
	_, err := c.RegisterBrokerEpoch(ctx, b)
	return err
}

// RegisterBrokerEpoch is RegisterBroker returning the broker epoch assigned.
func (c *Controller) RegisterBrokerEpoch(ctx context.Context, b Broker) (int64, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	recs, err := c.d.RegisterBroker(img, b)
	if err != nil {
		return 0, err
	}
	after, err := c.propose(ctx, img, recs...)
	if err != nil {
		return 0, err
	}
	c.sessions()
	c.lastSeen[b.ID] = c.now()
	delete(c.shuttingDown, b.ID)
	return after.Brokers[b.ID].Epoch, nil
}
