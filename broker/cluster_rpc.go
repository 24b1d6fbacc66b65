package broker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// interBrokerClientPrefix starts the client id of every request one node
// sends another. A node never forwards such a request again, so two nodes
// that disagree on who the controller is cannot bounce a request between
// them.
const interBrokerClientPrefix = "shoal-broker-"

// errNoPeerAddress means the target node has no registered endpoint yet.
var errNoPeerAddress = errors.New("node has no registered endpoint")

// peerClient is a Kafka protocol connection from this node to another
// node's client listener. Requests on one peerClient are sent one at a time;
// callers that must not wait behind each other use separate peerClients.
type peerClient struct {
	srv *Server
	to  int32
	// ctrl sends to the node's controller listener (its address in
	// controller.quorum.voters) instead of its registered broker
	// endpoint: the active controller need not be a broker.
	ctrl bool

	mu   sync.Mutex
	nc   net.Conn
	r    *bufio.Reader
	addr string
	corr int32
}

func newPeerClient(s *Server, to int32) *peerClient {
	return &peerClient{srv: s, to: to}
}

// newControllerClient is a connection to voter to's controller listener.
func newControllerClient(s *Server, to int32) *peerClient {
	return &peerClient{srv: s, to: to, ctrl: true}
}

// target is where the client dials: the controller listener of a voter,
// or the inter-broker endpoint of a broker.
func (pc *peerClient) target() (string, error) {
	if pc.ctrl {
		if a, ok := pc.srv.cfg.Voters[pc.to]; ok {
			return a, nil
		}
		return "", fmt.Errorf("node %d is not in controller.quorum.voters: %w", pc.to, errNoPeerAddress)
	}
	return pc.srv.peerAddr(pc.srv.meta.Image(), pc.to)
}

// peerAddr is the inter-broker endpoint of node id in the image.
func (s *Server) peerAddr(img *raftmeta.Image, id int32) (string, error) {
	b := img.Brokers[id]
	if b == nil || len(b.Endpoints) == 0 {
		return "", fmt.Errorf("node %d: %w", id, errNoPeerAddress)
	}
	ep := b.Endpoints[0]
	for _, e := range b.Endpoints {
		if e.Listener == s.cfg.InterBrokerListener {
			ep = e
		}
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))), nil
}

// close drops the connection.
func (pc *peerClient) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.dropLocked()
}

func (pc *peerClient) dropLocked() {
	if pc.nc != nil {
		pc.nc.Close()
		pc.nc, pc.r = nil, nil
	}
}

// request sends req (at the version it carries) and returns the response.
// Any failure closes the connection; the next request dials again.
func (pc *peerClient) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	addr, err := pc.target()
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc != nil && pc.addr != addr {
		pc.dropLocked()
	}
	if pc.nc == nil {
		d := net.Dialer{Timeout: 2 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		pc.nc, pc.r, pc.addr = nc, bufio.NewReaderSize(nc, 64*1024), addr
	}
	// The connection is closed when ctx ends so a blocked read returns.
	nc := pc.nc
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	resp, err := pc.roundTrip(req)
	if err != nil {
		pc.dropLocked()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return resp, nil
}

func (pc *peerClient) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	pc.corr++
	corr := pc.corr
	clientID := interBrokerClientPrefix + strconv.Itoa(int(pc.srv.cfg.NodeID))
	buf := make([]byte, 4, 512)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(corr))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(clientID)))
	buf = append(buf, clientID...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := pc.nc.Write(buf); err != nil {
		return nil, err
	}
	var sizeBuf [4]byte
	if _, err := io.ReadFull(pc.r, sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 4 || size > pc.srv.cfg.SocketRequestMaxBytes {
		return nil, fmt.Errorf("response frame of %d bytes from node %d", size, pc.to)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(pc.r, frame); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("node %d answered correlation id %d, want %d", pc.to, got, corr)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s response from node %d: %w", kmsg.NameForKey(req.Key()), pc.to, err)
	}
	return resp, nil
}

// isInterBroker reports whether a request came from another shoal node.
func isInterBroker(rc *reqCtx) bool {
	return rc != nil && strings.HasPrefix(rc.header.clientID, interBrokerClientPrefix)
}

// peerVersion is the version this node sends of an API: the highest it
// serves itself, which every node of the same build serves too.
func (s *Server) peerVersion(key int16) int16 {
	return s.apis.all[key].max
}

// multiNode reports whether this node is part of a cluster of several:
// more than one voter, or a node with one role only (its other half runs
// elsewhere). Only then do nodes talk to each other.
func (s *Server) multiNode() bool {
	return len(s.cfg.Voters) > 1 || !s.isBroker() || !s.isController()
}

// isBroker reports whether this node serves clients and holds partitions
// (process.roles has broker).
func (s *Server) isBroker() bool { return s.cfg.HasRole("broker") }

// isController reports whether this node is a voter of the metadata quorum
// (process.roles has controller).
func (s *Server) isController() bool { return s.cfg.HasRole("controller") }

// controllerListenerName names the controller listener, for connections
// served on it.
func (s *Server) controllerListenerName() string {
	for _, l := range s.cfg.Listeners {
		if slices.Contains(s.cfg.ControllerListeners, l.Name) {
			return l.Name
		}
	}
	if len(s.cfg.ControllerListeners) > 0 {
		return s.cfg.ControllerListeners[0]
	}
	return "CONTROLLER"
}

// startTransport starts the raft transport. A voter listens on its
// controller listener, which also answers the brokers' controller RPCs in
// the Kafka protocol (Foreign). A broker-only node (a learner) has no
// controller listener: it dials the voters, and receives the leader's
// messages on its broker listeners (see accept).
func (s *Server) startTransport() (*raftmeta.TCPTransport, error) {
	var listen string
	if s.isController() {
		listen = s.cfg.Voters[s.cfg.NodeID]
		for _, l := range s.cfg.Listeners {
			if slices.Contains(s.cfg.ControllerListeners, l.Name) {
				listen = l.Addr()
				break
			}
		}
		if listen == "" {
			return nil, fmt.Errorf("listeners: node %d needs a controller listener to reach the quorum", s.cfg.NodeID)
		}
	}
	peers := map[int32]string{}
	for id, addr := range s.cfg.Voters {
		if id != s.cfg.NodeID {
			peers[id] = addr
		}
	}
	name := s.controllerListenerName()
	tr, err := raftmeta.NewTCPTransport(raftmeta.TCPTransportConfig{
		NodeID:     s.cfg.NodeID,
		ListenAddr: listen,
		Peers:      peers,
		Logger:     s.log.With("component", "raft-transport"),
		Foreign:    func(nc net.Conn) { s.serveKafka(nc, name) },
	})
	if err != nil {
		return nil, fmt.Errorf("controller listener: %w", err)
	}
	return tr, nil
}

// votersClusterID derives a cluster id from controller.quorum.voters, so
// that voters started from the same configuration agree on it.
func votersClusterID(voters map[int32]string) string {
	ids := make([]int32, 0, len(voters))
	for id := range voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%d@%s,", id, voters[id])
	}
	return base64URL(h.Sum(nil)[:16])
}
