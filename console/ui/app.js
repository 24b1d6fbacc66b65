// shoal console: hash-routed pages over the JSON API in /ui/api/.
// Everything is built with DOM calls (never innerHTML), so record keys,
// values and topic names are shown as text, never interpreted.
"use strict";

const main = document.getElementById("main");
const statusEl = document.getElementById("status");
let settings = { allowWrites: false, login: false };
// settingsLoaded settles when the first settings have arrived; they load
// alongside the first page's data rather than before it.
const settingsLoaded = fetch("api/settings").then((r) => r.json())
  .then((s) => { settings = s; showUser(); }).catch(() => {});
let timer = null;

// h builds an element: h("td", {class: "n", "data-k": "end-0"}, child...).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null) continue;
    el.append(k instanceof Node ? k : String(k));
  }
  return el;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Shoal-Console": "1" },
  };
  // Every answer is used once the settings are known (they decide the
  // read-only note and the login), but both travel at once.
  const [r] = await Promise.all([fetch("api/" + path, opts), settingsLoaded]);
  const j = await r.json().catch(() => ({ error: r.statusText }));
  if (r.status === 401 && settings.login && path !== "login") {
    // The session ended (or never began): ask for credentials again.
    settings.user = "";
    throw new LoginNeeded();
  }
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

class LoginNeeded extends Error {}

// pageLogin asks for Kafka credentials; the console then acts as that
// user, so the broker's ACLs decide what the pages show.
function pageLogin() {
  const user = h("input", { name: "user", id: "login-user", autocomplete: "username", required: true });
  const pass = h("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password" });
  const err = h("p", { id: "login-error", class: "bad" });
  const form = h("form", { class: "bar", id: "login" },
    h("label", {}, "User", user), h("label", {}, "Password", pass), h("button", { type: "submit", id: "login-go" }, "Log in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("login", { user: user.value, password: pass.value });
      settings = await api("settings");
      showUser();
      render();
    } catch (x) { err.textContent = x.message; }
  });
  return [h("h1", {}, "Log in"), h("p", {}, "This cluster authenticates its clients: log in with your Kafka user and password. The console acts as you, so you see and may change what your ACLs allow."), form, err];
}

// showUser puts the logged-in user and a log-out button in the header.
function showUser() {
  const who = document.getElementById("who");
  if (!settings.login || !settings.user) { who.replaceChildren(); return; }
  who.replaceChildren(h("span", { id: "user" }, settings.user), " ",
    h("button", { id: "logout", onclick: async () => {
      await api("logout", {}).catch(() => {});
      settings.user = "";
      showUser();
      render();
    } }, "Log out"));
}

const q = encodeURIComponent;
const fmt = (n) => (n === undefined || n === null || n < 0) ? "–" : Number(n).toLocaleString("en-US");
const rate = (n) => n ? n.toFixed(1) + "/s" : "0/s";
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
const num = (v, k) => h("td", { class: "n", "data-k": k }, fmt(v));
const cell = (v, k) => h("td", { "data-k": k }, v);
const table = (heads, rows, id) => h("table", { id }, h("tr", {}, heads.map((x) => h("th", {}, x))), rows);
const link = (href, text) => h("a", { href }, text);

// chart draws series of {t, v} points as an SVG line chart.
function chart(series, id) {
  const W = 560, H = 120, pad = 4;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("id", id);
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const all = series.flatMap((s) => s.points || []);
  const legend = h("div", { class: "legend" });
  if (!all.length) {
    legend.append(h("span", {}, "no samples yet (sampled every few seconds while the console is open)"));
    return h("div", {}, svg, legend);
  }
  const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  const vmax = Math.max(1, ...all.map((p) => p.v));
  for (const s of series) {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("stroke", s.color);
    pl.setAttribute("points", (s.points || []).map((p) =>
      `${pad + (W - 2 * pad) * (t1 > t0 ? (p.t - t0) / (t1 - t0) : 1)},${H - pad - (H - 2 * pad) * p.v / vmax}`).join(" "));
    svg.append(pl);
    const last = s.points && s.points.length ? s.points[s.points.length - 1].v : 0;
    const label = h("span", {}, `${s.name}: ${Number(last.toFixed(1)).toLocaleString("en-US")}`);
    label.style.color = s.color; // a property, not a style attribute: the CSP forbids those
    legend.append(label);
  }
  legend.append(h("span", {}, `max ${Number(vmax.toFixed(1)).toLocaleString("en-US")}`));
  return h("div", {}, svg, legend);
}

// confirmThen shows what an action will do and runs it only on Confirm.
function confirmThen(what, run) {
  const box = h("div", { class: "note", id: "confirm" }, h("p", {}, what));
  const out = h("p", { id: "action-result" });
  const yes = h("button", { id: "confirm-yes", onclick: async () => {
    yes.disabled = true;
    try { out.textContent = await run(); out.className = "ok"; } catch (e) { out.textContent = "Refused: " + e.message; out.className = "bad"; }
  } }, "Confirm");
  box.append(yes, " ",
    h("button", { onclick: () => box.remove() }, "Close"), out);
  document.getElementById("confirm")?.remove();
  main.prepend(box);
}

function writesNote() {
  return settings.allowWrites ? null :
    h("p", { class: "note" }, "Read-only: actions are refused until the broker runs with admin.ui.allow.writes=true.");
}

// ---- pages ----

async function pageCluster() {
  const c = await api("cluster");
  const brokers = c.brokers.map((b) => h("tr", {}, num(b.id, "broker-" + b.id), cell(b.host + ":" + b.port), cell(b.rack || "–"),
    cell(b.controller ? "active controller" : "broker", "role-" + b.id)));
  const bad = (list, k) => list.length ? table(["Topic", "Partition", "Leader", "ISR / replicas"],
    list.map((p) => h("tr", {}, cell(link("#/topic/" + q(p.topic), p.topic)), num(p.partition), num(p.leader), cell(`${p.isr} / ${p.replicas}`))), k)
    : h("p", { class: "ok", id: k }, "none");
  let quorum = h("p", { class: "bad" }, "DescribeQuorum failed: " + (c.quorumError || "no answer"));
  if (c.quorum) {
    const rows = (list, kind) => list.map((v) => h("tr", {}, num(v.id), cell(kind + (v.id === c.quorum.leader ? " (leader)" : "")),
      num(v.logEndOffset), num(v.lag, "quorum-lag-" + v.id), cell(v.lastCaughtUpMs > 0 ? new Date(v.lastCaughtUpMs).toLocaleTimeString() : "–")));
    quorum = h("div", {}, h("p", {}, `Leader ${c.quorum.leader}, epoch ${c.quorum.epoch}, high watermark ${fmt(c.quorum.highWatermark)}`),
      table(["Node", "Role", "Log end", "Lag", "Last caught up"], [...rows(c.quorum.voters, "voter"), ...rows(c.quorum.observers, "observer")], "quorum"));
  }
  return [h("h1", {}, "Cluster ", h("small", {}, c.clusterId)),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("b", { id: "n-brokers" }, c.brokers.length), "brokers"),
      h("div", { class: "card" }, h("b", { id: "controller" }, c.controller), "active controller"),
      h("div", { class: "card" }, h("b", { id: "n-partitions" }, c.partitions), `partitions in ${c.topics} topics`),
      h("div", { class: "card" }, h("b", { id: "n-urp", class: c.underReplicated.length ? "bad" : "ok" }, c.underReplicated.length), "under-replicated"),
      h("div", { class: "card" }, h("b", { id: "n-offline", class: c.offline.length ? "bad" : "ok" }, c.offline.length), "offline")),
    h("h2", {}, "Nodes"), table(["ID", "Address", "Rack", "Role"], brokers, "brokers"),
    h("h2", {}, "Metadata quorum"), quorum,
    h("h2", {}, "Under-replicated partitions"), bad(c.underReplicated, "urp"),
    h("h2", {}, "Offline partitions"), bad(c.offline, "offline")];
}

async function pageTopics() {
  const v = await api("topics");
  const rows = v.topics.map((t) => h("tr", { "data-topic": t.name },
    cell(link("#/topic/" + q(t.name), t.name), "name"), num(t.partitions, "partitions"), num(t.replicationFactor, "rf"),
    h("td", { class: "n", "data-k": "size" }, bytes(t.size)), cell(rate(t.inRate), "in"), cell(rate(t.outRate), "out"),
    cell(t.internal ? "internal" : "")));
  return [h("h1", {}, "Topics"), v.sizeError ? h("p", { class: "err" }, "DescribeLogDirs: " + v.sizeError) : null,
    table(["Name", "Partitions", "Replication", "Size on disk (all replicas)", "Produce", "Consume", ""], rows, "topics")];
}

async function pageTopic(name) {
  const t = await api("topic?name=" + q(name));
  const rows = t.partitions.map((p) => {
    const at = h("input", { id: "delete-at-" + p.partition, value: p.end, size: 8, "aria-label": "delete below offset" });
    const del = h("button", { onclick: () => {
      confirmThen(`Delete every record of ${name}/${p.partition} below offset ${at.value}? This cannot be undone.`, async () => {
        const r = await api("delete-records", { topic: name, partition: p.partition, before: Number(at.value) });
        return `Deleted: log start is now ${r.logStart}.`;
      });
    }, id: "delete-" + p.partition }, "Delete below…");
    return h("tr", {}, num(p.partition), num(p.leader, "leader-" + p.partition), cell(p.replicas.join(", ")),
      cell(p.isr.join(", "), "isr-" + p.partition), num(p.start, "start-" + p.partition), num(p.end, "end-" + p.partition),
      num(p.lso, "lso-" + p.partition), h("td", { class: "n", "data-k": "size-" + p.partition }, bytes(p.size)),
      cell(link(`#/messages?topic=${q(name)}&partition=${p.partition}`, "browse")), h("td", {}, at, " ", del));
  });
  const cfgs = (t.configs || []).map((c) => h("tr", {}, cell(c.name), cell(c.sensitive ? "(sensitive)" : c.value, "cfg-" + c.name), cell(c.source)));
  return [h("h1", {}, "Topic ", h("span", { id: "topic-name" }, t.name)), writesNote(),
    h("h2", {}, "Records per second"), chart([{ name: "produce", color: "#1f77b4", points: t.inRate }, { name: "consume", color: "#d62728", points: t.outRate }], "rates"),
    h("h2", {}, "Partitions"), table(["#", "Leader", "Replicas", "ISR", "Log start", "Log end", "LSO", "Size", "", ""], rows, "partitions"),
    h("h2", {}, "Configs"), t.configError ? h("p", { class: "err" }, t.configError) : table(["Name", "Value", "Source"], cfgs, "configs")];
}

// decode renders bytes (base64 from the API) as text, pretty JSON or hex.
function decode(b64, mode) {
  if (b64 === null || b64 === undefined) return h("i", {}, "null");
  const bin = atob(b64), u = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (mode === "hex") return h("pre", {}, Array.from(u, (x) => x.toString(16).padStart(2, "0")).join(" "));
  const text = new TextDecoder().decode(u);
  if (mode === "json") {
    try { return h("pre", {}, JSON.stringify(JSON.parse(text), null, 2)); } catch (e) { /* not JSON: shown as text */ }
  }
  return h("pre", {}, text);
}

async function pageMessages(params) {
  const topics = (await api("topics")).topics;
  const p = Object.fromEntries(params);
  const field = (label, el) => h("label", {}, label, el);
  const topicSel = h("select", { name: "topic", id: "f-topic" }, topics.map((t) => h("option", { value: t.name, selected: t.name === p.topic }, t.name)));
  const form = h("form", { class: "bar", id: "browse" },
    field("Topic", topicSel),
    field("Partition", h("input", { name: "partition", id: "f-partition", type: "number", min: 0, value: p.partition || 0, size: 4 })),
    field("From", h("select", { name: "from", id: "f-from" }, [["edge", "log end (newest) / start (oldest)"], ["offset", "offset"], ["timestamp", "timestamp"]].map(([x, label]) => h("option", { value: x, selected: x === (p.from || "edge") }, label)))),
    field("Offset / time (ms or ISO)", h("input", { name: "at", id: "f-at", value: p.at || "" })),
    field("Order", h("select", { name: "order", id: "f-order" }, ["newest", "oldest"].map((x) => h("option", { selected: x === (p.order || "newest") }, x)))),
    field("Limit", h("input", { name: "limit", id: "f-limit", type: "number", min: 1, max: 100, value: p.limit || 20, size: 4 })),
    field("Key contains", h("input", { name: "key", id: "f-key", value: p.key || "" })),
    field("Header (name or name=value)", h("input", { name: "header", id: "f-header", value: p.header || "" })),
    field("Show as", h("select", { name: "as", id: "f-as" }, ["text", "json", "hex"].map((x) => h("option", { selected: x === (p.as || "text") }, x)))),
    h("button", { type: "submit", id: "f-go" }, "Browse"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new URLSearchParams(new FormData(form));
    location.hash = "#/messages?" + f.toString();
  });
  const out = [h("h1", {}, "Messages"), form];
  if (!p.topic) return [...out, h("p", {}, "Pick a topic and partition.")];

  const qs = new URLSearchParams({ topic: p.topic, partition: p.partition || 0, order: p.order || "newest", limit: p.limit || 20 });
  if (p.key) qs.set("key", p.key);
  if (p.header) qs.set("header", p.header);
  if (p.from === "offset" && p.at !== "") qs.set("offset", p.at);
  if (p.from === "timestamp" && p.at) qs.set("timestamp", /^\d+$/.test(p.at) ? p.at : String(Date.parse(p.at)));
  const m = await api("messages?" + qs);
  const isDLQ = m.messages.some((r) => r.headers.some((x) => x.key === "__dlq.errors.topic"));
  const mode = p.as || "text";
  const rows = m.messages.map((r) => h("tr", { "data-offset": r.offset },
    isDLQ ? h("td", {}, h("input", { type: "checkbox", class: "pick", value: r.offset })) : null,
    num(r.offset, "offset"), cell(new Date(r.timestamp).toISOString()),
    h("td", { "data-k": "key" }, decode(r.key, mode)), h("td", { "data-k": "value" }, decode(r.value, mode),
      r.valueSize > 65536 ? h("i", {}, ` (first 64 KiB of ${fmt(r.valueSize)} bytes)`) : null),
    h("td", {}, r.headers.map((x) => h("div", {}, h("b", {}, x.key), "=", new TextDecoder().decode(Uint8Array.from(atob(x.value || ""), (c) => c.charCodeAt(0))))))));
  const page = (next) => {
    const np = new URLSearchParams(params);
    np.set("from", "offset");
    np.set("at", next);
    return "#/messages?" + np;
  };
  out.push(h("p", { id: "range" }, `Partition log ${fmt(m.start)} – ${fmt(m.end)}; read offsets ${fmt(m.scannedFrom)} – ${fmt(m.scannedTo - 1)}; ${m.messages.length} shown. `,
    m.next >= 0 ? link(page(m.next), (p.order || "newest") === "newest" ? "older →" : "newer →") : "no more this way"));
  if (isDLQ) {
    out.push(writesNote(), h("p", {}, "These are dead letters: select records and redrive them to the partition they came from (once each). ",
      h("button", { id: "redrive", onclick: () => {
        const offsets = [...main.querySelectorAll("input.pick:checked")].map((x) => Number(x.value));
        if (!offsets.length) return;
        confirmThen(`Produce ${offsets.length} dead letter(s) from ${m.topic}/${m.partition} again to their source partition?`, async () => {
          const r = await api("redrive", { topic: m.topic, partition: m.partition, offsets });
          return r.results.map((x) => `${x.offset}: ${x.status}${x.to ? " → " + x.to : ""}`).join("; ");
        });
      } }, "Redrive selected…")));
  }
  out.push(table([isDLQ ? "" : null, "Offset", "Timestamp", "Key", "Value", "Headers"].filter((x) => x !== null), rows, "messages"));
  return out;
}

async function pageGroups() {
  const v = await api("groups");
  const rows = v.groups.map((g) => h("tr", { "data-group": g.name },
    cell(link((g.type === "share" ? "#/share/" : "#/group/") + q(g.name), g.name), "name"), cell(g.type, "type"), cell(g.state, "state"),
    num(g.coordinator), g.type === "share" ? cell("see group") : num(g.lag, "lag")));
  return [h("h1", {}, "Groups"), table(["Group", "Type", "State", "Coordinator", "Lag"], rows, "groups")];
}

const assignment = (a) => Object.entries(a || {}).map(([t, ps]) => `${t}: ${ps.join(",")}`).join("; ") || "–";

async function pageGroup(name) {
  const g = await api("group?name=" + q(name));
  const members = g.members.map((m) => h("tr", {}, cell(m.id), cell(m.clientId), cell(m.clientHost), cell(assignment(m.assignment), "assign-" + m.id)));
  const offsets = g.offsets.map((o) => {
    const k = `${o.topic}-${o.partition}`;
    const to = h("input", { id: "reset-to-" + k, value: "earliest", size: 8, "aria-label": "reset to" });
    const reset = h("button", { id: "reset-" + k, onclick: () => {
      confirmThen(`Commit offset ${to.value} for group ${name} on ${o.topic}/${o.partition}? The group must have no active members.`, async () => {
        const r = await api("reset-offsets", { group: name, topic: o.topic, partition: o.partition, to: to.value });
        return `Committed offset ${r.offset}.`;
      });
    } }, "Reset…");
    return h("tr", {}, cell(o.topic), num(o.partition), num(o.committed, "committed-" + k), num(o.end, "end-" + k),
      num(o.lag, "lag-" + k), cell(o.member || "–"), cell(o.error || ""), h("td", {}, to, " ", reset));
  });
  return [h("h1", {}, "Consumer group ", h("span", { id: "group-name" }, g.name)), writesNote(),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("b", { id: "group-state" }, g.state), "state"),
      h("div", { class: "card" }, h("b", { id: "group-protocol" }, `${g.type} / ${g.protocol || "–"}`), "protocol / assignor"),
      h("div", { class: "card" }, h("b", { id: "group-members" }, g.members.length), "members"),
      h("div", { class: "card" }, h("b", { id: "group-lag" }, fmt(g.totalLag)), "total lag")),
    h("h2", {}, "Lag over time"), chart([{ name: "lag", color: "#9467bd", points: g.lagChart }], "lag"),
    h("h2", {}, "Members"), members.length ? table(["Member", "Client", "Host", "Assignment"], members, "members") : h("p", {}, "no members"),
    h("h2", {}, "Committed offsets"), table(["Topic", "Partition", "Committed", "Log end", "Lag", "Member", "Error", ""], offsets, "offsets")];
}

const shareStates = ["available", "acquired", "acknowledged", "archived"];

// inSeconds says how far away a unix-ms time is: "in 23 s", "3 s ago".
function inSeconds(ms) {
  if (!ms) return "–";
  const s = Math.round((ms - Date.now()) / 1000);
  return s >= 0 ? `in ${s} s` : `${-s} s ago`;
}
const span = (u) => u.first === u.last ? String(u.first) : `${u.first}–${u.last}`;

async function pageShare(name) {
  const g = await api("sharegroup?name=" + q(name));
  // What is in flight, from the partitions this node leads.
  const runs = g.partitions.flatMap((p) => (p.unsettled || []).map((u) => ({ ...u, topic: p.topic, partition: p.partition, limit: p.deliveryLimit })));
  const known = g.partitions.some((p) => p.unsettled);
  const size = (u) => u.last - u.first + 1;
  const deadLettering = (u) => u.state === "dead-lettering";
  const nearLimit = (u) => !deadLettering(u) && u.limit > 0 && u.deliveryCount >= u.limit - 1;
  const acquired = runs.filter((u) => u.state === "acquired");
  const nextExpiry = acquired.reduce((a, u) => (a && a < u.deadline ? a : u.deadline), 0);
  const holds = (member) => acquired.filter((u) => u.member === member)
    .map((u) => `${u.topic}/${u.partition} ${span(u)} (${size(u)} records, lock expires ${inSeconds(u.deadline)})`).join("; ") || "nothing";

  const members = g.members.map((m) => h("tr", {}, cell(m.id), cell(m.clientId), cell(m.clientHost), cell(assignment(m.assignment), "assign-" + m.id), cell(holds(m.id), "holds-" + m.id)));
  const parts = g.partitions.map((p) => {
    const k = `${p.topic}-${p.partition}`;
    return h("tr", {}, cell(link("#/topic/" + q(p.topic), p.topic)), num(p.partition), num(p.startOffset, "spso-" + k), num(p.end, "end-" + k),
      num(p.lag, "slag-" + k), num(p.end >= 0 && p.startOffset >= 0 ? p.end - p.startOffset : -1, "window-" + k),
      ...shareStates.map((st) => p.states ? num(p.states[st] || 0, st + "-" + k) : cell("on its leader", st + "-" + k)),
      cell(p.member || "unassigned"), cell(p.error || ""));
  });
  const unsettled = runs.map((u) => h("tr", { "data-range": `${u.topic}-${u.partition}-${u.first}-${u.last}` },
    cell(`${u.topic}/${u.partition}`), cell(span(u), "offsets"), num(size(u), "records"), cell(u.state, "state"),
    h("td", { "data-k": "deliveries", class: nearLimit(u) ? "bad" : null }, `${u.deliveryCount} / ${u.limit}`,
      nearLimit(u) ? (u.deliveryCount >= u.limit ? " last attempt: a failure archives it" : " one delivery left") : null),
    cell(u.member || "–", "member"), cell(deadLettering(u) ? "waiting for its dead letter" : u.state === "acquired" ? "lock expires " + inSeconds(u.deadline) :
      (u.deadline ? "redelivered " + inSeconds(u.deadline) : "ready to redeliver"), "expiry")));

  const limit = g.configs["share.delivery.count.limit"];
  const dead = g.recentDeadLetters.map((d) => h("tr", { "data-offset": d.offset }, num(d.partition), num(d.offset), cell(new Date(d.timestamp).toISOString()),
    h("td", { "data-k": "key" }, decode(d.key, "text")), cell(`${d.sourceTopic}/${d.sourcePartition} @ ${d.sourceOffset}`, "source"),
    cell(d.deliveryCount, "deliveries"), cell(d.reason, "reason")));
  const dlq = g.deadLetterTopic ? [h("p", {}, "Dead-letter topic ",
    link(`#/messages?topic=${q(g.deadLetterTopic)}&partition=0&order=newest`, g.deadLetterTopic), " holds ",
    h("b", { id: "dead-letters" }, fmt(g.deadLetters)), " records; browse it to redrive them. This group's newest:"),
    g.deadLetterError ? h("p", { class: "err" }, g.deadLetterError) : null,
    dead.length ? table(["Partition", "Offset", "Dead-lettered", "Key", "From", "Deliveries", "Reason"], dead, "dead-letter-table") : h("p", {}, "none")]
    : [h("p", {}, "No dead-letter topic: records reaching the delivery limit are archived and dropped (set errors.deadletterqueue.topic.name on the group to keep them).")];
  return [h("h1", {}, "Share group ", h("span", { id: "share-name" }, g.name)),
    g.error ? h("p", { class: "err" }, g.error) : null,
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("b", { id: "share-state" }, g.state), "state"),
      h("div", { class: "card" }, h("b", { id: "share-members" }, g.members.length), "members"),
      h("div", { class: "card" }, h("b", { id: "acquired" }, known ? fmt(acquired.reduce((a, u) => a + size(u), 0)) : "–"), "records held by members"),
      h("div", { class: "card" }, h("b", { id: "near-limit", class: runs.some(nearLimit) ? "bad" : "ok" }, known ? fmt(runs.filter(nearLimit).reduce((a, u) => a + size(u), 0)) : "–"), `near the delivery limit (${limit || "–"})`),
      h("div", { class: "card" }, h("b", { id: "next-expiry" }, nextExpiry ? inSeconds(nextExpiry) : "–"), `next lock expiry (locks last ${g.configs["share.record.lock.duration.ms"] || "–"} ms)`),
      h("div", { class: "card" }, h("b", { id: "dead-lettered" }, fmt(Object.values(g.deadLettered).reduce((a, b) => a + b, 0))), "dead-lettered by this node"),
      h("div", { class: "card" }, h("b", { id: "expired-locks" }, fmt(g.expiredLocks)), "lock expiries on this node (all groups)")),
    h("h2", {}, "Partitions"),
    table(["Topic", "Partition", "Start offset", "Log end", "Lag (not yet done)", "Window (end − start)", "Available", "Acquired", "Acknowledged", "Archived", "Member", "Error"], parts, "share-partitions"),
    h("h2", {}, "Records in flight"),
    known ? (unsettled.length ? table(["Partition", "Offsets", "Records", "State", "Deliveries / limit", "Held by", "Lock"], unsettled, "unsettled")
      : h("p", { id: "unsettled" }, "Nothing delivered and unsettled.")) : null,
    h("p", { class: "note", id: "share-limits" },
      "Members, assignments, start offsets and lag come from Kafka's share-group APIs (ShareGroupDescribe, DescribeShareGroupOffsets). ",
      "The records in flight (who holds which until when, and how often each was delivered) and the counts by state come from this node's share-partition state, for the partitions it leads: open the leader's console for the others. ",
      "A record whose delivery count reaches the limit is archived on its next failed attempt (release, reject or lock expiry), and copied to the dead-letter topic with the reason."),
    h("h2", {}, "Members"), members.length ? table(["Member", "Client", "Host", "Assignment", "Holds"], members, "share-member-table") : h("p", {}, "no members"),
    h("h2", {}, "Dead letters"), ...dlq];
}

// ---- router ----

const routes = [
  [/^#\/cluster$/, () => pageCluster(), "cluster"],
  [/^#\/topics$/, () => pageTopics(), "topics"],
  [/^#\/topic\/(.+)$/, (m) => pageTopic(decodeURIComponent(m[1])), "topic"],
  [/^#\/messages(?:\?(.*))?$/, (m) => pageMessages(new URLSearchParams(m[1] || "")), "messages"],
  [/^#\/groups$/, () => pageGroups(), "groups"],
  [/^#\/group\/(.+)$/, (m) => pageGroup(decodeURIComponent(m[1])), "group"],
  [/^#\/share\/(.+)$/, (m) => pageShare(decodeURIComponent(m[1])), "share"],
];

// shown marks the page rendered: data-ready for tests, and the
// console-ready performance mark (the first time) for the load figures.
function shown() {
  main.dataset.ready = "1";
  if (!performance.getEntriesByName("console-ready").length) performance.mark("console-ready");
}

async function render() {
  clearTimeout(timer);
  const hash = location.hash || "#/cluster";
  for (const a of document.querySelectorAll("header nav a")) a.className = hash.startsWith(a.getAttribute("href").replace(/s$/, "")) ? "on" : "";
  const route = routes.find(([re]) => re.test(hash)) || routes[0];
  main.removeAttribute("data-ready");
  const needLogin = () => {
    main.dataset.page = "login";
    main.replaceChildren(...pageLogin());
    shown();
    showUser();
  };
  if (settings.login && !settings.user) return needLogin();
  main.dataset.page = route[2];
  try {
    const content = await route[1](hash.match(route[0]));
    main.replaceChildren(...content.filter(Boolean));
    statusEl.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof LoginNeeded) return needLogin();
    main.replaceChildren(h("p", { class: "err", id: "error" }, e.message));
  }
  shown();
  // Lists and charts refresh; pages with forms wait for the user.
  if (route[2] !== "messages") {
    timer = setTimeout(refresh, 5000);
  }
}

// refresh re-renders unless the user is typing or confirming an action.
function refresh() {
  const busy = document.getElementById("confirm") || (document.activeElement && document.activeElement.tagName === "INPUT");
  if (busy) timer = setTimeout(refresh, 5000);
  else render();
}

window.addEventListener("hashchange", render);
render();
