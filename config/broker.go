package config

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/internal/commalist"
	"github.com/shoalmq/shoal/logging"
)

// BrokerDefs are the broker keys shoal understands. An unknown key stops
// start-up: a typo in a properties file must not silently fall back to a
// default.
var BrokerDefs = []Def{
	{Name: "node.id", Type: Int, Default: "1", Doc: "This node's id in the cluster.", Check: atLeast(0)},
	{Name: "process.roles", Type: List, Default: "broker,controller", Doc: "broker, controller, or both. A broker-only node follows the metadata log as a raft learner and must not be in controller.quorum.voters; a controller-only node must be a voter and has only controller listeners.", Check: listOf("broker", "controller")},
	{Name: "controller.quorum.voters", Type: List, Default: "1@127.0.0.1:9093", Doc: "The controller quorum: id@host:port, comma separated."},
	{Name: "listeners", Type: List, Default: "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", Doc: "Listeners as NAME://host:port."},
	{Name: "advertised.listeners", Type: List, Default: "", Doc: "Listeners as clients should reach them; defaults to listeners."},
	{Name: "controller.listener.names", Type: List, Default: "CONTROLLER", Doc: "Listener names used by the controller quorum."},
	{Name: "inter.broker.listener.name", Type: String, Default: "PLAINTEXT", Doc: "Listener brokers use to reach each other."},
	{Name: "security.inter.broker.protocol", Type: String, Default: "PLAINTEXT", Doc: "Kafka's older way to name the inter-broker listener: the listener named after this security protocol. Set it or inter.broker.listener.name, not both."},
	{Name: "listener.security.protocol.map", Type: List, Default: "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", Doc: "Listener name to security protocol."},
	{Name: "cluster.id", Type: String, Default: "", Doc: "Cluster id; generated on first start when empty."},
	{Name: "broker.rack", Type: String, Default: "", Doc: "Rack of this broker."},
	{Name: "log.dirs", Type: List, Default: "./shoal-data", Doc: "Directories holding partition data; metadata lives in the first."},
	{Name: "log.dir", Type: String, Default: "", Doc: "Single data directory, used when log.dirs is not set."},
	{Name: "metadata.log.dir", Type: String, Default: "", Doc: "Directory of the metadata log; defaults to <first log dir>/__cluster_metadata."},
	{Name: "num.partitions", Type: Int, Default: "1", Doc: "Default partition count of new topics.", Check: atLeast(1)},
	{Name: "default.replication.factor", Type: Short, Default: "1", Doc: "Default replication factor of new topics.", Check: atLeast(1)},
	{Name: "min.insync.replicas", Type: Int, Default: "1", Doc: "Replicas that must acknowledge an acks=all write.", Check: atLeast(1)},
	{Name: "auto.create.topics.enable", Type: Boolean, Default: "true", Doc: "Create a topic when a client asks for metadata of a missing one."},
	{Name: "delete.topic.enable", Type: Boolean, Default: "true", Doc: "Allow DeleteTopics."},
	{Name: "max.broker.partitions", Type: Int, Default: "", Doc: "Most partition replicas one broker may hold (KIP-578's name). A CreateTopics or CreatePartitions that would place more on any broker fails with POLICY_VIOLATION before anything is created; internal topics count but are never refused. Unset: derived from the open-file limit, a quarter of it kept for connections and older segments and three descriptors per partition (20000 files: 5000 partitions); no cap where the limit cannot be read.", Check: atLeast(1)},
	{Name: "log.retention.ms", Type: Long, Default: "", Doc: "Retention time; overrides log.retention.minutes and log.retention.hours.", Check: atLeast(-1)},
	{Name: "log.retention.minutes", Type: Int, Default: "", Doc: "Retention time in minutes.", Check: atLeast(-1)},
	{Name: "log.retention.hours", Type: Int, Default: "168", Doc: "Retention time in hours.", Check: atLeast(-1)},
	{Name: "log.retention.bytes", Type: Long, Default: "-1", Doc: "Retention size per partition.", Check: atLeast(-1)},
	{Name: "log.retention.check.interval.ms", Type: Long, Default: "300000", Doc: "How often retention runs.", Check: atLeast(1)},
	{Name: "log.segment.bytes", Type: Int, Default: "1073741824", Doc: "Segment size; at least 1 MiB (1048576), Kafka 4's bound (KIP-1030).", Check: atLeast(MinSegmentBytes)},
	{Name: "log.roll.ms", Type: Long, Default: "", Doc: "Segment age before a roll; overrides log.roll.hours.", Check: atLeast(1)},
	{Name: "log.roll.hours", Type: Int, Default: "168", Doc: "Segment age before a roll, in hours.", Check: atLeast(1)},
	{Name: "log.index.interval.bytes", Type: Int, Default: "4096", Doc: "Bytes between offset index entries.", Check: atLeast(0)},
	{Name: "log.index.size.max.bytes", Type: Int, Default: "10485760", Doc: "Maximum index file size.", Check: atLeast(4)},
	{Name: "log.flush.interval.messages", Type: Long, Default: maxLong, Doc: "Messages appended before a partition is fsynced.", Check: atLeast(1)},
	{Name: "log.flush.interval.ms", Type: Long, Default: "", Doc: "Time before a partition's appends are fsynced; unset means never forced.", Check: atLeast(0)},
	{Name: "log.flush.scheduler.interval.ms", Type: Long, Default: "1000", Doc: "How often flush.ms is checked.", Check: atLeast(1)},
	{Name: "log.message.timestamp.type", Type: String, Default: "CreateTime", Doc: "CreateTime or LogAppendTime.", Check: oneOf("CreateTime", "LogAppendTime")},
	{Name: "log.message.timestamp.before.max.ms", Type: Long, Default: maxLong, Doc: "How far in the past of the broker's clock a CreateTime record's timestamp may lie; a produce of a record older than that is refused with INVALID_TIMESTAMP.", Check: atLeast(0)},
	{Name: "log.message.timestamp.after.max.ms", Type: Long, Default: "3600000", Doc: "How far ahead of the broker's clock a CreateTime record's timestamp may lie; a produce of a record further ahead is refused with INVALID_TIMESTAMP. Kafka 4's default, an hour.", Check: atLeast(0)},
	{Name: "log.cleanup.policy", Type: List, Default: "delete", Doc: "delete, compact, or both.", Check: listOf("delete", "compact")},
	{Name: "log.cleaner.delete.retention.ms", Type: Long, Default: "86400000", Doc: "How long tombstones are kept.", Check: atLeast(0)},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: Long, Default: "0", Doc: "Age below which records are never compacted.", Check: atLeast(0)},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: Long, Default: maxLong, Doc: "Age at which a dirty record makes its log eligible for compaction.", Check: atLeast(1)},
	{Name: "log.cleaner.min.cleanable.ratio", Type: Double, Default: "0.5", Doc: "Dirty share of a log that triggers compaction.", Check: ratio},
	{Name: "log.cleaner.backoff.ms", Type: Long, Default: "15000", Doc: "How often the cleaner looks for logs to compact.", Check: atLeast(1)},
	{Name: "compression.type", Type: String, Default: "producer", Doc: "Compression of stored batches; only producer (keep as sent) is supported.", Check: oneOf("producer")},
	{Name: "message.max.bytes", Type: Int, Default: "1048588", Doc: "Largest record batch accepted.", Check: atLeast(0)},
	{Name: "socket.request.max.bytes", Type: Int, Default: "104857600", Doc: "Largest request frame accepted.", Check: atLeast(1)},
	{Name: "queued.max.request.bytes", Type: Long, Default: "104857600", Doc: "Bytes of request frames held by the whole broker at once (being read, decoded or handled); -1 is unbounded. A connection whose next request does not fit waits, without reading, until memory is released. Frames up to 64 KiB never wait. Kafka's default is -1; shoal bounds it by default so a few oversized requests cannot exhaust memory.", Check: minusOneOrAtLeast(1)},
	{Name: "socket.request.read.timeout.ms", Type: Long, Default: "30000", Doc: "How long a request frame may take to arrive once its first byte has; a slower connection is closed (a slowloris client holds nothing longer). It also bounds how long a new connection on a TLS or SASL listener may take to complete its TLS handshake and SASL authentication.", Check: atLeast(1)},
	{Name: "connections.max.idle.ms", Type: Long, Default: "600000", Doc: "A client connection with no request in flight and no bytes sent either way for this long is closed; -1 never closes one.", Check: minusOneOrAtLeast(1)},
	{Name: "max.connections", Type: Int, Default: "2147483647", Doc: "Client connections the broker holds at once, over all client listeners. As in Kafka, a new connection past it is not refused: the listener stops accepting until a connection closes (the new ones wait in the listen backlog, unread). The inter-broker listener of a broker with other listeners never waits, though its connections count. The controller listener is not counted. Dynamic: a lower value makes new connections wait and keeps the open ones; a higher one lets the waiting ones in.", Check: atLeast(0)},
	{Name: "max.connections.per.ip", Type: Int, Default: "2147483647", Doc: "Client connections from one IP address at once; a new connection past it is closed at once (checked, as in Kafka, once max.connections has room for it). Dynamic: a lower value closes new connections past it and keeps the open ones.", Check: atLeast(0)},
	{Name: "max.connections.per.ip.overrides", Type: String, Default: "", Doc: "Per-IP or per-hostname exceptions to max.connections.per.ip, as host:count pairs separated by commas, e.g. 10.0.0.5:200,monitor.example.com:5. Dynamic; host names are resolved when the value is applied.", Check: func(v string) error { _, err := ParseConnectionOverrides(v); return err }},
	{Name: "max.connection.creation.rate", Type: Int, Default: "2147483647", Doc: "New client connections the broker accepts per second over its client listeners (the inter-broker listener is exempt when there are others); past it, accepting waits, so connections are taken late rather than refused. Measured over quota.window.num samples of quota.window.size.seconds. Dynamic: set per broker or cluster-wide with IncrementalAlterConfigs (`shoal config set`).", Check: atLeast(0)},
	{Name: "quota.window.num", Type: Int, Default: "11", Doc: "Samples a client quota's rate is measured over (the current one and the whole ones before it).", Check: atLeast(2)},
	{Name: "quota.window.size.seconds", Type: Int, Default: "1", Doc: "Length of one client quota sample; a throttled client is told to back off at most this long per response.", Check: atLeast(1)},
	{Name: "leader.replication.throttled.rate", Type: Long, Default: maxLong, Doc: "Bytes per second this broker, as leader, sends to followers of the partitions its topics list in leader.replication.throttled.replicas while those followers are out of the ISR (partition reassignment). Dynamic: set per broker with IncrementalAlterConfigs; `shoal topic reassign --execute --throttle` sets it.", Check: atLeast(0)},
	{Name: "follower.replication.throttled.rate", Type: Long, Default: maxLong, Doc: "Bytes per second this broker, as follower, fetches for the partitions its topics list in follower.replication.throttled.replicas while it is not caught up with the leader. Dynamic: set per broker with IncrementalAlterConfigs; `shoal topic reassign --execute --throttle` sets it.", Check: atLeast(0)},
	{Name: "replica.alter.log.dirs.io.max.bytes.per.second", Type: Long, Default: maxLong, Doc: "Bytes per second a move between this broker's log directories (AlterReplicaLogDirs, `shoal topic move-dir`) copies, over all moves at once. Dynamic: set per broker with IncrementalAlterConfigs.", Check: atLeast(1)},
	{Name: "replication.quota.window.num", Type: Int, Default: "11", Doc: "Samples the replication throttles' rates are measured over (the current one and the whole ones before it).", Check: atLeast(2)},
	{Name: "replication.quota.window.size.seconds", Type: Int, Default: "1", Doc: "Length of one sample of the replication throttles' rates.", Check: atLeast(1)},
	{Name: "unclean.leader.election.enable", Type: Boolean, Default: "false", Doc: "Allow out-of-sync replicas to become leader."},
	{Name: "offsets.topic.num.partitions", Type: Int, Default: "50", Doc: "Partitions of __consumer_offsets (fixed once the topic exists).", Check: atLeast(1)},
	{Name: "offsets.topic.replication.factor", Type: Short, Default: "3", Doc: "Replication factor of __consumer_offsets, capped by the live brokers.", Check: atLeast(1)},
	{Name: "offsets.topic.segment.bytes", Type: Int, Default: "104857600", Doc: "Segment size of __consumer_offsets; at least 1 MiB, as for every topic's segment.bytes.", Check: atLeast(MinSegmentBytes)},
	{Name: "transaction.state.log.num.partitions", Type: Int, Default: "50", Doc: "Partitions of __transaction_state (fixed once the topic exists).", Check: atLeast(1)},
	{Name: "transaction.state.log.replication.factor", Type: Short, Default: "3", Doc: "Replication factor of __transaction_state, capped by the live brokers.", Check: atLeast(1)},
	{Name: "transaction.state.log.segment.bytes", Type: Int, Default: "104857600", Doc: "Segment size of __transaction_state; at least 1 MiB, as for every topic's segment.bytes.", Check: atLeast(MinSegmentBytes)},
	{Name: "transaction.state.log.min.isr", Type: Int, Default: "2", Doc: "min.insync.replicas of __transaction_state.", Check: atLeast(1)},
	{Name: "transaction.state.log.load.buffer.size", Type: Int, Default: "5242880", Doc: "Bytes read at a time while loading a __transaction_state partition.", Check: atLeast(1)},
	{Name: "transaction.max.timeout.ms", Type: Int, Default: "900000", Doc: "Largest transaction.timeout.ms a producer may ask for; InitProducerId above it fails with INVALID_TRANSACTION_TIMEOUT.", Check: atLeast(1)},
	{Name: "producer.id.expiration.ms", Type: Int, Default: "86400000", Doc: "An idempotent producer with no transaction open that has not written to a partition for this long is forgotten by that partition; its next batch there is taken at any sequence, as a new producer's.", Check: atLeast(1)},
	{Name: "producer.id.expiration.check.interval.ms", Type: Int, Default: "600000", Doc: "How often partitions forget expired producers.", Check: atLeast(1)},
	{Name: "transactional.id.expiration.ms", Type: Int, Default: "604800000", Doc: "A transactional id with no transaction in progress and no update for this long is removed.", Check: atLeast(1)},
	{Name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", Type: Int, Default: "10000", Doc: "How often the transaction coordinator aborts transactions past their timeout.", Check: atLeast(1)},
	{Name: "add.partitions.to.txn.retry.backoff.ms", Type: Int, Default: "20", Doc: "First backoff of a partition leader retrying, while the producer's previous transaction is still writing its markers, to add a partition to the producer's transaction.", Check: atLeast(1)},
	{Name: "add.partitions.to.txn.retry.backoff.max.ms", Type: Int, Default: "100", Doc: "How long in total a partition leader retries adding a partition to a transaction before answering the producer with a retriable error.", Check: atLeast(1)},
	{Name: "transaction.remove.expired.transaction.cleanup.interval.ms", Type: Int, Default: "3600000", Doc: "How often the transaction coordinator removes expired transactional ids.", Check: atLeast(1)},
	{Name: "offsets.retention.minutes", Type: Int, Default: "10080", Doc: "How long offsets of a group without members are kept.", Check: atLeast(1)},
	{Name: "offsets.retention.check.interval.ms", Type: Long, Default: "600000", Doc: "How often old offsets are expired.", Check: atLeast(1)},
	{Name: "offset.metadata.max.bytes", Type: Int, Default: "4096", Doc: "Largest metadata string of a committed offset.", Check: atLeast(0)},
	{Name: "group.min.session.timeout.ms", Type: Int, Default: "6000", Doc: "Smallest session timeout a classic member may ask for.", Check: atLeast(1)},
	{Name: "group.max.session.timeout.ms", Type: Int, Default: "1800000", Doc: "Largest session timeout a classic member may ask for.", Check: atLeast(1)},
	{Name: "group.initial.rebalance.delay.ms", Type: Int, Default: "3000", Doc: "How long a new classic group waits for more members before its first rebalance.", Check: atLeast(0)},
	{Name: "group.max.size", Type: Int, Default: "2147483647", Doc: "Most members of a classic group.", Check: atLeast(1)},
	{Name: "group.consumer.session.timeout.ms", Type: Int, Default: "45000", Doc: "Session timeout of consumer-protocol members.", Check: atLeast(1)},
	{Name: "group.consumer.heartbeat.interval.ms", Type: Int, Default: "5000", Doc: "Heartbeat interval of consumer-protocol members.", Check: atLeast(1)},
	{Name: "group.consumer.max.size", Type: Int, Default: "2147483647", Doc: "Most members of a consumer-protocol group.", Check: atLeast(1)},
	{Name: "group.consumer.assignors", Type: List, Default: "uniform,range", Doc: "Server-side assignors; the first is the default.", Check: listOf("uniform", "range")},
	{Name: "group.coordinator.rebalance.protocols", Type: List, Default: "classic,consumer,share", Doc: "Group protocols served.", Check: listOf("classic", "consumer", "share")},
	{Name: "group.share.session.timeout.ms", Type: Int, Default: "45000", Doc: "Session timeout of share group members.", Check: atLeast(1)},
	{Name: "group.share.heartbeat.interval.ms", Type: Int, Default: "5000", Doc: "Heartbeat interval of share group members.", Check: atLeast(1)},
	{Name: "group.share.max.size", Type: Int, Default: "200", Doc: "Most members of a share group.", Check: atLeast(1)},
	{Name: "group.share.record.lock.duration.ms", Type: Int, Default: "30000", Doc: "How long a share consumer holds a record before it is offered again.", Check: between(1000, 3600000)},
	{Name: "group.share.min.record.lock.duration.ms", Type: Int, Default: "15000", Doc: "Lowest share.record.lock.duration.ms a group may set.", Check: between(1000, 30000)},
	{Name: "group.share.max.record.lock.duration.ms", Type: Int, Default: "60000", Doc: "Highest share.record.lock.duration.ms a group may set.", Check: between(30000, 3600000)},
	{Name: "group.share.delivery.count.limit", Type: Int, Default: "5", Doc: "Deliveries of a record before it is archived (and dead-lettered).", Check: between(2, 10)},
	{Name: "group.share.min.delivery.count.limit", Type: Int, Default: "2", Doc: "Lowest share.delivery.count.limit a group may set (KIP-1240).", Check: between(2, 5)},
	{Name: "group.share.max.delivery.count.limit", Type: Int, Default: "10", Doc: "Highest share.delivery.count.limit a group may set (KIP-1240).", Check: between(5, 25)},
	{Name: "group.share.partition.max.record.locks", Type: Int, Default: "2000", Doc: "Most in-flight records per share partition.", Check: between(100, 10000)},
	{Name: "group.share.min.partition.max.record.locks", Type: Int, Default: "100", Doc: "Lowest share.partition.max.record.locks a group may set (KIP-1240).", Check: between(100, 2000)},
	{Name: "group.share.max.partition.max.record.locks", Type: Int, Default: "4000", Doc: "Highest share.partition.max.record.locks a group may set (KIP-1240).", Check: between(2000, 10000)},
	{Name: "group.share.max.share.sessions", Type: Int, Default: "2000", Doc: "Most share sessions on this broker.", Check: atLeast(1)},
	{Name: "share.coordinator.state.topic.num.partitions", Type: Int, Default: "50", Doc: "Partitions of __share_group_state.", Check: atLeast(1)},
	{Name: "share.coordinator.state.topic.replication.factor", Type: Short, Default: "3", Doc: "Replication factor of __share_group_state, capped by the live brokers.", Check: atLeast(1)},
	{Name: "share.coordinator.state.topic.min.isr", Type: Int, Default: "2", Doc: "min.insync.replicas of __share_group_state, capped by its replication factor: an acknowledgement is answered only once this many replicas hold the state it changed.", Check: atLeast(1)},
	{Name: "errors.deadletterqueue.topic.name.prefix", Type: String, Default: "dlq.", Doc: "Prefix every dead-letter topic name must have (KIP-1191)."},
	{Name: "errors.deadletterqueue.auto.create.topics.enable", Type: Boolean, Default: "false", Doc: "Create a share group's dead-letter topic, with errors.deadletterqueue.group.enable=true, the first time a record is dead-lettered to it when it does not exist (KIP-1191). Off: a missing dead-letter topic is logged and its dead letters dropped."},
	{Name: "broker.session.timeout.ms", Type: Int, Default: "9000", Doc: "How long the active controller waits for a broker's heartbeat before fencing it.", Check: atLeast(1)},
	{Name: "broker.heartbeat.interval.ms", Type: Int, Default: "2000", Doc: "How often a broker heartbeats to the active controller.", Check: atLeast(1)},
	{Name: "replica.lag.time.max.ms", Type: Long, Default: "30000", Doc: "A follower that has not caught up with the leader for this long leaves the ISR.", Check: atLeast(1)},
	{Name: "replica.fetch.max.bytes", Type: Int, Default: "1048576", Doc: "Bytes a follower asks for per partition in one fetch (at least one batch is returned).", Check: atLeast(0)},
	{Name: "replica.fetch.response.max.bytes", Type: Int, Default: "10485760", Doc: "Bytes a follower asks for in one whole fetch response.", Check: atLeast(0)},
	{Name: "replica.fetch.wait.max.ms", Type: Int, Default: "500", Doc: "How long a follower's fetch waits at the leader for new data.", Check: atLeast(0)},
	{Name: "max.incremental.fetch.session.cache.slots", Type: Int, Default: "1000", Doc: "Most incremental fetch sessions (KIP-227) this broker keeps for consumers and followers; 0 turns sessions off (every fetch is a full one). When full, a new session takes a slot only by Kafka's rules: from a session unused for 2 minutes, or from one older than 2 minutes with fewer partitions (a follower's from any consumer's).", Check: atLeast(0)},
	{Name: "replica.fetch.backoff.ms", Type: Int, Default: "1000", Doc: "How long a follower waits before retrying a partition whose fetch failed.", Check: atLeast(0)},
	{Name: "auto.leader.rebalance.enable", Type: Boolean, Default: "true", Doc: "Periodically move leadership back to each partition's preferred (first) replica."},
	{Name: "leader.imbalance.check.interval.seconds", Type: Long, Default: "300", Doc: "How often the active controller looks for partitions not led by their preferred replica.", Check: atLeast(1)},
	{Name: "admin.addr", Type: String, Default: "127.0.0.1:9644", Doc: "Address of the HTTP admin listener (metrics, health, the web console at /ui/); empty disables it. Loopback by default; beyond loopback set admin.auth.bearer.token or admin.auth.basic.user/password, or a warning is logged at start-up."},
	{Name: "admin.ui.allow.writes", Type: Boolean, Default: "false", Doc: "Let the web console at /ui/ on the admin listener delete records, reset consumer group offsets and redrive dead letters (each confirmed in the page and logged). Off: the console is read-only."},
	{Name: "admin.pprof.enable", Type: Boolean, Default: "false", Doc: "Serve Go profiles, execution traces (/debug/pprof/trace) and heap and goroutine dumps at /debug/pprof/ on the admin listener; also turns on sparse sampling of mutex and block contention for /debug/pprof/mutex and /debug/pprof/block."},
	{Name: "admin.auth.bearer.token", Type: Password, Default: "", Doc: "When set, the admin listener's /metrics, /ui/ and /debug/pprof/ answer 401 unless the request carries Authorization: Bearer <token> (or the admin.auth.basic credentials); /healthz and /readyz stay open for probes."},
	{Name: "admin.auth.basic.user", Type: String, Default: "", Doc: "With admin.auth.basic.password, the HTTP basic-auth user the admin listener's /metrics, /ui/ and /debug/pprof/ accept (Prometheus basic_auth)."},
	{Name: "admin.auth.basic.password", Type: Password, Default: "", Doc: "The password of admin.auth.basic.user."},
	{Name: "log.level", Type: String, Default: "info", Doc: "Server log level: a default level, then optional component=level overrides, comma separated (info,request=debug,raftmeta=warn). Levels: debug, info, warn, error. Components: request (one line per request at debug), conn (closed connections), raftmeta, raft-transport, log, coordinator, share.", Check: func(v string) error { _, err := logging.ParseLevels(v); return err }},
	{Name: "log.format", Type: String, Default: "text", Doc: "Server log line format: text (key=value) or json (one object per line).", Check: oneOf("text", "json")},
}

var brokerIndex = index(BrokerDefs)

// BrokerDef returns the definition of a broker key, or nil.
func BrokerDef(name string) *Def { return brokerIndex[name] }

// Values is a set of broker key/value settings, already validated.
type Values map[string]string

// ParseProperties reads a Java-style properties file: key=value or key:value
// lines, # and ! comments, backslash line continuation.
func ParseProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var pending string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`)
			continue
		}
		line = pending + line
		pending = ""
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, fmt.Errorf("line %d: %q is not key=value", lineNo, line)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out, sc.Err()
}

// EnvPrefix prefixes environment variables that set broker keys:
// SHOAL_LOG_DIRS sets log.dirs.
const EnvPrefix = "SHOAL_"

// envName maps a key to its environment variable.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// Load merges the layers of broker configuration, each beating the one
// before: defaults, the properties file (path may be empty), SHOAL_* variables
// from environ, then --set overrides. Every key must be known and every value
// valid; the first problem is returned as one line naming the key.
func Load(path string, environ []string, overrides []string) (*Broker, error) {
	vals := map[string]string{}
	var ignored []string
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		props, err := ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for k, v := range props {
			switch {
			case brokerKeyDef(k) != nil:
				vals[k] = v
			case isKafkaOnlyKey(k):
				ignored = append(ignored, k)
			default:
				return nil, fmt.Errorf("config file %s: unknown config key %q", path, k)
			}
		}
	}
	envKeys := map[string]string{}
	for _, d := range BrokerDefs {
		envKeys[envName(d.Name)] = d.Name
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		if key, ok := envKeys[k]; ok {
			vals[key] = v
		} else if !nonConfigEnv[k] {
			return nil, fmt.Errorf("environment variable %s names no config key", k)
		}
	}
	for _, kv := range overrides {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value", kv)
		}
		k = strings.TrimSpace(k)
		if brokerKeyDef(k) == nil {
			if isKafkaOnlyKey(k) {
				ignored = append(ignored, k)
				continue
			}
			return nil, fmt.Errorf("--set: unknown config key %q", k)
		}
		vals[k] = strings.TrimSpace(v)
	}
	b, err := NewBroker(vals)
	if err != nil {
		return nil, err
	}
	sort.Strings(ignored)
	b.Ignored = slices.Compact(ignored)
	return b, nil
}

// nonConfigEnv are SHOAL_ variables that belong to the CLI, not to serve.
var nonConfigEnv = map[string]bool{"SHOAL_BOOTSTRAP_SERVER": true, "SHOAL_BENCH": true, "SHOAL_BENCH_TARGET": true}

// Listener is one parsed entry of listeners.
type Listener struct {
	Name string
	Host string
	Port int32
	// SecurityProtocol comes from listener.security.protocol.map.
	SecurityProtocol string
}

// Addr is host:port.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))) }

// AdminAuth are the credentials the admin listener accepts.
type AdminAuth struct {
	BearerToken              string
	BasicUser, BasicPassword string
}

// Enabled reports whether any credential is configured.
func (a AdminAuth) Enabled() bool { return a.BearerToken != "" || a.BasicUser != "" }

// Broker is a validated broker configuration.
type Broker struct {
	// Set holds the keys that were set explicitly (file, env or flag).
	Set Values
	// Ignored are the Kafka keys that were set but configure nothing in
	// shoal (kafkaOnlyKeys), for serve to log.
	Ignored []string

	NodeID                 int32
	Roles                  []string
	Voters                 map[int32]string
	Listeners              []Listener
	AdvertisedListeners    []Listener
	ControllerListeners    []string
	InterBrokerListener    string
	ClusterID              string
	Rack                   string
	LogDirs                []string
	MetadataDir            string
	NumPartitions          int32
	DefaultReplication     int16
	MinInsyncReplicas      int32
	AutoCreateTopics       bool
	DeleteTopicEnable      bool
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration and ProducerIDExpirationCheck are
	// producer.id.expiration.ms and its check interval.
	ProducerIDExpiration, ProducerIDExpirationCheck time.Duration
	FlushCheckInterval                              time.Duration
	CleanerBackoff                                  time.Duration
	MessageMaxBytes                                 int32
	SocketRequestMaxBytes                           int32
	// QueuedMaxRequestBytes is queued.max.request.bytes; <= 0 is
	// unbounded.
	QueuedMaxRequestBytes int64
	// RequestReadTimeout is socket.request.read.timeout.ms.
	RequestReadTimeout time.Duration
	// ConnectionsMaxIdle is connections.max.idle.ms; 0 never closes an
	// idle connection.
	ConnectionsMaxIdle time.Duration
	AdminAddr          string
	AdminPprof         bool
	AdminUIAllowWrites bool
	// AdminAuth is what the admin listener's endpoints other than the
	// health probes require; zero means nothing.
	AdminAuth AdminAuth
	LogLevel  logging.Levels
	LogFormat string

	OffsetsTopicPartitions  int32
	OffsetsTopicReplication int16
	OffsetsRetentionCheck   time.Duration
	// GroupProtocols is group.coordinator.rebalance.protocols.
	GroupProtocols []string
	// Security is the TLS, SASL and authorization configuration.
	Security *Security

	// dynamic holds the runtime overrides (dynamic.go); nil until the
	// first metadata image is applied.
	dynamic atomic.Pointer[dynamicLayer]
}

// Millis returns a numeric key's value as a duration in milliseconds.
func (b *Broker) Millis(key string) time.Duration {
	return time.Duration(b.int64(key)) * time.Millisecond
}

// Int returns a numeric key's value.
func (b *Broker) Int(key string) int64 { return b.int64(key) }

// List returns a list key's values.
func (b *Broker) List(key string) []string {
	v, _ := b.Value(key)
	return commalist.Split(v)
}

// Value returns the effective string value of a broker key (set or default)
// and whether it was set explicitly.
func (b *Broker) Value(key string) (string, bool) {
	if v, _, ok := b.explicit(key); ok {
		return v, true
	}
	if d := BrokerDef(key); d != nil {
		return d.Default, false
	}
	return "", false
}

func (b *Broker) int64(key string) int64 {
	v, _ := b.Value(key)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func (b *Broker) bool(key string) bool {
	v, _ := b.Value(key)
	return v == "true"
}

// HasRole reports whether process.roles includes role.
func (b *Broker) HasRole(role string) bool {
	for _, r := range b.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Listener returns the listener with the given name.
func (b *Broker) Listener(name string) (Listener, bool) {
	for _, l := range b.Listeners {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}

// ClientListeners are the listeners that serve the Kafka API (all but the
// controller's), with their advertised form.
func (b *Broker) ClientListeners() (bind, advertised []Listener) {
	for _, l := range b.Listeners {
		if slices.Contains(b.ControllerListeners, l.Name) {
			continue
		}
		adv := l
		for _, a := range b.AdvertisedListeners {
			if a.Name == l.Name {
				adv = a
			}
		}
		if adv.Host == "" {
			// As Kafka: no host means this machine's name.
			adv.Host, _ = os.Hostname()
		}
		bind = append(bind, l)
		advertised = append(advertised, adv)
	}
	return bind, advertised
}

// ParseConnectionOverrides parses max.connections.per.ip.overrides:
// host:count pairs separated by commas (an IPv6 host in brackets).
func ParseConnectionOverrides(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, e := range commalist.Split(v) {
		i := strings.LastIndexByte(e, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%q is not host:count", e)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(e[i+1:]), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: count must be a non-negative integer", e)
		}
		host := strings.Trim(strings.TrimSpace(e[:i]), "[]")
		out[host] = int(n)
	}
	return out, nil
}

// NewBroker validates explicitly set keys and derives the typed config.
func NewBroker(set map[string]string) (*Broker, error) {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := brokerKeyDef(k)
		if d == nil {
			return nil, fmt.Errorf("unknown config key %q", k)
		}
		if set[k] == "" && d.Type != String && d.Type != List {
			return nil, fmt.Errorf("%s: empty value", k)
		}
		if set[k] != "" {
			if err := d.Validate(set[k]); err != nil {
				return nil, err
			}
		}
	}
	b := &Broker{Set: set}
	if err := b.checkShareLimits(); err != nil {
		return nil, err
	}
	b.NodeID = int32(b.int64("node.id"))
	roles, _ := b.Value("process.roles")
	b.Roles = commalist.Split(roles)
	if len(b.Roles) == 0 {
		return nil, fmt.Errorf("process.roles: must name broker, controller or both")
	}
	pm, _ := b.Value("listener.security.protocol.map")
	protoMap, err := parseProtocolMap(pm)
	if err != nil {
		return nil, err
	}
	lv, _ := b.Value("listeners")
	if b.Listeners, err = parseListeners("listeners", lv, protoMap); err != nil {
		return nil, err
	}
	av, _ := b.Value("advertised.listeners")
	if b.AdvertisedListeners, err = parseListeners("advertised.listeners", av, protoMap); err != nil {
		return nil, err
	}
	cl, _ := b.Value("controller.listener.names")
	b.ControllerListeners = commalist.Split(cl)
	if b.InterBrokerListener, err = interBrokerListener(b); err != nil {
		return nil, err
	}
	if err := b.checkListenerLimits(set); err != nil {
		return nil, err
	}
	if b.HasRole("broker") {
		bind, adv := b.ClientListeners()
		if len(bind) == 0 {
			return nil, fmt.Errorf("listeners: a broker needs at least one listener that is not in controller.listener.names")
		}
		for _, a := range adv {
			if ip := net.ParseIP(a.Host); ip != nil && ip.IsUnspecified() {
				// Kafka refuses it too: clients would be told to
				// connect to an address that reaches no one.
				return nil, fmt.Errorf("advertised.listeners: listener %s would advertise the non-routable meta-address %s; set advertised.listeners to an address clients can reach (or leave the host empty to advertise this machine's hostname)", a.Name, a.Host)
			}
		}
	} else if bind, _ := b.ClientListeners(); len(bind) > 0 {
		// As in Kafka: a controller-only node serves no clients, only the
		// controller listener (raft and the brokers' controller RPCs).
		return nil, fmt.Errorf("listeners: %s is not in controller.listener.names, but process.roles=controller serves no clients", bind[0].Name)
	}
	vv, _ := b.Value("controller.quorum.voters")
	b.Voters = map[int32]string{}
	for _, e := range commalist.Split(vv) {
		id, addr, ok := strings.Cut(e, "@")
		n, perr := strconv.ParseInt(id, 10, 32)
		if !ok || perr != nil || n < 0 {
			return nil, fmt.Errorf("controller.quorum.voters: %q is not id@host:port", e)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("controller.quorum.voters: %q: %v", e, err)
		}
		b.Voters[int32(n)] = addr
	}
	if len(b.Voters) == 0 {
		return nil, fmt.Errorf("controller.quorum.voters: empty")
	}
	if b.HasRole("controller") {
		if _, ok := b.Voters[b.NodeID]; !ok {
			return nil, fmt.Errorf("controller.quorum.voters: node.id %d has the controller role but is not a voter", b.NodeID)
		}
	} else if _, ok := b.Voters[b.NodeID]; ok {
		// A broker-only node follows the log as a learner; a voter that
		// never runs would count against the quorum forever.
		return nil, fmt.Errorf("controller.quorum.voters: node.id %d has process.roles=broker and must not be a voter", b.NodeID)
	}
	b.ClusterID, _ = b.Value("cluster.id")
	b.Rack, _ = b.Value("broker.rack")
	dirs, dirsSet := b.Value("log.dirs")
	if one, ok := b.Set["log.dir"]; ok && !dirsSet {
		dirs = one
	}
	b.LogDirs = commalist.Split(dirs)
	if len(b.LogDirs) == 0 {
		return nil, fmt.Errorf("log.dirs: empty")
	}
	b.MetadataDir, _ = b.Value("metadata.log.dir")
	if b.MetadataDir == "" {
		b.MetadataDir = b.LogDirs[0] + string(os.PathSeparator) + "__cluster_metadata"
	}
	b.NumPartitions = int32(b.int64("num.partitions"))
	b.DefaultReplication = int16(b.int64("default.replication.factor"))
	b.MinInsyncReplicas = int32(b.int64("min.insync.replicas"))
	b.AutoCreateTopics = b.bool("auto.create.topics.enable")
	b.DeleteTopicEnable = b.bool("delete.topic.enable")
	b.RetentionCheckInterval = time.Duration(b.int64("log.retention.check.interval.ms")) * time.Millisecond
	b.ProducerIDExpiration = b.Millis("producer.id.expiration.ms")
	b.ProducerIDExpirationCheck = b.Millis("producer.id.expiration.check.interval.ms")
	b.FlushCheckInterval = time.Duration(b.int64("log.flush.scheduler.interval.ms")) * time.Millisecond
	b.CleanerBackoff = b.Millis("log.cleaner.backoff.ms")
	b.MessageMaxBytes = int32(b.int64("message.max.bytes"))
	b.SocketRequestMaxBytes = int32(b.int64("socket.request.max.bytes"))
	b.QueuedMaxRequestBytes = b.int64("queued.max.request.bytes")
	b.RequestReadTimeout = b.Millis("socket.request.read.timeout.ms")
	if b.ConnectionsMaxIdle = b.Millis("connections.max.idle.ms"); b.ConnectionsMaxIdle < 0 {
		b.ConnectionsMaxIdle = 0
	}
	// The connection limits are read where they are used, as they may
	// change at runtime (ConnectionLimits).
	lim := b.ConnectionLimits()
	ov, _ := ParseConnectionOverrides(lim.Overrides)
	if err := checkPerIP(lim.PerIP, ov); err != nil {
		return nil, err
	}
	b.AdminAddr, _ = b.Value("admin.addr")
	b.AdminPprof = b.bool("admin.pprof.enable")
	b.AdminUIAllowWrites = b.bool("admin.ui.allow.writes")
	b.AdminAuth.BearerToken, _ = b.Value("admin.auth.bearer.token")
	b.AdminAuth.BasicUser, _ = b.Value("admin.auth.basic.user")
	b.AdminAuth.BasicPassword, _ = b.Value("admin.auth.basic.password")
	if (b.AdminAuth.BasicUser == "") != (b.AdminAuth.BasicPassword == "") {
		return nil, fmt.Errorf("admin.auth.basic.user and admin.auth.basic.password go together: set both or neither")
	}
	level, _ := b.Value("log.level")
	if b.LogLevel, err = logging.ParseLevels(level); err != nil {
		return nil, err
	}
	b.LogFormat, _ = b.Value("log.format")
	b.OffsetsTopicPartitions = int32(b.int64("offsets.topic.num.partitions"))
	b.OffsetsTopicReplication = int16(b.int64("offsets.topic.replication.factor"))
	b.OffsetsRetentionCheck = b.Millis("offsets.retention.check.interval.ms")
	b.GroupProtocols = b.List("group.coordinator.rebalance.protocols")
	if b.Security, err = b.parseSecurity(protoMap); err != nil {
		return nil, err
	}
	for _, l := range b.Listeners {
		if !slices.Contains(servedProtocols, l.SecurityProtocol) {
			// The keys are validated above, but a listener must never run
			// without the security it was configured with.
			return nil, fmt.Errorf("listener %s: security protocol %s is not served yet (only %s)", l.Name, l.SecurityProtocol, strings.Join(servedProtocols, ", "))
		}
	}
	return b, nil
}

func parseListeners(key, v string, protoMap map[string]string) ([]Listener, error) {
	var out []Listener
	for _, e := range commalist.Split(v) {
		name, hp, ok := strings.Cut(e, "://")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not NAME://host:port", key, e)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", key, e, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: bad port", key, e)
		}
		proto, ok := protoMap[name]
		if !ok {
			// Kafka lets the listener name be the protocol itself.
			if !slices.Contains(securityProtocols, name) {
				return nil, fmt.Errorf("%s: listener %s has no entry in listener.security.protocol.map", key, name)
			}
			proto = name
		}
		out = append(out, Listener{Name: name, Host: host, Port: int32(p), SecurityProtocol: proto})
	}
	return out, nil
}

// interBrokerListener is inter.broker.listener.name or, as in Kafka, the
// listener named after security.inter.broker.protocol when that is set
// instead; setting both is an error, as it is in Kafka.
func interBrokerListener(b *Broker) (string, error) {
	name, nameSet := b.Value("inter.broker.listener.name")
	proto, protoSet := b.Value("security.inter.broker.protocol")
	if !protoSet {
		return name, nil
	}
	if nameSet {
		return "", fmt.Errorf("security.inter.broker.protocol and inter.broker.listener.name are both set: set only one")
	}
	proto = strings.ToUpper(strings.TrimSpace(proto))
	if !slices.Contains(securityProtocols, proto) {
		return "", fmt.Errorf("security.inter.broker.protocol: %q is not one of %s", proto, strings.Join(securityProtocols, ", "))
	}
	return proto, nil
}
