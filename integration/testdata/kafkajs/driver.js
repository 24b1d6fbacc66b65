// Performs one client-matrix step (or one transaction scenario) with
// KafkaJS.
//
// Run as: node driver.js OP < JSON-ARGS. The answer is JSON on stdout (one
// value, or for "member" one line per assignment change); KafkaJS's own log
// and errors go to stderr, errors with a non-zero exit.
'use strict';

const fs = require('fs');
const {
  Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel,
  AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes,
} = require('kafkajs');
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
};

// matrixCommitEvery matches the Go side's: records consumed between commits.
const matrixCommitEvery = 250;

// out writes v as one line of JSON. A pipe is written asynchronously:
// main waits for the writes before the process exits.
const writes = [];
function out(v) {
  writes.push(new Promise((resolve) => process.stdout.write(JSON.stringify(v) + '\n', resolve)));
}

// KafkaJS logs to stdout by default, where the answer goes.
const toStderr = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
};

// client is a KafkaJS client of a.addr; with a.sasl ({mechanism, username,
// password}) it authenticates over TLS, trusting the CA in the PEM file
// a.ca.
function client(a) {
  const config = {
    clientId: 'shoal-matrix-kafkajs',
    brokers: [a.addr],
    logLevel: logLevel.WARN,
    logCreator: toStderr,
    connectionTimeout: 10000,
    requestTimeout: 30000,
    retry: { retries: a.retries === undefined ? 8 : a.retries },
  };
  if (a.sasl) {
    config.ssl = { ca: [fs.readFileSync(a.ca)] };
    config.sasl = a.sasl;
  }
  return new Kafka(config);
}

async function withAdmin(a, fn) {
  const admin = client(a).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

function message(r) {
  const headers = {};
  for (const h of r.Headers || []) headers[h.Key] = h.Value;
  return { key: r.Key, value: r.Value, headers, timestamp: String(r.TimestampMs) };
}

function record(partition, m) {
  const headers = Object.entries(m.headers || {}).map(([k, v]) => ({ Key: k, Value: v.toString() }));
  return {
    Partition: partition,
    Offset: Number(m.offset),
    Key: m.key === null ? '' : m.key.toString(),
    Value: m.value.toString(),
    Headers: headers.length ? headers : null,
    TimestampMs: Number(m.timestamp),
  };
}

async function produceWith(a, opts, compression) {
  const producer = client(a).producer(opts);
  await producer.connect();
  try {
    await producer.send({ topic: a.topic, acks: -1, compression, messages: a.records.map(message) });
  } finally {
    await producer.disconnect();
  }
}

// ending is a promise its second element resolves, rejected when consumer
// crashes for good: KafkaJS then stops it, and with nothing left to wait
// for Node would exit without an answer.
function ending(consumer) {
  let resolve;
  const p = new Promise((res, rej) => {
    resolve = res;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) rej(payload.error);
    });
  });
  return [p, resolve];
}

// consumeUntil runs consumer on topic from the beginning, calling each for
// every record, until done() says so; then it waits quietMs more and fails
// if any record arrives in that time (nothing lies past the end).
async function consumeUntil(consumer, topic, each, done, quietMs) {
  await consumer.subscribe({ topic, fromBeginning: true });
  let finished = false;
  let extra = null;
  const [reached, resolveDone] = ending(consumer);
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message: m }) => {
      if (finished) {
        extra = extra || `record past the end: ${partition}@${m.offset}`;
        return;
      }
      await each(partition, m);
      if (await done()) {
        finished = true;
        resolveDone();
      }
    },
  });
  await reached;
  await new Promise((resolve) => setTimeout(resolve, quietMs));
  if (extra) throw new Error(extra);
}

const ops = {
  async create_topic(a) {
    await withAdmin(a, (admin) => admin.createTopics({
      waitForLeaders: true,
      topics: [{
        topic: a.topic, numPartitions: a.partitions, replicationFactor: 1,
        configEntries: Object.entries(a.configs || {}).map(([name, value]) => ({ name, value })),
      }],
    }));
    out({});
  },

  async produce(a) {
    await produceWith(a, {}, codecs[a.codec]);
    out({});
  },

  async produce_idempotent(a) {
    await produceWith(a, { idempotent: true, maxInFlightRequests: 1 }, CompressionTypes.None);
    out({});
  },

  async consume_group(a) {
    const consumer = client(a).consumer({
      groupId: a.group, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200,
    });
    await consumer.connect();
    const ends = a.ends;
    const next = {};
    const got = [];
    let sinceCommit = 0;
    const commit = () => consumer.commitOffsets(Object.entries(next).map(
      ([partition, offset]) => ({ topic: a.topic, partition: Number(partition), offset: String(offset) })));
    await consumeUntil(consumer, a.topic, async (partition, m) => {
      got.push(record(partition, m));
      next[partition] = Number(m.offset) + 1;
      if (++sinceCommit >= matrixCommitEvery) {
        sinceCommit = 0;
        await commit();
      }
    }, async () => {
      const caughtUp = Object.entries(ends).every(([p, e]) => (next[p] || 0) >= e);
      if (caughtUp) await commit();
      return caughtUp;
    }, 1000);
    await consumer.disconnect();
    out(got);
  },

  async committed(a) {
    const res = await withAdmin(a, (admin) => admin.fetchOffsets({ groupId: a.group, topics: [a.topic] }));
    const offsets = {};
    for (const t of res) {
      for (const p of t.partitions) offsets[p.partition] = Number(p.offset);
    }
    out(offsets);
  },

  async member(a) {
    const consumer = client(a).consumer({
      groupId: a.group, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200,
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      out([...(payload.memberAssignment[a.topic] || [])].sort((x, y) => x - y));
    });
    let stopping = false;
    process.on('SIGTERM', async () => {
      if (stopping) return;
      stopping = true;
      await consumer.disconnect();
      process.exit(0);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: a.topic, fromBeginning: true });
    await consumer.run({ eachMessage: async () => {} });
  },

  async describe_group(a) {
    const res = await withAdmin(a, (admin) => admin.describeGroups([a.group]));
    const g = res.groups[0];
    if (g.errorCode) throw new Error(`describe group: error ${g.errorCode}`);
    out({ State: g.state, Members: g.members.length });
  },

  async list_groups(a) {
    const res = await withAdmin(a, (admin) => admin.listGroups());
    out(res.groups.map((g) => g.groupId));
  },

  async offsets_for_time(a) {
    const res = await withAdmin(a, (admin) => admin.fetchTopicOffsetsByTimestamp(a.topic, a.ms));
    const offsets = {};
    for (const p of res) offsets[p.partition] = Number(p.offset);
    out(offsets);
  },

  async describe_config(a) {
    const res = await withAdmin(a, (admin) => admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: a.topic, configNames: [a.key] }],
    }));
    const r = res.resources[0];
    if (r.errorCode) throw new Error(`describe configs: error ${r.errorCode} ${r.errorMessage}`);
    const e = r.configEntries.find((c) => c.configName === a.key);
    if (!e) throw new Error(`${a.key} not described`);
    out(e.configValue);
  },

  async delete_records(a) {
    await withAdmin(a, async (admin) => {
      // deleteTopicRecords looks the leaders up in metadata it does not
      // load itself ("Topic metadata not loaded" otherwise).
      await admin.fetchTopicMetadata({ topics: [a.topic] });
      await admin.deleteTopicRecords({
        topic: a.topic, partitions: [{ partition: a.partition, offset: String(a.before) }],
      });
    });
    out({});
  },

  async delete_topic(a) {
    await withAdmin(a, (admin) => admin.deleteTopics({ topics: [a.topic], timeout: 20000 }));
    out({});
  },

  // transact runs one transaction of a transactional producer that
  // consumes its input in a group: it sends a.records to a.topic, commits
  // a.offsets (partition -> offset of a.input) for a.group inside the
  // transaction, and commits it, or aborts it when a.abort is set.
  async transact(a) {
    const producer = client(a).producer({
      transactionalId: a.txnId, idempotent: true, maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.send({ topic: a.topic, messages: a.records.map(message) });
      await txn.sendOffsets({
        consumerGroupId: a.group,
        topics: [{
          topic: a.input,
          partitions: Object.entries(a.offsets).map(([partition, offset]) => ({
            partition: Number(partition), offset: String(offset),
          })),
        }],
      });
      if (a.abort) await txn.abort();
      else await txn.commit();
    } finally {
      await producer.disconnect();
    }
    out({});
  },

  // read reads a.topic from the beginning in a.group until it has read
  // a.want records, and returns them. Its consumer reads only committed
  // records, or with a.uncommitted those of open and aborted transactions
  // too.
  async read(a) {
    const consumer = client(a).consumer({
      groupId: a.group, readUncommitted: Boolean(a.uncommitted), maxWaitTimeInMs: 200,
      sessionTimeout: 6000, heartbeatInterval: 300,
    });
    await consumer.connect();
    const got = [];
    await consumeUntil(consumer, a.topic, async (partition, m) => {
      got.push(record(partition, m));
    }, async () => got.length >= a.want, 1000);
    await consumer.disconnect();
    out(got);
  },

  // seek_pause reads a.topic in a.group with partition a.pause paused and
  // each partition of a.seek (partition -> offset) sought before the first
  // fetch; once every other partition has reached its end in a.ends
  // (partition -> end offset) it resumes a.pause and reads it to its end
  // too. It answers the records in the order they arrived.
  async seek_pause(a) {
    const consumer = client(a).consumer({
      groupId: a.group, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200,
    });
    await consumer.connect();
    await consumer.subscribe({ topic: a.topic, fromBeginning: true });
    const next = {};
    const reachedEnds = (partitions) => partitions.every((p) => (next[p] || 0) >= a.ends[p]);
    const all = Object.keys(a.ends);
    const others = all.filter((p) => Number(p) !== a.pause);
    const got = [];
    let resumed = false;
    const [done, resolveDone] = ending(consumer);
    const check = () => {
      if (!resumed && reachedEnds(others)) {
        resumed = true;
        consumer.resume([{ topic: a.topic, partitions: [a.pause] }]);
      }
      if (resumed && reachedEnds(all)) resolveDone();
    };
    const running = consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message: m }) => {
        got.push(record(partition, m));
        next[partition] = Number(m.offset) + 1;
        check();
      },
    });
    // run creates the consumer's group state before its first await, so
    // the pause and the seek are in place before it joins and fetches.
    consumer.pause([{ topic: a.topic, partitions: [a.pause] }]);
    for (const [partition, offset] of Object.entries(a.seek)) {
      consumer.seek({ topic: a.topic, partition: Number(partition), offset: String(offset) });
    }
    await running;
    check();
    await done;
    await consumer.disconnect();
    out(got);
  },
};

// acl is a KafkaJS ACL (or ACL filter) of the Go side's, whose enum
// fields are named (TOPIC, READ, ALLOW, LITERAL; ANY in a filter).
function acl(a) {
  return {
    resourceType: AclResourceTypes[a.resourceType],
    resourceName: a.resourceName,
    resourcePatternType: ResourcePatternTypes[a.patternType],
    principal: a.principal,
    host: a.host,
    operation: AclOperationTypes[a.operation],
    permissionType: AclPermissionTypes[a.permission],
  };
}

// refused is the answer {Error: type} when the broker refused a call with
// a protocol error; any other error is rethrown.
function refused(err) {
  if (!err.type) throw err;
  return { Error: err.type };
}

// The admin calls the client matrix does not make, one per op; each
// answers what KafkaJS returned, for the test to hold against the broker.
Object.assign(ops, {
  async list_topics(a) {
    out(await withAdmin(a, (admin) => admin.listTopics()));
  },

  // topic_metadata answers a.topic's partitions as {Partitions: [{Partition,
  // Leader, Replicas, Isr}]}, or {Error} (refused).
  async topic_metadata(a) {
    out(await withAdmin(a, (admin) => admin.fetchTopicMetadata({ topics: [a.topic] })).then((res) => ({
      Partitions: res.topics[0].partitions.map((p) => ({
        Partition: p.partitionId, Leader: p.leader, Replicas: p.replicas, Isr: p.isr,
      })),
    }), refused));
  },

  // create_partitions grows a.topic to a.count partitions (only checks
  // that it could with a.validateOnly), answering {} or {Error} (refused).
  async create_partitions(a) {
    out(await withAdmin(a, (admin) => admin.createPartitions({
      validateOnly: a.validateOnly,
      topicPartitions: [{ topic: a.topic, count: a.count }],
    })).then(() => ({}), refused));
  },

  // alter_configs sets a.topic's configs to a.configs (AlterConfigs
  // replaces the whole set: what it leaves out returns to the default), or
  // with a.validateOnly only checks that it could.
  async alter_configs(a) {
    const res = await withAdmin(a, (admin) => admin.alterConfigs({
      validateOnly: Boolean(a.validateOnly),
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: a.topic,
        configEntries: Object.entries(a.configs).map(([name, value]) => ({ name, value })),
      }],
    }));
    const r = res.resources[0];
    if (r.errorCode) throw new Error(`alter configs: error ${r.errorCode} ${r.errorMessage}`);
    out({});
  },

  // describe_configs answers every config of the resource a.type
  // ("TOPIC" or "BROKER") named a.name, with its synonyms, as name ->
  // {Value, Source, ReadOnly, Sensitive, Synonyms: [{Name, Value, Source}]}.
  async describe_configs(a) {
    const res = await withAdmin(a, (admin) => admin.describeConfigs({
      includeSynonyms: true,
      resources: [{ type: ConfigResourceTypes[a.type], name: a.name }],
    }));
    const r = res.resources[0];
    if (r.errorCode) throw new Error(`describe configs: error ${r.errorCode} ${r.errorMessage}`);
    const configs = {};
    for (const e of r.configEntries) {
      configs[e.configName] = {
        Value: e.configValue,
        Source: e.configSource,
        ReadOnly: e.readOnly,
        Sensitive: e.isSensitive,
        Synonyms: e.configSynonyms.map((y) => ({ Name: y.configName, Value: y.configValue, Source: y.configSource })),
      };
    }
    out(configs);
  },

  async describe_cluster(a) {
    const c = await withAdmin(a, (admin) => admin.describeCluster());
    out({
      ClusterID: c.clusterId,
      Controller: c.controller,
      Brokers: c.brokers.map((b) => ({ NodeID: b.nodeId, Host: b.host, Port: b.port })),
    });
  },

  // topic_offsets answers a.topic's partitions' [low, high] offsets.
  async topic_offsets(a) {
    const res = await withAdmin(a, (admin) => admin.fetchTopicOffsets(a.topic));
    const offsets = {};
    for (const p of res) offsets[p.partition] = [Number(p.low), Number(p.high)];
    out(offsets);
  },

  // set_offsets sets the offsets of a.topic of each of a.groups, which
  // must have no members, all at once: setOffsets commits g.offsets
  // (partition -> offset), or resetOffsets the earliest or latest marker
  // when g.reset is "earliest" or "latest". Each takes KafkaJS at least
  // 5 s: the consumer it commits with pauses every partition, and a fetch
  // with nothing to fetch waits its default maxWaitTimeInMs.
  async set_offsets(a) {
    await withAdmin(a, (admin) => Promise.all(a.groups.map((g) => {
      if (g.reset) return admin.resetOffsets({ groupId: g.group, topic: a.topic, earliest: g.reset === 'earliest' });
      return admin.setOffsets({
        groupId: g.group,
        topic: a.topic,
        partitions: Object.entries(g.offsets).map(([partition, offset]) => ({
          partition: Number(partition), offset: String(offset),
        })),
      });
    })));
    out({});
  },

  // fetch_offsets answers every offset each of a.groups committed, as
  // group -> topic -> partition -> offset. With g.resolve KafkaJS first
  // turns committed earliest and latest markers into offsets and commits
  // those (as set_offsets does, taking 5 s).
  async fetch_offsets(a) {
    const offsets = {};
    await withAdmin(a, (admin) => Promise.all(a.groups.map(async (g) => {
      const res = await admin.fetchOffsets({ groupId: g.group, resolveOffsets: g.resolve });
      offsets[g.group] = {};
      for (const t of res) {
        offsets[g.group][t.topic] = {};
        for (const p of t.partitions) offsets[g.group][t.topic][p.partition] = Number(p.offset);
      }
    })));
    out(offsets);
  },

  // delete_groups answers the error code of each of a.groups (0 when
  // deleted). When any is not deleted KafkaJS throws a
  // KafkaJSDeleteGroupsError naming only those.
  async delete_groups(a) {
    const codes = {};
    for (const g of a.groups) codes[g] = 0;
    try {
      await withAdmin(a, (admin) => admin.deleteGroups(a.groups));
    } catch (err) {
      if (!err.groups) throw err;
      for (const g of err.groups) codes[g.groupId] = g.errorCode;
    }
    out(codes);
  },

  async create_acls(a) {
    await withAdmin(a, (admin) => admin.createAcls({ acl: a.acls.map(acl) }));
    out({});
  },

  // describe_acls answers the ACLs matching a.filter, one
  // "resource-type:pattern-type:name principal host operation permission"
  // line each, the enums by number.
  async describe_acls(a) {
    const res = await withAdmin(a, (admin) => admin.describeAcls(acl(a.filter)));
    const lines = [];
    for (const r of res.resources) {
      for (const e of r.acls) {
        lines.push(`${r.resourceType}:${r.resourcePatternType}:${r.resourceName} ${e.principal} ${e.host} ${e.operation} ${e.permissionType}`);
      }
    }
    out(lines.sort());
  },

  // delete_acls deletes the ACLs matching a.filters and answers how many
  // each filter matched.
  async delete_acls(a) {
    const res = await withAdmin(a, (admin) => admin.deleteAcls({ filters: a.filters.map(acl) }));
    out(res.filterResponses.map((f) => {
      if (f.errorCode) throw new Error(`delete acls: error ${f.errorCode} ${f.errorMessage}`);
      return f.matchingAcls.length;
    }));
  },
});

// authenticated performs the security test's part over SASL_SSL (a.sasl,
// a.ca): it produces a.count records valued a.prefix-i to a.topic, then
// reads a.topic in a.group until it has read them all, and answers the
// values it read; or, when the credentials are refused, the error's name.
ops.authenticated = async (a) => {
  const producer = client(a).producer();
  try {
    await producer.connect();
  } catch (err) {
    out({ error: err.name });
    return;
  }
  const messages = [];
  for (let i = 0; i < a.count; i++) messages.push({ value: `${a.prefix}-${i}` });
  await producer.send({ topic: a.topic, acks: -1, messages });
  await producer.disconnect();
  const consumer = client(a).consumer({ groupId: a.group, maxWaitTimeInMs: 200 });
  await consumer.connect();
  const values = [];
  const mine = () => values.filter((v) => v.startsWith(`${a.prefix}-`)).length;
  await consumeUntil(consumer, a.topic, async (_, m) => {
    values.push(m.value.toString());
  }, async () => mine() >= a.count, 0);
  await consumer.disconnect();
  out({ values });
};

async function main() {
  const op = ops[process.argv[2]];
  if (!op) throw new Error(`unknown op ${process.argv[2]}`);
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  await op(JSON.parse(Buffer.concat(chunks).toString()));
}

main().then(async () => {
  // KafkaJS may leave timers behind: exit once the answer is written.
  await Promise.all(writes);
  if (process.argv[2] !== 'member') process.exit(0);
}, (err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
