// llmproxy dashboard. Plain JavaScript, no build step, nothing fetched from anywhere but this daemon.
// Data: GET /api/kg (profiles), GET /api/events (live feed, read with fetch so the key goes in a header),
// GET /api/stats (the last hour at load; its "fleet" block every 10 s), GET /api/requests/{id} (one record with bodies),
// GET /api/keys/usage (the Keys panel, every 10 s), GET /api/providers, POST /api/route (playground).
// All text goes into the page as text, never as HTML.
"use strict";

const KEY_STORE = "llmproxy.key";
const MAX_ROWS = 5000;          // records kept in memory (the charts' hour and the feed)
const FEED_ROWS = 300;          // rows drawn in the table
const COLUMN_ROWS = 5;          // last requests per profile column
const HOUR = 3600 * 1000;
const MAIN_PROFILES = ["fast", "intelligent", "balanced", "cheap"];
const UNROUTED = "not routed";  // a request refused before routing (e.g. a 400): the one label on every surface
const PALETTE = ["#5aa9ff", "#ff8a5b", "#3fbf7f", "#b48cff", "#e0c234", "#4fd1c5", "#f06292", "#a1887f"];

const S = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  kg: null, profiles: [], rows: new Map(), order: [], totals: {}, since: null,
  bodiesLogged: false, sorted: true, feedAbort: null, booted: false, lastEventTime: null,
  filters: {profile: "", scenario: "", provider: "", status: ""},
  seen: {scenario: new Set(), provider: new Set()}, kgProfile: null, detailId: null,
};

// ------------------------------------------------------------------------------------------ helpers

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "vars") for (const [n, val] of Object.entries(v)) el.style.setProperty(n, val);
    else if (k === "data") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

class AuthError extends Error {}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (S.key) headers["x-api-key"] = S.key;
  const r = await fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
  if (r.status === 401) {
    askKey(S.key ? "That key was not accepted." : "");
    throw new AuthError("the proxy API key is needed");
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const msg = body && body.error && body.error.message || `${r.status} ${r.statusText}`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

const num = n => n == null ? "–" : Number(n).toLocaleString("en-US");
function fmtMs(ms) {
  if (ms == null) return "–";
  return ms < 1000 ? Math.round(ms) + "ms" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + "s";
}
function fmtCost(c, sim) {
  if (sim) return "$0 sim";
  if (c == null) return "?";
  if (c === 0) return "$0";
  return c < 0.01 ? "$" + c.toFixed(4) : "$" + c.toFixed(3);
}
function fmtTok(n) {
  if (n == null) return "–";
  return n >= 100000 ? (n / 1000).toFixed(0) + "k" : n >= 10000 ? (n / 1000).toFixed(1) + "k" : String(n);
}
function hms(t) {
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(x => String(x).padStart(2, "0")).join(":");
}
function profileColor(name) {
  if (MAIN_PROFILES.includes(name)) return `var(--p-${name})`;
  let hsh = 0;
  for (const ch of name || "") hsh = (hsh * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hsh % PALETTE.length];
}
function pct(values, q) {
  if (!values.length) return null;
  const s = values.slice().sort((a, b) => a - b);
  return s[Math.max(0, Math.min(s.length, Math.ceil(q / 100 * s.length)) - 1)];
}
function usageOf(rec) {
  const u = rec.usage || {};
  const cacheR = u.cache_read_input_tokens || 0, cacheW = u.cache_creation_input_tokens || 0;
  return {inp: u.input_tokens || 0, out: u.output_tokens || 0, cacheR, cacheW, any: !!rec.usage};
}
function isError(rec) { return (rec.status || 0) >= 400 || !!rec.stream_error; }
// latency percentiles are over served requests: a request refused in 0 ms would pull them to 0
function isServed(rec) { return rec.status != null && !isError(rec); }
function decisionOf(rec) { return rec.decision || {}; }
function scenarioLabel(rec) {
  const d = decisionOf(rec);
  if (!d.scenario) return rec.endpoint === "count_tokens" ? "count_tokens" : UNROUTED;
  return d.concept ? `${d.scenario}:${d.concept}` : d.scenario;
}
function targetOf(rec) { return rec.target || decisionOf(rec).target || ""; }
function providerOf(rec) { return targetOf(rec).split("/")[0]; }
function isFallback(rec) { const d = decisionOf(rec); return !!(rec.target && d.target && rec.target !== d.target); }
function clientLabel(rec) {
  const c = rec.client || {};
  if (c.agent_id) return "agent " + String(c.agent_id).slice(0, 8);
  if (c.session_id) return "session " + String(c.session_id).slice(0, 8);
  return (c.user_agent || "").split(" ")[0].slice(0, 24);
}

// ------------------------------------------------------------------------------------------- auth

function askKey(message) {
  S.key = "";
  sessionStorage.removeItem(KEY_STORE);
  setConn("auth", "key needed");
  $("#auth").hidden = false;
  const err = $("#auth-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#auth-key").focus();
}

$("#auth-form").addEventListener("submit", ev => {
  ev.preventDefault();
  S.key = $("#auth-key").value.trim();
  $("#auth-key").value = "";
  sessionStorage.setItem(KEY_STORE, S.key);
  $("#auth").hidden = true;
  boot();
});

function setConn(cls, text) {
  const el = $("#conn");
  el.className = "conn " + cls;
  el.textContent = text;
}

// ------------------------------------------------------------------------------------------- data

function upsert(rec, phase) {
  const id = rec.request_id;
  if (!id) return;
  let row = S.rows.get(id);
  if (!row) {
    row = {id, rec, phase, partial: !!rec.partial, t: Date.parse(rec.time) || Date.now(), counted: false, fresh: true};
    S.rows.set(id, row);
    S.order.push(row);
    S.sorted = false;
  } else {
    if (phase === "start" && row.phase === "end") return;   // the end is already here
    if (rec.partial && !row.partial && row.phase === "end") return;  // keep the full record
    row.rec = rec;
    row.phase = phase;
    row.partial = !!rec.partial;
  }
  const d = decisionOf(rec);
  if (d.scenario && !S.seen.scenario.has(d.scenario)) { S.seen.scenario.add(d.scenario); addOption("#f-scenario", d.scenario); }
  const prov = providerOf(rec);
  if (prov && !S.seen.provider.has(prov)) { S.seen.provider.add(prov); addOption("#f-provider", prov); }
  if (phase === "end" && !row.counted) { count(row); row.counted = true; }
  if (S.order.length > MAX_ROWS) trim();
  schedule();
  if (S.detailId === id && phase === "end") showDetail(id, false);
}

function trim() {
  if (!S.sorted) sortRows();
  const drop = S.order.splice(0, S.order.length - MAX_ROWS);
  for (const row of drop) S.rows.delete(row.id);
}

function sortRows() { S.order.sort((a, b) => a.t - b.t); S.sorted = true; }

function count(row) {
  const rec = row.rec;
  if (rec.endpoint === "count_tokens") return;
  const name = rec.profile || "?";
  const t = S.totals[name] || (S.totals[name] = {requests: 0, errors: 0, inp: 0, out: 0, cost: 0, unknown: 0, sim: 0, durs: []});
  const u = usageOf(rec);
  t.requests++;
  if (isError(rec)) t.errors++;
  t.inp += u.inp + u.cacheR + u.cacheW;
  t.out += u.out;
  if (rec.simulated) t.sim++;
  if (rec.cost_usd == null && rec.target && !rec.simulated) t.unknown++;
  else t.cost += rec.cost_usd || 0;
  if (rec.duration_ms != null && isServed(rec)) { t.durs.push(rec.duration_ms); if (t.durs.length > 500) t.durs.shift(); }
  if (!S.since || row.t < S.since) S.since = row.t;
}

function addOption(sel, value) {
  const select = $(sel);
  const opts = Array.from(select.options).slice(1).map(o => o.value).concat(value).sort();
  select.replaceChildren(h("option", {value: "", text: "all"}), ...opts.map(v => h("option", {value: v, text: v})));
  select.value = S.filters[sel.slice(3)] || "";
}

// ------------------------------------------------------------------------------------------ render

let renderTimer = null, chartsDirty = true, lastCharts = 0;
function schedule() {
  chartsDirty = true;
  if (renderTimer) return;
  renderTimer = setTimeout(() => { renderTimer = null; render(); }, 120);
}

function render() {
  if (!S.sorted) sortRows();
  renderFeed();
  renderColumns();
  const now = Date.now();
  if (chartsDirty && now - lastCharts > 400) { renderCharts(); chartsDirty = false; lastCharts = now; }
  else if (chartsDirty) schedule();
}

function passes(row) {
  const f = S.filters, rec = row.rec;
  if (f.profile && rec.profile !== f.profile) return false;
  if (f.scenario && decisionOf(rec).scenario !== f.scenario) return false;
  if (f.provider && providerOf(rec) !== f.provider) return false;
  if (f.status === "flight") return row.phase === "start";
  if (f.status === "ok" && (row.phase !== "end" || isError(rec))) return false;
  if (f.status === "error" && (row.phase !== "end" || !isError(rec))) return false;
  return true;
}

function statusCell(row) {
  const rec = row.rec;
  if (row.phase === "start") return h("td", {class: "st-flight", text: "…"});
  const bad = isError(rec);
  let text = rec.status == null ? "–" : String(rec.status);
  if (rec.stream_error) text += " ✗";
  if (rec.client_disconnected) text += " gone";
  return h("td", {class: bad ? "st-bad" : "st-ok", text, title: rec.error || rec.stream_error || null});
}

function feedRow(row) {
  const rec = row.rec, u = usageOf(rec), done = row.phase === "end";
  const tries = Array.isArray(rec.attempts) ? rec.attempts : null;
  const target = targetOf(rec);
  const endpointBadge = rec.endpoint && rec.endpoint !== "messages"
    ? h("span", {class: "badge", text: rec.endpoint === "chat_completions" ? "chat" : rec.endpoint}) : null;
  const tr = h("tr", {class: (row.phase === "start" ? "flight" : "") + (row.fresh ? " fresh" : ""),
                      data: {id: row.id}, onclick: () => openDetail(row.id)},
    h("td", {text: hms(row.t), title: rec.time}),
    h("td", {}, h("span", {class: "pdot", vars: {"--pc": profileColor(rec.profile)}}), rec.profile || "–"),
    h("td", {}, scenarioLabel(rec), endpointBadge),
    h("td", {title: target}, target || (row.phase === "start" ? "…" : ""),
      rec.simulated ? h("span", {class: "badge sim", text: "sim"}) : null,
      isFallback(rec) ? h("span", {class: "badge fb", text: "fallback", title: "first choice: " + decisionOf(rec).target}) : null),
    statusCell(row),
    h("td", {class: "num", text: done ? fmtMs(rec.ttft_ms) : ""}),
    h("td", {class: "num", text: done ? fmtMs(rec.duration_ms) : ""}),
    h("td", {class: "num", text: done && u.any ? fmtTok(u.inp) : ""}),
    h("td", {class: "num", text: done && u.any ? fmtTok(u.out) : ""}),
    h("td", {class: "num", text: done && (u.cacheR || u.cacheW) ? `${fmtTok(u.cacheR)}/${fmtTok(u.cacheW)}` : "",
             title: "cache read / cache write"}),
    h("td", {class: "num", text: done && rec.endpoint !== "count_tokens" && rec.target ? fmtCost(rec.cost_usd, rec.simulated) : ""}),
    h("td", {text: tries == null ? "" : String(tries.length + (rec.target ? 1 : 0)),
             title: tries && tries.length ? tries.map(a => `${a.target}: ${a.status || ""} ${a.error || a.skipped || ""}`).join("\n") : null}),
    h("td", {text: clientLabel(rec), title: JSON.stringify(rec.client || {})}));
  row.fresh = false;
  return tr;
}

function renderFeed() {
  const rows = [];
  let matched = 0;
  for (let i = S.order.length - 1; i >= 0; i--) {
    const row = S.order[i];
    if (!passes(row)) continue;
    matched++;
    if (rows.length < FEED_ROWS) rows.push(feedRow(row));
  }
  $("#feed tbody").replaceChildren(...rows);
  $("#feed-empty").hidden = S.order.length > 0;
  $("#feed-count").textContent = S.order.length ? `${matched} of ${S.order.length}` + (matched > FEED_ROWS ? ` (newest ${FEED_ROWS} shown)` : "") : "";
}

function columnItem(row) {
  // one request in its profile's column: where it went and how it went; a failed one says its status and why
  const rec = row.rec, u = usageOf(rec), failed = row.phase === "end" && isError(rec);
  const model = targetOf(rec).split("/").slice(1).join("/");
  const what = decisionOf(rec).scenario ? `${scenarioLabel(rec)} → ${model || "…"}` : scenarioLabel(rec);
  const why = rec.error || rec.stream_error || "";
  const how = row.phase === "start" ? "in flight"
    : failed ? `${rec.status != null ? rec.status : "–"}${why ? " · " + why : ""}`
    : `${fmtMs(rec.duration_ms)} · ${fmtTok(u.inp + u.cacheR + u.cacheW)}→${fmtTok(u.out)} · ${fmtCost(rec.cost_usd, rec.simulated)}`;
  return h("li", {class: (row.phase === "start" ? "flight" : "") + (failed ? " err" : ""),
                  title: (targetOf(rec) ? `${scenarioLabel(rec)} → ${targetOf(rec)}` : scenarioLabel(rec)) + (why ? "\n" + why : ""),
                  onclick: () => openDetail(row.id)},
    h("span", {class: "muted", text: hms(row.t)}),
    h("span", {class: "what", text: what}),
    h("span", {class: "how", text: how}));
}

function renderColumns() {
  const wrap = $("#columns");
  const last = {};
  for (let i = S.order.length - 1; i >= 0; i--) {
    const row = S.order[i], p = row.rec.profile;
    if (!p || row.rec.endpoint === "count_tokens") continue;
    (last[p] || (last[p] = [])).length < COLUMN_ROWS && last[p].push(row);
  }
  const known = S.profiles.concat(Object.keys(last).filter(p => !S.profiles.includes(p)));
  const main = known.filter(p => MAIN_PROFILES.includes(p));
  // the four profiles side by side (the demo's grid); any other profile gets a column once it has traffic
  const names = main.length ? known.filter(p => main.includes(p) || last[p] || S.totals[p]) : known;
  const idle = known.filter(p => !names.includes(p));
  const idleNote = $("#columns-idle");
  idleNote.hidden = !idle.length;
  idleNote.textContent = idle.length ? `Also configured, no requests yet: ${idle.join(", ")}` : "";
  wrap.replaceChildren(...names.map(name => {
    const t = S.totals[name] || {requests: 0, errors: 0, inp: 0, out: 0, cost: 0, unknown: 0, sim: 0, durs: []};
    const info = S.kg && S.kg.profiles[name];
    const items = (last[name] || []).map(columnItem);
    const cell = (label, value, title) => h("div", {title}, h("b", {text: value}), h("span", {text: label}));
    return h("section", {class: "col", vars: {"--pc": profileColor(name)}, data: {profile: name}},
      h("h3", {}, h("span", {text: name}), h("span", {class: "muted", text: t.sim ? `${t.sim} simulated` : ""})),
      h("div", {class: "desc", text: info ? info.description : "", title: info ? info.description : ""}),
      h("div", {class: "totals"},
        cell("requests", num(t.requests)),
        cell("errors", num(t.errors)),
        cell("p50", fmtMs(pct(t.durs, 50)), "median duration"),
        cell("tok in", fmtTok(t.inp), "input tokens, cache included"),
        cell("tok out", fmtTok(t.out), "output tokens"),
        cell("cost", (t.unknown ? "≥" : "") + fmtCost(t.cost), t.unknown ? `${t.unknown} request(s) at an unknown price` : null)),
      items.length ? h("ol", {}, items) : h("div", {class: "none", text: "no requests yet"}));
  }));
}

const WINDOWS = {5: "5 min", 15: "15 min", 60: "1 hour"};
S.window = 60;

function renderWindowPicker() {
  $("#chart-window").replaceChildren(...Object.entries(WINDOWS).map(([min, label]) =>
    h("button", {type: "button", class: Number(min) === S.window ? "on" : "", text: label, data: {minutes: min},
                 onclick: () => { S.window = Number(min); renderWindowPicker(); chartsDirty = true; lastCharts = 0; schedule(); }})));
  const per = S.window * 60 / 60;
  $("#chart-bucket").textContent = `${S.window === 60 ? "last hour" : "last " + WINDOWS[S.window]}, per ${per >= 60 ? per / 60 + " min" : per + " s"}`;
}

function renderCharts() {
  const span = S.window * 60000, step = span / 60;  // 60 buckets whatever the window
  const now = Date.now(), x1 = Math.ceil(now / step) * step, x0 = x1 - span;
  const buckets = Array.from({length: 60}, () => ({d: [], f: [], inp: 0, out: 0, cost: 0}));
  const scen = {}, model = {}, sim = {};
  for (const row of S.order) {
    const rec = row.rec;
    if (row.phase !== "end" || row.t < x0 || rec.endpoint === "count_tokens") continue;
    const s = decisionOf(rec).scenario || UNROUTED;
    scen[s] = (scen[s] || 0) + 1;
    const m = targetOf(rec) || UNROUTED;
    model[m] = (model[m] || 0) + 1;
    if (rec.simulated) sim[m] = true;
    const b = buckets[Math.min(59, Math.floor((row.t - x0) / step))];
    if (rec.duration_ms != null && isServed(rec)) b.d.push(rec.duration_ms);
    if (rec.ttft_ms != null && isServed(rec)) b.f.push(rec.ttft_ms);
    const u = usageOf(rec);
    b.inp += u.inp + u.cacheR + u.cacheW;
    b.out += u.out;
    b.cost += rec.cost_usd || 0;
  }
  const emptyBars = {empty: `no requests in the ${S.window === 60 ? "last hour" : "last " + WINDOWS[S.window]}`};
  Charts.bars($("#chart-scenario"), Object.entries(scen).map(([label, value]) => ({label, value})), emptyBars);
  Charts.bars($("#chart-model"), Object.entries(model).map(([label, value]) => ({label, value, cls: sim[label] ? "sim" : "",
    title: label + (sim[label] ? " (simulated)" : "")})), emptyBars);
  const xs = buckets.map((_, i) => x0 + (i + 0.5) * step);
  const tick = {5: 60000, 15: 300000, 60: 600000}[S.window];
  const empty = `no requests in the ${S.window === 60 ? "last hour" : "last " + WINDOWS[S.window]}`;
  const ms = v => v >= 1000 ? (v / 1000).toFixed(1) + "s" : Math.round(v) + "ms";
  Charts.line($("#chart-latency"), {x: xs, x0, x1, tick, empty, fmt: ms, series: [
    {name: "p50", values: buckets.map(b => pct(b.d, 50))}, {name: "p95", values: buckets.map(b => pct(b.d, 95)), cls: "dashed"}]});
  Charts.line($("#chart-ttft"), {x: xs, x0, x1, tick, empty, fmt: ms, series: [
    {name: "p50", values: buckets.map(b => pct(b.f, 50))}, {name: "p95", values: buckets.map(b => pct(b.f, 95)), cls: "dashed"}]});
  const any = buckets.some(b => b.d.length);
  Charts.line($("#chart-tokens"), {x: xs, x0, x1, tick, empty, fmt: fmtTok, series: [
    {name: "in", values: buckets.map(b => any ? b.inp : null)}, {name: "out", values: buckets.map(b => any ? b.out : null)}]});
  let run = 0;
  Charts.line($("#chart-cost"), {x: xs, x0, x1, tick, empty, fmt: v => "$" + (v < 1 ? v.toFixed(3) : v.toFixed(2)), series: [
    {name: "cost", values: buckets.map(b => { run += b.cost; return any ? run : null; })}]});
}

setInterval(() => { chartsDirty = true; schedule(); }, 30000);  // the hour window slides
window.addEventListener("resize", () => { chartsDirty = true; schedule(); });

// --------------------------------------------------------------------------------------- the feed

async function follow() {
  if (S.feedAbort) S.feedAbort.abort();
  const ctrl = S.feedAbort = new AbortController();
  setConn("off", "connecting…");
  try {
    const headers = S.key ? {"x-api-key": S.key} : {};
    const r = await fetch("/api/events", {headers, signal: ctrl.signal, cache: "no-store"});
    if (r.status === 401) { askKey(S.key ? "That key was not accepted." : ""); return; }
    if (!r.ok || !r.body) throw new Error(`feed: ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        handleMessage(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
  }
  if (ctrl.signal.aborted) return;
  setConn("off", "reconnecting…");
  setTimeout(() => { if (S.feedAbort === ctrl) follow(); }, 2000);
}

function handleMessage(block) {
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (!data) return;
  let msg;
  try { msg = JSON.parse(data); } catch { return; }
  if (event === "hello") {
    S.bodiesLogged = !!msg.bodies;
    setConn("live", "live");
    loadHistory();
  } else if (event === "start" || event === "end") {
    S.lastEventTime = msg.time || S.lastEventTime;
    upsert(msg, event);
  } else if (event === "dropped") {
    setConn("off", "fell behind, reconnecting…");
  }
}

async function loadHistory() {
  // the last hour from the log at first; after a reconnect, what may have been missed meanwhile
  const since = S.lastEventTime ? new Date(Date.parse(S.lastEventTime) - 60000).toISOString() : "1h";
  try {
    const data = await api("/api/stats?since=" + encodeURIComponent(since));
    for (const rec of data.records) upsert(rec, "end");
  } catch (e) {
    if (!(e instanceof AuthError)) console.warn("stats:", e.message);
  }
}

// ------------------------------------------------------------------------------------------- fleet
// The usage ledger's totals for the last hour: every instance sharing the store (the columns count the
// requests this daemon logged). The daemon reads the store at most every few seconds for all dashboards.

async function loadFleet() {
  let data;
  try { data = await api("/api/stats?since=1h&limit=0"); } catch (e) { return; }
  renderFleet(data.fleet, data.fleet_note);
}

function renderFleet(f, note) {
  const el = $("#fleet-line");
  el.hidden = !(f || note);
  if (!f) { el.replaceChildren(h("span", {class: "muted", text: note || ""})); return; }
  const cell = (label, value, title) => h("span", {class: "cell", title}, h("b", {text: value}), h("span", {class: "muted", text: label}));
  const inst = `${num(f.instances)} live instance${f.instances === 1 ? "" : "s"}`;
  el.replaceChildren(
    h("strong", {text: "Fleet", title: f.scope}),
    h("span", {class: "muted", text: `last hour · ${f.store} store · ${inst}`}),
    cell("requests", num(f.requests)),
    cell("errors", num(f.errors)),
    cell("tok in", fmtTok(f.tokens_in), "input tokens, cache included"),
    cell("tok out", fmtTok(f.tokens_out), "output tokens"),
    cell("cost", (f.cost_unknown ? "≥" : "") + fmtCost(f.cost), f.cost_unknown ? `${f.cost_unknown} request(s) at an unknown price` : null));
}

// ------------------------------------------------------------------------------------------- keys
// The store's live client keys and each one's spend this budget period (GET /api/keys/usage, admins only;
// the daemon reads the store at most every few seconds for all dashboards). No keys, or not an admin: hidden;
// the store unreachable: the last rows stay, marked as not refreshed.

async function loadKeys() {
  let data;
  try { data = await api("/api/keys/usage"); } catch (e) {
    if (e.status === 403 || !$("#keys tbody").children.length) $("#keys-panel").hidden = true;
    else $("#keys-asof").textContent = "not refreshed: " + e.message;  // the last rows stay, said to be old
    return;
  }
  renderKeys(data && Array.isArray(data.data) ? data.data : [], data && data.as_of);
}

const usd = x => "$" + (x > 0 && x < 0.01 ? x.toFixed(4) : x.toFixed(2));

function keyBudget(k) {
  if (k.budget_usd == null) return h("span", {class: "muted", text: "no budget"});
  const spent = Number(k.spent_usd || 0), budget = Number(k.budget_usd);
  const pct = budget > 0 ? Math.min(100, 100 * spent / budget) : 100;
  const fill = h("span", {class: "fill" + (pct >= 100 ? " over" : pct >= 80 ? " near" : "")});
  fill.style.width = pct + "%";
  return h("div", {class: "keybar", title: `${pct.toFixed(1)}% of the ${k.budget_period} budget`},
    h("span", {class: "track"}, fill),
    h("span", {class: "value", text: `${usd(spent)} / ${usd(budget)} a ${k.budget_period}`}));
}

function keyRow(k) {
  const resets = k.resets_at ? new Date(k.resets_at).toISOString().slice(0, 10) : "–";
  return h("tr", {data: {key: String(k.name)}},
    h("td", {text: String(k.name), title: `id ${k.id}`}),
    h("td", {class: k.state === "active" ? "st-ok" : "st-bad", text: String(k.state),
             title: k.expires_at ? `expires ${k.expires_at}` : null}),
    h("td", {text: k.profiles && k.profiles.length ? k.profiles.join(", ") : "all"}),
    h("td", {}, keyBudget(k)),
    h("td", {class: "num", text: k.remaining_usd == null ? "–" : usd(Number(k.remaining_usd))}),
    h("td", {text: resets, title: k.resets_at || null}),
    h("td", {class: "num", text: num(k.rpm)}),
    h("td", {class: "num", text: num(k.tpm)}));
}

function renderKeys(keys, asOf) {
  $("#keys-panel").hidden = !keys.length;
  $("#keys tbody").replaceChildren(...keys.map(keyRow));
  $("#keys-asof").textContent = asOf ? "as of " + hms(asOf) : "";
}

setInterval(() => { if (!document.hidden && S.booted) { loadFleet(); loadKeys(); } }, 10000);

// ------------------------------------------------------------------------------------------ detail

function openDetail(id) {
  S.detailId = id;
  showDetail(id, true);
}

function kv(pairs) {
  return h("dl", {class: "kv"}, pairs.filter(([, v]) => v != null && v !== "").flatMap(([k, v]) =>
    [h("dt", {text: k}), h("dd", {}, v)]));
}

function pretty(obj) { return h("pre", {class: "json", text: JSON.stringify(obj, null, 2)}); }

async function showDetail(id, fetchFull) {
  const row = S.rows.get(id);
  if (!row) return;
  const rec = row.rec, d = decisionOf(rec), u = usageOf(rec);
  $("#detail").hidden = false;
  $("#detail-title").textContent = id;
  const c = rec.client || {};
  const body = [
    kv([["time", rec.time], ["endpoint", rec.endpoint], ["profile", rec.profile],
        ["requested model", rec.requested_model], ["stream", rec.stream == null ? null : String(rec.stream)],
        ["status", row.phase === "start" ? "in flight" : rec.status], ["error", rec.error],
        ["stream error", rec.stream_error], ["client gone", rec.client_disconnected ? "yes" : null],
        ["served by", targetOf(rec) + (rec.simulated ? " (simulated)" : "")], ["mode", rec.mode],
        ["TTFT", rec.ttft_ms != null ? fmtMs(rec.ttft_ms) : null], ["TTFB", rec.ttfb_ms != null ? fmtMs(rec.ttfb_ms) : null],
        ["duration", rec.duration_ms != null ? fmtMs(rec.duration_ms) : null],
        ["tokens", rec.usage ? `in ${num(u.inp)} · out ${num(u.out)} · cache read ${num(u.cacheR)} · cache write ${num(u.cacheW)}` : null],
        ["cost", rec.target && rec.endpoint !== "count_tokens" && row.phase === "end" ? fmtCost(rec.cost_usd, rec.simulated) : null],
        ["stop reason", rec.stop_reason], ["bytes", rec.bytes_in != null ? `${num(rec.bytes_in)} in · ${num(rec.bytes_out)} out` : null],
        ["session", c.session_id], ["agent", c.agent_id], ["user agent", c.user_agent], ["address", c.address]]),
    h("h2", {text: "Decision"}),
  ];
  if (d.scenario) {
    body.push(kv([["scenario", d.scenario], ["concept", d.concept], ["first choice", d.target],
                  ["estimated tokens", d.estimated_tokens != null ? num(d.estimated_tokens) : null]]));
    if (d.reasons) body.push(h("h3", {text: "Reasons"}), h("ol", {}, d.reasons.map(r => h("li", {text: r}))));
    if (d.matches && d.matches.length) {
      body.push(h("h3", {text: "Matches"}), h("table", {class: "grid"},
        h("thead", {}, h("tr", {}, ["term", "concept", "written", "suppressed"].map(t => h("th", {text: t})))),
        h("tbody", {}, d.matches.map(m => h("tr", {}, h("td", {text: m.term}), h("td", {text: m.concept}),
          h("td", {text: m.as || ""}), h("td", {text: m.suppressed || ""}))))));
    }
    if (d.chain) {
      const attempts = rec.attempts || [];
      body.push(h("h3", {text: "Chain"}), h("ol", {}, d.chain.map(t => {
        const key = `${t.provider}/${t.model}`;
        const tries = attempts.filter(a => a.target === key);
        const served = rec.target === key && row.phase === "end" && !isError(rec);
        return h("li", {class: served ? "served" : ""}, key, served ? " — served" : "",
          tries.map(a => h("div", {class: "muted",
            text: `${a.skipped ? "skipped: " + a.skipped : `${a.status || ""} ${a.error || ""}`}${a.ms != null ? ` (${fmtMs(a.ms)})` : ""}${a.retried ? " · retried" : ""}`})));
      })));
    }
  } else if (row.partial) {
    body.push(h("p", {class: "muted", text: "loading the full record…"}));
  } else {
    body.push(h("p", {class: "muted", text: row.phase === "start" ? "not decided yet" : "no routing decision (the request failed before it)"}));
  }
  const bodies = h("div", {});
  body.push(h("h2", {text: "Bodies"}), bodies);
  if (rec.request_body !== undefined || rec.response_body !== undefined) {
    if (rec.request_body !== undefined) bodies.append(h("details", {open: true}, h("summary", {text: "request body"}), pretty(rec.request_body)));
    if (rec.response_body !== undefined) bodies.append(h("details", {open: true}, h("summary", {text: "response body"}), pretty(rec.response_body)));
  } else if (rec.bodies || S.bodiesLogged) {
    bodies.append(h("p", {class: "muted", text: row.phase === "start" ? "logged when the request ends" : "loading from the request log…"}));
  } else {
    bodies.append(h("p", {class: "muted", text: "Bodies are not logged. Set [log] bodies = true (or serve with -vv) to see them here."}));
  }
  body.push(h("details", {}, h("summary", {text: "the record as JSON"}), pretty(rec)));
  $("#detail-body").replaceChildren(...body);
  if (fetchFull && row.phase === "end" && (row.partial || rec.bodies)) {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const full = await api("/api/requests/" + encodeURIComponent(id));
        row.rec = full;
        row.partial = false;
        if (S.detailId === id) showDetail(id, false);
        return;
      } catch (e) {
        if (e instanceof AuthError || e.status !== 404) break;
        await new Promise(r => setTimeout(r, 400));  // the log writer may not have written it yet
      }
    }
    if (S.detailId === id) bodies.replaceChildren(h("p", {class: "muted", text: "not found in the request log (is logging off?)"}));
  }
}

function closeDetail() { S.detailId = null; $("#detail").hidden = true; }
$("#detail-close").addEventListener("click", closeDetail);
document.addEventListener("keydown", ev => { if (ev.key === "Escape") closeDetail(); });

// --------------------------------------------------------------------------------------- filters

for (const name of ["profile", "scenario", "provider", "status"]) {
  $("#f-" + name).addEventListener("change", ev => { S.filters[name] = ev.target.value; renderFeed(); });
}

// ---------------------------------------------------------------------------------------- playground

function lastUserText(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (!m || m.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) {
      const texts = m.content.filter(b => b && b.type === "text" && typeof b.text === "string").map(b => b.text);
      if (texts.length) return texts.join("\n");
    }
  }
  return "";
}

function highlight(text, decision) {
  // offsets are code points into the text the router read; a match whose span does not read as its term
  // (a pasted body whose text was cleaned first) is listed as a chip but not marked
  const cps = Array.from(text);
  const marks = [];
  let winner = null;
  for (const m of (decision.matches || []).slice().sort((a, b) => a.start - b.start)) {
    const span = cps.slice(m.start, m.end).join("").toLowerCase();
    const word = (m.as || m.term).toLowerCase();
    if (!(span === word || span.includes(m.term.split(" ")[0].toLowerCase()))) continue;
    if (marks.length && m.start < marks[marks.length - 1].end) continue;
    if (!winner && !m.suppressed && m.concept === decision.concept) winner = m;
    marks.push(m);
  }
  const out = h("div", {class: "hl"});
  let pos = 0;
  for (const m of marks) {
    out.append(cps.slice(pos, m.start).join(""));
    out.append(h("mark", {class: (m === winner ? "win" : "") + (m.suppressed ? " off" : ""),
                          title: `${m.concept}${m.suppressed ? " — suppressed: " + m.suppressed : ""}`,
                          text: cps.slice(m.start, m.end).join("")}));
    pos = m.end;
  }
  out.append(cps.slice(pos).join(""));
  return out;
}

async function route(ev) {
  if (ev) ev.preventDefault();
  const input = $("#play-text").value;
  const err = $("#play-error");
  err.hidden = true;
  if (!input.trim()) return;
  let body = null;
  if (input.trim().startsWith("{")) {
    try { body = JSON.parse(input); } catch (e) { err.hidden = false; err.textContent = "not valid JSON: " + e.message; return; }
    if (!body || !Array.isArray(body.messages)) { err.hidden = false; err.textContent = "a request body needs a messages array"; return; }
  }
  const text = body ? lastUserText(body) : input;
  const results = $("#play-results");
  results.replaceChildren(h("p", {class: "muted", text: "routing…"}));
  const cards = await Promise.all(S.profiles.map(async name => {
    try {
      const d = body
        ? await api(`/p/${encodeURIComponent(name)}/api/route`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)})
        : await api("/api/route", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({text: input, profile: name})});
      return h("section", {class: "card", vars: {"--pc": profileColor(name)}, data: {profile: name}},
        h("h3", {}, h("span", {class: "pdot"}), name),
        kv([["scenario", d.scenario], ["concept", d.concept], ["target", d.target], ["~tokens", num(d.estimated_tokens)]]),
        h("div", {class: "muted", text: "chain"}),
        h("ol", {}, d.chain.map(t => h("li", {text: `${t.provider}/${t.model}`}))),
        h("div", {class: "muted", text: "reasons"}),
        h("ul", {}, d.reasons.map(r => h("li", {text: r}))),
        d.matches.length ? h("div", {class: "chips"}, d.matches.map(m =>
          h("span", {class: "chip" + (m.suppressed ? " off" : ""), title: m.suppressed || m.concept, text: `${m.as || m.term} → ${m.concept}`}))) : null,
        text ? highlight(text, d) : null);
    } catch (e) {
      if (e instanceof AuthError) throw e;
      return h("section", {class: "card"}, h("h3", {text: name}), h("p", {class: "error", text: e.message}));
    }
  })).catch(() => null);
  if (cards) results.replaceChildren(...cards);
}

$("#play-form").addEventListener("submit", route);
$("#play-text").addEventListener("keydown", ev => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) route(ev); });

// ----------------------------------------------------------------------------------------- providers

async function loadProviders() {
  let p;
  try { p = await api("/api/providers"); } catch (e) { return; }
  $("#version").textContent = "v" + p.version;
  const w = p.worker, note = $("#worker-note");
  note.hidden = !(w && w.count > 1);
  // each worker has its own event hub: the feed follows the one this page reached (the log has them all)
  if (w && w.count > 1) note.textContent = `This daemon runs ${w.count} workers; the live feed shows the requests ` +
    `of worker ${w.index}, which served this page. Reload to load the others' from the request log.`;
  const up = p.uptime_s < 3600 ? Math.round(p.uptime_s / 60) + " min" : (p.uptime_s / 3600).toFixed(1) + " h";
  const log = p.request_log || {};
  $("#daemon-info").replaceChildren(kv([
    ["version", p.version], ["uptime", up], ["requests served", num(p.requests_served)], ["in flight", num(p.in_flight)],
    ["default profile", p.default_profile], ["simulate everything", p.simulate_all ? "yes (--simulate)" : "no"],
    ["proxy keys", p.auth ? "required" : "none set (loopback only)"],
    ["bodies logged", p.bodies_logged ? "yes" : "no"],
    ["request log", log.writing === false ? "not writing" : Object.entries(log).map(([k, v]) => `${k}: ${v}`).join(" · ")],
    ["dashboards following", `${p.events.subscribers} (dropped so far: ${p.events.dropped})`],
    ["config", p.config_stale_since ? `stale since ${p.config_stale_since}: ${p.reload_problems.join("; ")}` : "current"]]));
  $("#providers tbody").replaceChildren(...Object.entries(p.providers).map(([name, v]) => {
    const models = Object.entries(v.models || {});
    return h("tr", {data: {provider: name}},
      h("td", {text: name}), h("td", {text: v.kind}),
      h("td", {}, h("span", {class: "badge " + (v.live ? "live" : "sim"), text: v.live ? "live" : "simulated"})),
      h("td", {text: v.simulated_reason || ""}),
      h("td", {class: "mono", text: v.base_url || ""}),
      h("td", {class: "mono", text: v.api_key_env || ""}),
      h("td", {title: models.map(([m, s]) => `${m}: $${s.input_price ?? "?"}/$${s.output_price ?? "?"} per Mtok, ${num(s.context_window)} ctx`).join("\n"),
               text: models.length ? `${models.length}: ` + models.slice(0, 3).map(([m]) => m).join(", ") + (models.length > 3 ? ", …" : "") : ""}));
  }));
  const circuits = Object.entries(p.circuits || {});
  $("#circuits").hidden = !circuits.length;
  $("#circuits-empty").hidden = !!circuits.length;
  $("#circuits tbody").replaceChildren(...circuits.map(([key, c]) => h("tr", {},
    h("td", {text: key}), h("td", {class: c.state === "closed" ? "st-ok" : c.state === "open" ? "st-bad" : "st-flight", text: c.state.replace("_", "-")}),
    h("td", {class: "num", text: num(c.consecutive_failures)}), h("td", {class: "num", text: c.retry_in_s ? c.retry_in_s + "s" : "–"}),
    h("td", {class: "num", text: num(c.times_opened)}), h("td", {text: c.last_error || ""}))));
}

// --------------------------------------------------------------------------------- knowledge graphs

function renderKG() {
  if (!S.kg) return;
  if (!S.kgProfile || !S.kg.profiles[S.kgProfile]) S.kgProfile = S.profiles[0];
  $("#kg-profiles").replaceChildren(...S.profiles.map(name => h("button", {type: "button", class: name === S.kgProfile ? "on" : "",
    text: name, onclick: () => { S.kgProfile = name; renderKG(); }})));
  const p = S.kg.profiles[S.kgProfile];
  if (!p) return;
  const q = $("#kg-filter").value.trim().toLowerCase();
  const concepts = p.concepts.filter(c => !q || c.name.includes(q) || c.terms.some(t => t.includes(q)));
  const chains = [["default", p.default]].concat(Object.entries(p.scenarios));
  $("#kg-body").replaceChildren(
    h("p", {text: p.description}),
    h("dl", {class: "kgchains"}, chains.flatMap(([s, ch]) => [h("dt", {text: s}), h("dd", {class: "mono", text: ch.join("  →  ")})])),
    h("p", {class: "muted", text: `${p.concepts.length} concepts, ${p.terms} terms` +
      (p.duplicates.length ? `; ${p.duplicates.length} duplicate term(s) ignored: ` + p.duplicates.map(d => `${d.term} (${d.dropped}, kept in ${d.kept})`).join(", ") : "")}),
    h("table", {class: "grid kg"},
      h("thead", {}, h("tr", {}, ["priority", "concept", "terms", "routes to", "hooks"].map(t => h("th", {text: t})))),
      h("tbody", {}, concepts.map(c => h("tr", {data: {concept: c.name}},
        h("td", {class: "num", text: c.absorber ? "" : String(c.priority)}),
        h("td", {title: c.file}, c.name, c.absorber ? h("span", {class: "badge", text: "absorber", title: "consumes its phrase; never routes"}) : null),
        h("td", {}, h("div", {class: "chips"}, c.terms.map(t => h("span", {class: "chip", text: t})))),
        h("td", {class: "mono", text: c.routes.length ? c.routes.join(" → ") : c.scenario ? `scenario ${c.scenario}` : ""}),
        h("td", {text: c.hooks.join(", ")}))))));
}
$("#kg-filter").addEventListener("input", renderKG);

// ------------------------------------------------------------------------------------------- tabs

function showTab() {
  const tab = (location.hash || "#live").slice(1);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("on", a.dataset.tab === tab);
  for (const s of document.querySelectorAll("main > .tab")) s.hidden = s.id !== "tab-" + tab;
  if (tab === "providers") loadProviders();
  if (tab === "live") { chartsDirty = true; schedule(); }
}
window.addEventListener("hashchange", showTab);
setInterval(() => { if (!document.hidden && (location.hash === "#providers")) loadProviders(); }, 5000);

// ------------------------------------------------------------------------------------------- boot

async function boot() {
  try {
    S.kg = await api("/api/kg");
  } catch (e) {
    if (!(e instanceof AuthError)) { setConn("off", "daemon unreachable"); setTimeout(boot, 3000); }
    return;
  }
  const names = Object.keys(S.kg.profiles);
  S.profiles = MAIN_PROFILES.filter(p => names.includes(p)).concat(names.filter(p => !MAIN_PROFILES.includes(p)).sort());
  const sel = $("#f-profile");
  sel.replaceChildren(h("option", {value: "", text: "all"}), ...S.profiles.map(p => h("option", {value: p, text: p})));
  sel.value = S.filters.profile;
  renderKG();
  renderWindowPicker();
  showTab();
  render();
  follow();
  loadProviders();
  loadFleet();
  loadKeys();
  S.booted = true;
}

boot();
