// edgemigrate live demo dashboard: renders each State pushed on /api/events.
// Plain DOM, no framework, no build step; everything is served by the Go binary.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#6cb6ff", "#f5b84b", "#c792ea", "#3ecf8e", "#ff8a65", "#4dd0e1", "#f06292", "#aed581"];
const MAP_W = 800, MAP_H = 520, PAD = 28;
const M_PER_DEG = 111320;

// el builds an HTML element; text goes through textContent, never innerHTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Colours stay with a cluster id across updates.
const colours = new Map();
function colour(id) {
  if (!colours.has(id)) colours.set(id, PALETTE[colours.size % PALETTE.length]);
  return colours.get(id);
}

function gib(bytes) { return (bytes / (1 << 30)).toFixed(1); }
function ms(v) { return v >= 10000 ? (v / 1000).toFixed(1) + " s" : (v >= 100 ? Math.round(v) : v.toFixed(1)) + " ms"; }
function clock(t) {
  const d = new Date(t);
  if (isNaN(d) || d.getFullYear() < 2) return "";
  return d.toISOString().slice(11, 23);
}

// ---- map: equirectangular projection fitted to the coverage circles and the car tracks
function projection(state) {
  const pts = [];
  for (const c of state.clusters) {
    const dLat = c.radiusM / M_PER_DEG;
    const dLon = c.radiusM / (M_PER_DEG * Math.max(Math.cos(c.center.lat * Math.PI / 180), 0.01));
    pts.push([c.center.lat - dLat, c.center.lon - dLon], [c.center.lat + dLat, c.center.lon + dLon]);
  }
  for (const car of state.cars) {
    pts.push([car.position.lat, car.position.lon]);
    for (const p of car.track || []) pts.push([p.lat, p.lon]);
  }
  if (pts.length === 0) return null;
  let minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity;
  for (const [la, lo] of pts) {
    minLat = Math.min(minLat, la); maxLat = Math.max(maxLat, la);
    minLon = Math.min(minLon, lo); maxLon = Math.max(maxLon, lo);
  }
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180); // shrink longitude at this latitude
  const w = Math.max((maxLon - minLon) * k, 1e-6), h = Math.max(maxLat - minLat, 1e-6);
  const scale = Math.min((MAP_W - 2 * PAD) / w, (MAP_H - 2 * PAD) / h); // px per degree of latitude
  const ox = (MAP_W - w * scale) / 2, oy = (MAP_H - h * scale) / 2;
  return {
    x: lon => ox + (lon - minLon) * k * scale,
    y: lat => oy + (maxLat - lat) * scale,
    pxPerM: scale / M_PER_DEG,
  };
}

function renderMap(state) {
  const map = document.getElementById("map");
  const nodes = [];
  const grid = svg("g", { class: "grid" });
  for (let x = 0; x <= MAP_W; x += 40) grid.append(svg("line", { x1: x, y1: 0, x2: x, y2: MAP_H }));
  for (let y = 0; y <= MAP_H; y += 40) grid.append(svg("line", { x1: 0, y1: y, x2: MAP_W, y2: y }));
  nodes.push(grid);
  const p = projection(state);
  if (!p) {
    nodes.push(svg("text", { x: MAP_W / 2, y: MAP_H / 2, "text-anchor": "middle", fill: "#8896a8" }, "waiting for the demo…"));
    map.replaceChildren(...nodes);
    return;
  }
  const centers = new Map();
  for (const c of state.clusters) {
    const cx = p.x(c.center.lon), cy = p.y(c.center.lat), r = c.radiusM * p.pxPerM;
    centers.set(c.id, [cx, cy]);
    const col = colour(c.id);
    nodes.push(svg("g", { class: "coverage", "data-cluster": c.id },
      svg("title", {}, `${c.id}: ${(c.radiusM / 1000).toFixed(1)} km radius`),
      svg("circle", { cx, cy, r, fill: col, stroke: col }),
      svg("circle", { class: "center", cx, cy, r: 4, fill: col }),
      svg("text", { x: cx, y: cy - r + 22, "text-anchor": "middle", fill: col }, c.id)));
  }
  for (const car of state.cars) {
    const pts = (car.track || []).map(q => `${p.x(q.lon).toFixed(1)},${p.y(q.lat).toFixed(1)}`).join(" ");
    if (pts) nodes.push(svg("polyline", { class: "track", points: pts }));
  }
  for (const car of state.cars) {
    const x = p.x(car.position.lon), y = p.y(car.position.lat);
    const serving = centers.get(car.servingCluster);
    const col = car.servingCluster ? colour(car.servingCluster) : "#8896a8";
    if (serving) nodes.push(svg("line", { class: "link", x1: x, y1: y, x2: serving[0], y2: serving[1], stroke: col }));
    nodes.push(svg("g", { class: "car", "data-car": car.id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` },
      svg("title", {}, `${car.id} served by ${car.servingCluster || "nobody"}`),
      svg("circle", { r: 8, stroke: col }),
      svg("text", { x: 13, y: -11 }, car.id)));
  }
  // Scale bar: a round distance about a sixth of the map wide.
  const target = (MAP_W / 6) / p.pxPerM;
  const step = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000].find(s => s >= target) || 100000;
  const len = step * p.pxPerM;
  nodes.push(svg("g", { class: "scale", transform: `translate(${MAP_W - len - 16},${MAP_H - 16})` },
    svg("line", { x1: 0, y1: 0, x2: len, y2: 0 }),
    svg("line", { x1: 0, y1: -4, x2: 0, y2: 4 }), svg("line", { x1: len, y1: -4, x2: len, y2: 4 }),
    svg("text", { x: len / 2, y: -7, "text-anchor": "middle" }, step >= 1000 ? `${step / 1000} km` : `${step} m`)));
  map.replaceChildren(...nodes);
}

// ---- cluster panels
function renderClusters(state) {
  const box = document.getElementById("clusters");
  if (state.clusters.length === 0) { box.replaceChildren(el("div", { class: "card" }, el("div", { class: "empty" }, "no clusters yet"))); return; }
  box.replaceChildren(...state.clusters.map(c => {
    const nodes = (c.nodes || []).map(n => {
      const frac = n.memoryTotalBytes > 0 ? n.memoryUsedBytes / n.memoryTotalBytes : 0;
      const slots = [];
      for (let i = 0; i < n.gpuSlots; i++) slots.push(el("span", { class: "slot" + (i < n.gpuSlotsUsed ? " used" : "") }));
      return el("div", { class: "node", "data-node": n.name },
        el("span", { class: "nname mono", title: n.name }, n.name),
        el("div", { class: "bar" + (frac >= 0.95 ? " full" : frac >= 0.75 ? " high" : ""), title: "unified memory (CPU + GPU)" },
          el("span", { style: `width:${Math.min(frac, 1) * 100}%` }),
          el("em", {}, `${gib(n.memoryUsedBytes)} / ${gib(n.memoryTotalBytes)} GiB`)),
        el("span", { class: "slots", title: `GPU slots ${n.gpuSlotsUsed}/${n.gpuSlots}` }, ...slots),
        n.model ? el("span", { class: "model" }, n.model) : null);
    });
    const svcs = (c.services || []).map(s => el("div", { class: "svc", "data-service": `${s.namespace}/${s.name}` },
      el("span", { class: "pill " + (s.ready ? "ready" : "pending") }, s.ready ? "Ready" : "Starting"),
      el("span", { class: "sname" }, s.name),
      el("span", { class: "meta" }, [s.kind, s.namespace, s.clientId && `client ${s.clientId}`, s.node && `on ${s.node}`].filter(Boolean).join(" · ")),
      s.migratedFrom ? el("span", { class: "pill from" }, `from ${s.migratedFrom}`) : null));
    return el("div", { class: "cluster", style: `--c:${colour(c.id)}`, "data-cluster-panel": c.id },
      el("div", { class: "cluster-head" }, el("span", { class: "name" }, c.id),
        el("span", { class: "muted small" }, `${(c.nodes || []).length} nodes · ${(c.radiusM / 1000).toFixed(1)} km`),
        el("span", { class: "endpoint mono" }, c.endpoint || "")),
      ...(nodes.length ? nodes : [el("div", { class: "empty" }, "no nodes")]),
      el("div", { class: "services" }, ...(svcs.length ? svcs : [el("div", { class: "empty" }, "no services")])));
  }));
}

// ---- the cars' requests: figures, a counter per answering cluster, a strip of the latest
function renderRequests(state) {
  const box = document.getElementById("requests");
  if (state.requests.length === 0) { box.replaceChildren(el("div", { class: "empty" }, "no request sent: the service is simulated (kwok), or the car has not started")); return; }
  box.replaceChildren(...state.requests.map(r => {
    const fig = (cls, key, value, label) => el("span", { class: "figure " + cls, "data-figure": key }, el("b", {}, value), label);
    const counts = Object.keys(r.byCluster || {}).sort().map(id =>
      el("span", { class: "count", style: `--c:${colour(id)}`, "data-count": id }, `${id} ${r.byCluster[id]}`));
    for (const why of Object.keys(r.failedBy || {}).sort()) {
      counts.push(el("span", { class: "count bad", "data-failed": why }, `${why} ${r.failedBy[why]}`));
    }
    const strip = (r.recent || []).map(q => el("span", {
      class: "req" + (q.ok ? "" : " fail"), style: q.ok ? `--c:${colour(q.cluster)}` : null, "data-served-by": q.cluster || "",
      title: `#${q.seq} ${q.ok ? "answered by " + q.cluster : "FAILED" + (q.status ? " " + q.status : "")} in ${ms(q.latencyMs)}` }));
    return el("div", { class: "reqcar", "data-requests": r.car },
      el("div", { class: "figures" },
        el("span", { class: "who" }, r.car),
        fig("", "rate", r.ratePerS.toFixed(1), `req/s (last ${Math.round(r.windowS)} s)`),
        fig("", "p50", ms(r.p50Ms), "p50"),
        fig("", "p99", ms(r.p99Ms), "p99"),
        fig(r.failed > 0 ? "bad" : "good", "failed", String(r.failed), `failed of ${r.sent}`),
        fig(r.windowFailed > 0 ? "bad" : "", "windowFailed", String(r.windowFailed), "failed recently"),
        r.inFlight ? fig("", "inFlight", String(r.inFlight), "waiting") : null),
      el("div", { class: "byc" }, ...counts),
      el("div", { class: "strip", title: "latest requests, newest right; colour of the cluster that answered, red for a failure" }, ...strip));
  }));
}

// ---- migration timeline: one row per migration, a segment per step sized by its duration
function renderTimeline(state) {
  const box = document.getElementById("timeline");
  if (state.migrations.length === 0) { box.replaceChildren(el("div", { class: "empty" }, "no migration yet")); return; }
  box.replaceChildren(...state.migrations.slice().reverse().map(m => {
    const steps = m.steps || [];
    const total = steps.length ? steps[steps.length - 1].atMs : 0;
    let prev = 0;
    const segs = steps.map((s, i) => {
      const d = Math.max(s.atMs - prev, 0);
      prev = s.atMs;
      const col = PALETTE[(i + 3) % PALETTE.length];
      return el("div", { class: "step", title: `${s.phase}: +${ms(d)} (at ${ms(s.atMs)})`,
        style: `flex:${Math.max(d, total * 0.02, 0.001)} 1 0; background:${col}33; color:${col}` },
        el("b", {}, s.phase), el("i", {}, "+" + ms(d)));
    });
    return el("div", { class: "mig", "data-migration": m.id, "data-phase": m.phase },
      el("div", {},
        el("div", { class: "title" },
          el("span", { class: "route" }, el("span", { style: `color:${colour(m.source)}` }, m.source), " → ",
            el("span", { style: `color:${colour(m.destination || "?")}` }, m.destination || "?")),
          el("span", { class: "phase " + m.phase }, m.phase)),
        el("div", { class: "sub" }, [m.reason, m.workload].filter(Boolean).join(" · ")),
        el("div", { class: "sub mono" }, m.id),
        m.message ? el("div", { class: "sub" }, m.message) : null),
      el("div", {},
        el("div", { class: "steps" }, ...(segs.length ? segs : [el("div", { class: "empty", style: "padding:6px" }, "no step yet")])),
        el("div", { class: "total" }, total ? `total ${ms(total)}` : "")));
  }));
}

// ---- lists that follow their newest (last) line unless the reader scrolled up
function fill(box, rows) {
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  box.replaceChildren(...rows);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function typeClass(t) {
  if (/Propos/.test(t)) return "proposed";
  if (/Bid/.test(t)) return "bid";
  if (/Fail|Abort|Reject/.test(t)) return "bad";
  if (/Decid|Ready|Complet/.test(t)) return "decided";
  return "";
}

function renderLedger(state) {
  const box = document.getElementById("ledger");
  if (state.ledger.length === 0) { box.replaceChildren(el("div", { class: "empty" }, "no ledger event yet")); return; }
  fill(box, state.ledger.map(e => el("div", { class: "lrow", "data-ledger-type": e.type },
    el("span", { class: "mono muted" }, clock(e.time)),
    el("span", { class: "ltype " + typeClass(e.type) }, e.type),
    el("span", {},
      e.clusterId ? el("span", { class: "who", style: `color:${colour(e.clusterId)}` }, e.clusterId) : null,
      e.migrationId ? el("span", { class: "mono" }, e.migrationId) : null,
      e.state ? el("span", { class: "muted" }, e.state) : null,
      e.destination ? el("span", {}, "→ ", el("span", { style: `color:${colour(e.destination)}` }, e.destination)) : null))));
}

function renderLog(state) {
  const box = document.getElementById("log");
  if (state.log.length === 0) { box.replaceChildren(el("div", { class: "empty" }, "the demo has not said anything yet")); return; }
  fill(box, state.log.map(l => el("div", { class: "logline" }, l)));
}

function render(state) {
  for (const k of ["clusters", "cars", "ledger", "migrations", "log", "requests"]) state[k] = state[k] || [];
  for (const c of state.clusters) colour(c.id); // clusters first: stable colours by their order
  const parts = [renderMap, renderClusters, renderRequests, renderTimeline, renderLedger, renderLog];
  for (const part of parts) {
    try { part(state); } catch (err) { console.error(part.name, err); }
  }
  document.getElementById("clock").textContent = clock(state.time);
  document.body.dataset.updated = state.time;
}

// ---- live updates; EventSource retries by itself unless the stream fails for good
function setConn(cls, text) {
  document.getElementById("conn").className = "dot " + cls;
  document.getElementById("conn-text").textContent = text;
}

let retry = 1000;
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { retry = 1000; setConn("live", "live"); });
  es.addEventListener("state", ev => {
    let state;
    try { state = JSON.parse(ev.data); } catch (err) { console.error("bad state", err); return; }
    render(state);
  });
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn("down", `disconnected, retrying in ${retry / 1000}s`);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    } else {
      setConn("", "reconnecting…");
    }
  });
}
connect();
