// The live demo page's script (scripts/demo-page.html, served at /demo/page.js). No libraries, no network beyond its
// own admin origin: /demo/config once, /demo/state (proxy view, governor counters) every 400 ms, /demo/series (the
// filter's counters sampled every second by scripts/demo-series.ts: the capped pod, what happened, chart points) every
// second. The chart is inline SVG drawn here.
"use strict";
const STATUS = { pod_full: 503, draining: 503, contention: 503, rate_limited: 429, client_full: 429 };
const REASONS = ["pod_full", "rate_limited", "client_full", "draining", "contention"];
const SVG = "http://www.w3.org/2000/svg";
const WINDOW_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of kids) e.append(c);
  return e;
};
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};

let config = { cap: 0, podNames: {}, wsPath: "/chat", mode: "inbound" };
let state = null;
let series = null;
let updates = 0;
let connSeq = 0;
const conns = []; // { id, ws, state, li }

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + " → " + r.status);
  return r.json();
}

function setBar(fill, value, cap, scale) {
  const pct = scale > 0 ? Math.min(100, (100 * value) / scale) : 0;
  fill.style.width = pct + "%";
  fill.classList.toggle("full", cap > 0 && value >= cap);
  fill.classList.toggle("high", cap > 0 && value < cap && value >= cap * 0.66);
}

// ---- the capped pod (named by the filter's own metrics endpoint, through /demo/series)

function renderCapped() {
  const capped = (series && series.capped) || [];
  const name = $("capped-pod");
  if (config.mode === "upstream") {
    name.textContent = capped.length ? `each upstream pod (${capped.length} so far)` : "each upstream pod Envoy picks";
    name.setAttribute("data-pod", capped.map((p) => p.pod).join(","));
    const box = $("capped-rows");
    for (const p of capped) {
      let row = box.querySelector(`[data-capped="${p.pod}"]`);
      if (!row) {
        row = el("div", { class: "row capped-row", "data-capped": p.pod },
          el("div", { class: "name" }, config.podNames[p.pod] || p.pod, el("small", {}, p.pod)),
          el("div", { class: "track" }, el("div", { class: "fill" })), el("div", { class: "num" }));
        box.append(row);
      }
      row.setAttribute("data-active", String(p.active));
      setBar(row.querySelector(".fill"), p.active, config.cap, Math.max(config.cap || 0, p.active, 1));
      row.querySelector(".num").innerHTML = `<b>${p.active}</b> / ${config.cap || "∞"} · ${p.rejected} refused`;
    }
  } else if (capped.length) {
    name.textContent = capped[0].label;
    name.setAttribute("data-pod", capped[0].pod);
    $("governor-name").firstChild.textContent = capped[0].label;
    $("governor-name").querySelector("small").textContent = "this sidecar's pod";
  } else if (series) {
    name.textContent = "not named";
    name.setAttribute("data-pod", "");
  }
  $("pod-read-from").textContent = series && series.source === "metrics"
    ? `Named and counted by the filter itself: ${config.metrics} (websocket_connections_active_total{pod="…"}), read every second.`
    : config.metrics
      ? `The filter's metrics endpoint ${config.metrics} did not answer 127.0.0.1 (endpoint_allow?), so the page cannot name the pod; counts come from admin /stats.`
      : "The filter's metrics endpoint is off (metrics_path \"\"), so the page cannot name the pod; counts come from admin /stats.";
}

// ---- what just happened: one line per event, newest first

function renderEvents() {
  const list = $("events");
  const events = (series && series.events) || [];
  if (!events.length) return;
  const key = events.map((e) => e.t + e.kind).join("|");
  if (list.getAttribute("data-key") === key) return;
  list.setAttribute("data-key", key);
  list.replaceChildren(...events.slice().reverse().map((e) => {
    const kind = e.kind === "accepted" || e.kind === "released" || e.kind === "shadow" ? e.kind : "rej";
    return el("li", { class: kind, "data-kind": e.kind }, el("time", {}, new Date(e.t).toLocaleTimeString()), e.text);
  }));
}

// ---- the chart: active connections (line) and rejections per second (bars), at most the last five minutes

function drawChart() {
  const chart = $("chart");
  const points = (series && series.points) || [];
  if (!points.length) return;
  const W = 1000, H = 190, L = 40, R = 44, T = 12, B = 24;
  // the time axis grows with the data, from 30 s up to five minutes, so the first seconds are not a sliver
  const now = points[points.length - 1].t;
  const span = Math.min(WINDOW_MS, Math.max(30000, now - points[0].t));
  const t0 = now - span;
  const step = span <= 60000 ? 10000 : span <= 180000 ? 30000 : 60000;
  const ago = (ms) => (ms === 0 ? "now" : step < 60000 ? `−${ms / 1000} s` : `−${ms / 60000} min`);
  const cap = config.mode === "inbound" ? config.cap : 0;
  const maxA = Math.max(1, ...points.map((p) => p.active), cap && cap <= 1000 ? cap : 0);
  const maxR = Math.max(1, ...points.map((p) => p.rejectedPerSecond));
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const yA = (v) => T + (1 - v / maxA) * (H - T - B);
  const yR = (v) => T + (1 - v / maxR) * (H - T - B);
  const kids = [];
  for (const f of [0, 0.5, 1]) {
    kids.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: yA(maxA * f), y2: yA(maxA * f) }));
    kids.push(svg("text", { x: L - 6, y: yA(maxA * f) + 4, "text-anchor": "end" }, String(Math.round(maxA * f * 10) / 10)));
    kids.push(svg("text", { x: W - R + 6, y: yR(maxR * f) + 4 }, `${Math.round(maxR * f * 10) / 10}/s`));
  }
  for (let ms = Math.floor(span / step) * step; ms >= 0; ms -= step) {
    kids.push(svg("text", { x: x(now - ms), y: H - 6, "text-anchor": "middle" }, ago(ms)));
  }
  $("chart-title").textContent = span < 60000 ? `last ${Math.round(span / 1000)} s` : `last ${Math.round(span / 6000) / 10} min`;
  const barW = Math.max(2, ((W - L - R) * 1000) / span - 2); // a bar covers the second before its sample
  let bars = 0;
  for (const p of points) {
    if (p.rejectedPerSecond <= 0) continue;
    bars++;
    kids.push(svg("rect", { class: "rej", x: Math.max(L, x(p.t) - barW - 1), y: yR(p.rejectedPerSecond), width: barW, height: H - B - yR(p.rejectedPerSecond) }));
  }
  if (cap > 0 && cap <= maxA) kids.push(svg("line", { class: "cap", x1: L, x2: W - R, y1: yA(cap), y2: yA(cap) }));
  const line = points.map((p) => `${x(p.t).toFixed(1)},${yA(p.active).toFixed(1)}`).join(" ");
  kids.push(svg("polyline", { class: "active", points: line }));
  chart.replaceChildren(...kids);
  chart.setAttribute("data-points", String(points.length));
  chart.setAttribute("data-bars", String(bars));
  chart.setAttribute("data-max-active", String(Math.max(...points.map((p) => p.active))));
}

// ---- proxy view and counters (/demo/state)

function renderPods(s) {
  const box = $("pods");
  const maxActive = Math.max(1, ...s.pods.map((p) => p.activeUpgrades));
  for (const p of s.pods) {
    let row = box.querySelector(`[data-pod="${p.address}"]`);
    if (!row) {
      const name = config.podNames[p.address] || p.address;
      row = el("div", { class: "row pod-row", "data-pod": p.address },
        el("div", { class: "name" }, name, el("small", {}, p.address)),
        el("div", { class: "track" }, el("div", { class: "fill pod-fill" })),
        el("div", { class: "num" }));
      box.append(row);
    }
    row.setAttribute("data-active", String(p.activeUpgrades));
    row.setAttribute("data-total", String(p.totalUpgrades));
    setBar(row.querySelector(".pod-fill"), p.activeUpgrades, 0, maxActive);
    row.querySelector(".num").innerHTML = `<b>${p.activeUpgrades}</b> active · ${p.totalUpgrades} total`;
  }
}

function renderTiles(boxId, counts, prefix, label) {
  const box = $(boxId);
  const names = [...new Set([...REASONS, ...Object.keys(counts)])];
  if (prefix === "shadow" && names.every((n) => !counts[n])) { box.innerHTML = ""; return; }
  for (const n of names) {
    const id = `${prefix}-${n}`;
    let t = $(id);
    if (!t) {
      t = el("div", { class: "tile", id },
        el("div", { class: "k" }, `${label} ${n}`),
        el("div", { class: "v" }, "0"),
        el("div", { class: "s" }, STATUS[n] ? `HTTP ${STATUS[n]}` : ""));
      box.append(t);
    }
    const v = counts[n] || 0;
    const old = Number(t.getAttribute("data-count") || "0");
    t.setAttribute("data-count", String(v));
    t.querySelector(".v").textContent = String(v);
    t.classList.toggle("hot", v > 0);
    if (v > old) { t.classList.add("flash"); setTimeout(() => t.classList.remove("flash"), 700); }
  }
}

function render(s) {
  const g = s.governor;
  const active = g.activeConnections ?? 0;
  const cap = config.mode === "inbound" ? config.cap : 0; // upstream: the cap is per pod, the total has none
  $("active-count").textContent = String(active);
  $("governor-row").setAttribute("data-active", String(active));
  $("cap-count").textContent = cap ? String(cap) : "∞";
  setBar($("governor-fill"), active, cap, Math.max(cap || 0, active, 1));
  $("stat-upgrades").textContent = String(g.upgrades ?? 0);
  $("stat-accepted").textContent = String(g.accepted ?? 0);
  $("stat-released").textContent = String(g.released ?? 0);
  $("stat-proxy-active").textContent = String(s.proxy.upgradesActive);
  renderPods(s);
  renderTiles("rejections", g.rejected || {}, "rej", "");
  renderTiles("shadow", g.shadowRejected || {}, "shadow", "shadow");
}

function loop(fn, ms) {
  const run = async () => {
    try { await fn(); } finally { setTimeout(run, ms); }
  };
  return run();
}

async function pollState() {
  try {
    state = await getJson("/demo/state");
    render(state);
    updates++;
    document.body.setAttribute("data-updates", String(updates));
    $("live-dot").className = "dot on";
    $("live-text").textContent = "live · " + new Date(state.time).toLocaleTimeString();
  } catch (e) {
    $("live-dot").className = "dot off";
    $("live-text").textContent = "no data: " + e.message;
  }
}

async function pollSeries() {
  try {
    series = await getJson("/demo/series");
    renderCapped();
    renderEvents();
    drawChart();
    document.body.setAttribute("data-series", String((series.points || []).length));
  } catch { /* the state poll reports the connection */ }
}
function setConn(c, st, detail) {
  c.state = st;
  c.li.setAttribute("data-state", st);
  c.li.querySelector(".st").textContent = st;
  if (detail !== undefined) c.li.querySelector(".d").textContent = detail;
  updateButtons();
}

async function openConnection() {
  const before = await getJson("/demo/state").catch(() => state);
  const id = ++connSeq;
  const li = el("li", { "data-state": "connecting", "data-id": String(id) },
    el("span", { class: "id" }, "#" + id), el("span", { class: "st" }, "connecting"), el("span", { class: "d" }, ""));
  $("conn-list").prepend(li);
  const ws = new WebSocket((state?.listener || config.listener) + config.wsPath);
  const c = { id, ws, state: "connecting", li, opened: false };
  conns.push(c);
  return new Promise((resolve) => {
    ws.onopen = () => {
      c.opened = true;
      setConn(c, "open", "101 Switching Protocols");
      ws.send("hello from browser client #" + id);
      resolve(c);
    };
    ws.onmessage = (e) => { c.li.querySelector(".d").textContent = "101 · echo: " + String(e.data).slice(0, 50); };
    ws.onclose = async (e) => {
      if (c.opened) { setConn(c, "closed", `closed ${e.code}${e.reason ? " " + e.reason : ""}`); resolve(c); return; }
      // refused before the 101: find the rejection counter that moved
      let reason = "";
      for (let i = 0; i < 10 && !reason; i++) {
        const after = await getJson("/demo/state").catch(() => null);
        if (after && before) {
          for (const n of Object.keys(after.governor.rejected || {})) {
            if ((after.governor.rejected[n] || 0) > ((before.governor.rejected || {})[n] || 0)) reason = n;
          }
        }
        if (!reason) await new Promise((r) => setTimeout(r, 100));
      }
      c.li.setAttribute("data-reason", reason || "unknown");
      setConn(c, "refused", reason ? `${STATUS[reason] || "?"} ${reason}` : "refused (no 101)");
      resolve(c);
    };
  });
}

function closeOne() {
  const c = conns.find((x) => x.state === "open");
  if (c) c.ws.close(1000, "bye");
}
function closeAll() {
  for (const c of conns) if (c.state === "open" || c.state === "connecting") c.ws.close(1000, "bye");
}
function sendEach() {
  for (const c of conns) if (c.state === "open") c.ws.send("ping from #" + c.id);
}
function updateButtons() {
  const open = conns.filter((c) => c.state === "open").length;
  $("btn-close").disabled = open === 0;
  $("btn-close-all").disabled = open === 0;
  $("btn-send").disabled = open === 0;
}

async function main() {
  try {
    const cfg = await getJson("/demo/config");
    config = { ...config, ...cfg };
    $("where").textContent = `${cfg.engine || "emulated Envoy"} · ${cfg.configFile} · websocket ${cfg.listener}${config.wsPath}`;
    const rl = cfg.rate_limit ? `${cfg.rate_limit.requests} upgrades / ${cfg.rate_limit.window_seconds} s (burst ${cfg.rate_limit.burst})` : "off";
    $("limits").textContent = `limits: max_connections_per_pod=${cfg.cap || "none"}, max_connections_per_client=${cfg.clientCap || "off"}, ` +
      `rate_limit=${rl}` + (cfg.enforce === false ? " · SHADOW MODE (nothing is rejected, would-be rejections are counted)" : "") +
      (cfg.draining ? " · DRAINING (every new upgrade gets 503)" : "");
    $("cap-text").textContent = cfg.cap ? `cap ${cfg.cap} connection${cfg.cap === 1 ? "" : "s"}${cfg.mode === "upstream" ? " per pod" : ""}` : "no cap";
    $("pod-source").textContent = cfg.podSource || "";
    $("pods-note").textContent = cfg.mode === "upstream"
      ? "Upstream mode: each of these pods is capped on its own, at the 101 (left)."
      : "Envoy spreads connections over these echo pods round robin. They are not what is capped: in inbound mode the " +
        "sidecar counts every connection to the pod it fronts (left), whichever echo pod answers.";
  } catch (e) {
    $("limits").textContent = "no /demo/config: " + e.message;
  }
  $("btn-open").onclick = () => openConnection();
  $("btn-open5").onclick = async () => { for (let i = 0; i < 5; i++) await openConnection(); };
  $("btn-close").onclick = closeOne;
  $("btn-close-all").onclick = closeAll;
  $("btn-send").onclick = sendEach;
  updateButtons();
  loop(pollSeries, 1000);
  await loop(pollState, 400);
}
window.demo = { openConnection, closeOne, closeAll, conns: () => conns.map((c) => ({ id: c.id, state: c.state, reason: c.li.getAttribute("data-reason") })) };
main();
