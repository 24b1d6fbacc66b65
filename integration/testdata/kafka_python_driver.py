"""Performs one client-matrix step with kafka-python.

Run as: python3 kafka_python_driver.py OP < JSON-ARGS. The answer is JSON on
stdout (one object, or for "member" one line per assignment change); errors
go to stderr with a non-zero exit.
"""

import json
import signal
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def admin(a):
    return KafkaAdminClient(bootstrap_servers=a["addr"], request_timeout_ms=20000)


def create_topic(a):
    adm = admin(a)
    adm.create_topics([NewTopic(a["topic"], a["partitions"], 1, topic_configs=a["configs"])])
    adm.close()
    out({})


def produce(a):
    codec = None if a["codec"] == "none" else a["codec"]
    p = KafkaProducer(bootstrap_servers=a["addr"], compression_type=codec, linger_ms=5, acks="all")
    futures = []
    for r in a["records"]:
        headers = [(h["Key"], h["Value"].encode()) for h in r["Headers"]]
        futures.append(p.send(a["topic"], key=r["Key"].encode(), value=r["Value"].encode(),
                              headers=headers, timestamp_ms=r["TimestampMs"]))
    p.flush(timeout=20)
    for f in futures:
        f.get(timeout=20)
    p.close()
    out({})


def record(rec):
    return {
        "Partition": rec.partition, "Offset": rec.offset,
        "Key": rec.key.decode(), "Value": rec.value.decode(),
        "Headers": [{"Key": k, "Value": v.decode()} for k, v in rec.headers] or None,
        "TimestampMs": rec.timestamp,
    }


def consume_group(a):
    c = KafkaConsumer(a["topic"], bootstrap_servers=a["addr"], group_id=a["group"],
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      fetch_max_wait_ms=200, session_timeout_ms=6000, heartbeat_interval_ms=300)
    ends = {int(p): e for p, e in a["ends"].items()}
    got = []
    polls = 0

    def caught_up():
        parts = c.assignment()
        if {tp.partition for tp in parts} != set(ends):
            return False
        return all(c.position(tp) >= ends[tp.partition] for tp in parts)

    while not caught_up():
        polls += 1
        if polls > 400:
            raise SystemExit("not caught up after 400 polls: %d records" % len(got))
        for recs in c.poll(timeout_ms=200).values():
            got.extend(record(r) for r in recs)
        c.commit()
    # Caught up: keep polling; every poll now fetches at the end of the log
    # and must come back empty.
    for _ in range(5):
        extra = c.poll(timeout_ms=200)
        if extra:
            raise SystemExit("records past the end: %r" % extra)
    c.close()
    out(got)


def committed(a):
    adm = admin(a)
    offs = adm.list_consumer_group_offsets(a["group"])
    adm.close()
    out({str(tp.partition): om.offset for tp, om in offs.items() if tp.topic == a["topic"]})


class Listener(ConsumerRebalanceListener):
    def __init__(self):
        self.owned = set()

    def on_partitions_revoked(self, revoked):
        self.owned -= {tp.partition for tp in revoked}
        out(sorted(self.owned))

    def on_partitions_assigned(self, assigned):
        self.owned = {tp.partition for tp in assigned}
        out(sorted(self.owned))


def member(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    c = KafkaConsumer(bootstrap_servers=a["addr"], group_id=a["group"],
                      fetch_max_wait_ms=200, session_timeout_ms=6000, heartbeat_interval_ms=300)
    c.subscribe([a["topic"]], listener=Listener())
    while not stop:
        c.poll(timeout_ms=100)
    c.close()


def describe_group(a):
    adm = admin(a)
    g = adm.describe_consumer_groups([a["group"]])[0]
    adm.close()
    if g.error_code:
        raise SystemExit("describe group: error %d" % g.error_code)
    out({"State": g.state, "Members": len(g.members)})


def list_groups(a):
    adm = admin(a)
    gs = adm.list_consumer_groups()
    adm.close()
    out([g[0] for g in gs])


def offsets_for_time(a):
    c = KafkaConsumer(bootstrap_servers=a["addr"])
    tps = [TopicPartition(a["topic"], p) for p in range(a["partitions"])]
    res = c.offsets_for_times({tp: a["ms"] for tp in tps})
    c.close()
    out({str(tp.partition): (ot.offset if ot else -1) for tp, ot in res.items()})


def describe_config(a):
    adm = admin(a)
    resps = adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, a["topic"])])
    adm.close()
    for resp in resps:
        for err, msg, _type, _name, entries in resp.resources:
            if err:
                raise SystemExit("describe configs: error %d %s" % (err, msg))
            for e in entries:
                if e[0] == a["key"]:
                    out(e[1])
                    return
    raise SystemExit("%s not described" % a["key"])


def delete_topic(a):
    adm = admin(a)
    adm.delete_topics([a["topic"]])
    adm.close()
    out({})


OPS = {
    "create_topic": create_topic, "produce": produce, "consume_group": consume_group,
    "committed": committed, "member": member, "describe_group": describe_group,
    "list_groups": list_groups, "offsets_for_time": offsets_for_time,
    "describe_config": describe_config, "delete_topic": delete_topic,
}

if __name__ == "__main__":
    OPS[sys.argv[1]](json.loads(sys.stdin.read()))
