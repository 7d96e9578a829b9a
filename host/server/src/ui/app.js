// Sluice's live page: the tenant's jobs from GET /v1/events (server-sent
// events read through fetch, so the token travels in the Authorization
// header like every API call), drawn without reloading.
"use strict";

const HISTORY_MS = 5 * 60 * 1000;
const RECONNECT_MS = 2000;

const state = {
  token: null,
  jobs: [],
  selected: null,
  // Per job id: [{t, rate, durationMs}] over the last HISTORY_MS.
  history: new Map(),
  abort: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const number = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const rate = (job) => (job.last_batch ? job.last_batch.input_rows_per_second : 0);
const lagOf = (job) => (job.lag.length ? job.lag.reduce((sum, p) => sum + p.records, 0) : null);
const shortDigest = (digest) => digest.replace("sha256:", "").slice(0, 12);

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- signing in -----------------------------------------------------------

function signIn(token) {
  state.token = token;
  sessionStorage.setItem("sluice-token", token);
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  connect();
}

function signOut() {
  sessionStorage.removeItem("sluice-token");
  if (state.abort) state.abort.abort();
  state.token = null;
  state.jobs = [];
  render();
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("connection").textContent = "not connected";
}

// ---- the event stream -----------------------------------------------------

async function connect() {
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  try {
    const response = await fetch("/v1/events", {
      headers: { Authorization: `Bearer ${state.token}` },
      signal: abort.signal,
    });
    if (response.status === 401) {
      signOut();
      $("connection").textContent = "the token was refused";
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    $("connection").textContent = "live";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        onEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    throw new Error("the stream ended");
  } catch (error) {
    if (abort.signal.aborted) return;
    $("connection").textContent = `reconnecting (${error.message})`;
    setTimeout(() => { if (state.abort === abort) connect(); }, RECONNECT_MS);
  }
}

function onEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (name !== "jobs" || !data.length) return;
  const jobs = JSON.parse(data.join("\n")).jobs;
  const now = Date.now();
  for (const job of jobs) {
    const points = state.history.get(job.id) || [];
    if (job.last_batch) {
      points.push({ t: now, rate: job.last_batch.input_rows_per_second, durationMs: job.last_batch.duration_ms });
    }
    while (points.length && points[0].t < now - HISTORY_MS) points.shift();
    state.history.set(job.id, points);
  }
  state.jobs = jobs;
  render();
}

// ---- drawing --------------------------------------------------------------

function render() {
  const known = new Set(state.jobs.map((j) => j.id));
  if (state.selected && !known.has(state.selected)) state.selected = null;
  if (!state.selected && state.jobs.length) state.selected = state.jobs[0].id;
  fill($("jobs").tBodies[0], state.jobs.map((job) => {
    const row = el("tr", { "data-testid": `job-row-${job.id}`, class: job.id === state.selected ? "selected" : "" },
      el("td", { title: job.id }, job.name),
      el("td", {}, el("span", { class: `badge ${job.state}` }, job.state)),
      el("td", { class: "num", "data-testid": `job-rate-${job.id}` }, number(rate(job))),
      el("td", { class: "num" }, number(job.rows_in)),
      el("td", { class: "num" }, number(lagOf(job))),
      el("td", { class: "num" }, job.last_checkpoint ?? "–"));
    row.addEventListener("click", () => { state.selected = job.id; render(); });
    return row;
  }));
  $("no-jobs").hidden = !state.token || state.jobs.length > 0;
  const job = state.jobs.find((j) => j.id === state.selected);
  $("job").hidden = !job;
  if (job) renderJob(job);
}

function renderJob(job) {
  $("job-name").textContent = job.name;
  $("job-id").textContent = job.id;
  $("job-state").textContent = job.state;
  $("job-state").className = `badge ${job.state}`;
  const errors = [job.error, ...job.swaps.filter((s) => s.rolled_back).map((s) => `swap of ${s.transform} rolled back: ${s.rolled_back}`)].filter(Boolean);
  $("job-error").hidden = !errors.length;
  $("job-error").textContent = errors.join("\n");
  drawPlan(job);
  const batch = job.last_batch;
  $("card-input").textContent = batch ? number(batch.input_rows_per_second) : "–";
  $("card-processed").textContent = batch ? number(batch.processed_rows_per_second) : "–";
  $("card-duration").textContent = batch ? `${batch.duration_ms.toFixed(1)} ms` : "–";
  $("card-lag").textContent = number(lagOf(job));
  $("card-watermark").textContent = job.watermark === null ? "–"
    : `${new Date(job.watermark).toISOString().replace("T", " ").slice(0, 19)} (${((Date.now() - job.watermark) / 1000).toFixed(0)} s behind)`;
  $("card-state").textContent = bytes(job.state_bytes);
  $("card-restarts").textContent = job.restarts;
  const points = state.history.get(job.id) || [];
  drawChart($("chart-rate"), points.map((p) => [p.t, p.rate]));
  drawChart($("chart-latency"), points.map((p) => [p.t, p.durationMs]));
  fill($("plugins").tBodies[0], job.plugins.map((p) =>
    el("tr", {}, el("td", {}, p.name), el("td", { "data-testid": "plugin-digest", title: p.digest }, shortDigest(p.digest)))));
  fill($("swaps").tBodies[0], job.swaps.slice().reverse().map((s) =>
    el("tr", {}, el("td", {}, s.transform), el("td", { title: s.from }, shortDigest(s.from)), el("td", { title: s.to }, shortDigest(s.to)),
      el("td", {}, s.rolled_back ? "rolled back" : "swapped"))));
  fill($("checkpoints").tBodies[0], job.checkpoints.slice().reverse().map((c) =>
    el("tr", {}, el("td", { class: "num" }, c.epoch), el("td", {}, new Date(c.committed_at_ms).toLocaleTimeString()),
      el("td", { class: "num" }, `${c.took_ms.toFixed(0)} ms`), el("td", { class: "num" }, bytes(c.state_bytes)))));
  fill($("rejected").tBodies[0], Object.entries(job.rejected).map(([kind, rows]) =>
    el("tr", {}, el("td", {}, kind), el("td", { class: "num" }, number(rows)))));
  const lag = new Map(job.lag.map((l) => [`${l.topic}/${l.partition}`, l.records]));
  fill($("partitions").tBodies[0], job.offsets.map((o) =>
    el("tr", {}, el("td", {}, o.topic || "–"), el("td", { class: "num" }, o.partition), el("td", { class: "num" }, number(o.offset)),
      el("td", { class: "num" }, number(lag.get(`${o.topic}/${o.partition}`))))));
}

// The plan, left to right: source, decode, transforms, aggregate, sink;
// the named outputs below, fed from the stage before the sink.
function drawPlan(job) {
  const plan = job.plan;
  const stages = [{ label: plan.source || "source", kind: "source" }];
  if (plan.decode) stages.push({ label: "decode", kind: "decode" });
  for (const name of plan.transforms) stages.push({ label: name, kind: "transform" });
  if (plan.aggregate) stages.push({ label: `${plan.aggregate} (window)`, kind: "aggregate" });
  stages.push({ label: plan.sink || "sink", kind: "sink" });
  const root = $("plan");
  const width = Math.max(root.clientWidth, 200);
  const gap = width / stages.length;
  const boxWidth = Math.min(150, gap - 36);
  const nodes = [svg("defs", {}), ];
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#94a3b8" }));
  nodes[0].append(marker);
  const centre = (i) => gap * i + gap / 2;
  stages.forEach((stage, i) => {
    const group = svg("g", { class: "node", "data-kind": stage.kind });
    group.append(svg("rect", { x: centre(i) - boxWidth / 2, y: 20, width: boxWidth, height: 34 }));
    group.append(svg("text", { x: centre(i), y: 41, "text-anchor": "middle" }, clip(stage.label, boxWidth)));
    nodes.push(group);
    if (i > 0) {
      nodes.push(svg("line", { class: "edge", x1: centre(i - 1) + boxWidth / 2, y1: 37, x2: centre(i) - boxWidth / 2, y2: 37 }));
    }
  });
  const batch = job.last_batch;
  if (batch && stages.length > 1) {
    nodes.push(svg("text", { class: "rate", x: (centre(0) + centre(1)) / 2, y: 14, "text-anchor": "middle" }, `${number(batch.input_rows_per_second)}/s`));
  }
  const last = stages.length - 1;
  nodes.push(svg("text", { class: "muted", x: (centre(last - 1) + centre(last)) / 2, y: 14, "text-anchor": "middle" }, `${number(job.rows_out)} out`));
  const from = centre(Math.max(last - 1, 0));
  plan.outputs.forEach((name, j) => {
    const x = from + (j - (plan.outputs.length - 1) / 2) * (boxWidth + 16);
    const group = svg("g", { class: "node side" });
    group.append(svg("rect", { x: x - boxWidth / 2, y: 110, width: boxWidth, height: 30 }));
    group.append(svg("text", { x, y: 129, "text-anchor": "middle" }, clip(name, boxWidth)));
    nodes.push(svg("line", { class: "edge", x1: from, y1: 54, x2: x, y2: 110 }));
    nodes.push(group);
    nodes.push(svg("text", { class: "muted", x: x + 6, y: 104 }, number(job.outputs[name] ?? 0)));
  });
  const height = plan.outputs.length ? 150 : 64;
  root.style.height = `${height}px`;
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  root.replaceChildren(...nodes);
}

function clip(text, width) {
  const max = Math.max(4, Math.floor(width / 7));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// A line chart of [time ms, value] points over the last HISTORY_MS.
function drawChart(canvas, points) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 54, right: 8, top: 8, bottom: 18 };
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  context.fillStyle = "#6b7385";
  const now = Date.now();
  const max = Math.max(1, ...points.map((p) => p[1])) * 1.1;
  const x = (t) => pad.left + ((t - (now - HISTORY_MS)) / HISTORY_MS) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  context.strokeStyle = "#e5e7eb";
  for (const fraction of [0, 0.5, 1]) {
    const v = max * fraction;
    context.beginPath();
    context.moveTo(pad.left, y(v));
    context.lineTo(width - pad.right, y(v));
    context.stroke();
    context.fillText(max < 10 ? v.toFixed(1) : number(v), 4, y(v) + 4);
  }
  context.fillText("−5 min", pad.left, height - 4);
  context.fillText("now", width - pad.right - 22, height - 4);
  if (points.length < 2) return;
  context.strokeStyle = "#2563eb";
  context.lineWidth = 1.5;
  context.beginPath();
  points.forEach(([t, v], i) => (i ? context.lineTo(x(t), y(v)) : context.moveTo(x(t), y(v))));
  context.stroke();
}

// ---- start ----------------------------------------------------------------

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) signIn(token);
});
$("sign-out").addEventListener("click", signOut);

// A token in the fragment (#token=...) signs in and is removed from the
// address bar; the fragment never reaches the server.
const fragment = new URLSearchParams(location.hash.slice(1));
const given = fragment.get("token") || sessionStorage.getItem("sluice-token");
history.replaceState(null, "", location.pathname);
if (given) signIn(given); else $("sign-in").hidden = false;
