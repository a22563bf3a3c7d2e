// The client side of test/fleet/clients.test.ts in a worker thread (the machine's second core), plain JavaScript so
// that the worker needs no TypeScript loader. Real `ws` clients in concurrent loops: connect through a random target
// URL; open → hold → send "bye" (the pod ends the socket) → wait for the close; refused → count the status, again.
// Messages in: {cmd: "start", targets, clients, seed, holdMin, holdMax, backoffMs} | {cmd: "targets", targets} |
// {cmd: "stop"}. Out, after "stop": {counts} (see LoadCounts in clients_support.ts). One worker serves one load at a
// time, for the whole suite.
import { parentPort } from "node:worker_threads";
import WebSocket from "ws";

function rng(seed) { // mulberry32, as test/filter/support.ts rng()
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** resolves {kind: "open", ws} | {kind: "rejected", status} | {kind: "error", message}; bounded by timeoutMs */
function connect(url, timeoutMs) {
  return new Promise((resolve) => {
    let settled = false;
    // x-test-proxy: the pod learns which proxy admitted the socket (clients_support.ts CountingPod.openThrough)
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, headers: { "x-test-proxy": url } });
    const done = (o) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => { ws.terminate(); done({ kind: "error", message: "no handshake answer" }); }, timeoutMs + 100);
    ws.on("open", () => done({ kind: "open", ws }));
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      res.on("end", () => done({ kind: "rejected", status }));
      res.on("close", () => done({ kind: "rejected", status }));
      res.on("error", () => done({ kind: "rejected", status }));
    });
    ws.on("error", (e) => done({ kind: "error", message: e.message }));
  });
}

function closed(ws, timeoutMs) {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { ws.terminate(); resolve(); }, timeoutMs);
    ws.once("close", () => { clearTimeout(t); resolve(); });
  });
}

let run;

function start(o) {
  const rand = rng(o.seed);
  let targets = o.targets;
  const counts = { attempts: 0, admitted: 0, refused: {}, errors: 0, errorSamples: [], clientOpen: 0, clientMax: 0, admitsByTarget: {} };
  let stopped = false;
  const wake = new Set();
  const sleep = (ms) => new Promise((res) => {
    if (stopped || ms <= 0) return res();
    const done = () => { clearTimeout(t); wake.delete(done); res(); };
    const t = setTimeout(done, ms);
    wake.add(done);
  });
  const loop = async () => {
    for (let i = 0; i < 1_000_000 && !stopped; i++) { // bounded; "stop" ends it
      if (targets.length === 0) { await sleep(20); continue; }
      const url = targets[Math.floor(rand() * targets.length)];
      counts.attempts++;
      const r = await connect(url, 8000);
      if (r.kind === "open") {
        counts.admitted++;
        counts.admitsByTarget[url] = (counts.admitsByTarget[url] ?? 0) + 1;
        counts.clientOpen++;
        if (counts.clientOpen > counts.clientMax) counts.clientMax = counts.clientOpen;
        const gone = closed(r.ws, 10_000);
        r.ws.on("error", () => {});
        await sleep(o.holdMin + Math.floor(rand() * (o.holdMax - o.holdMin)));
        if (r.ws.readyState === WebSocket.OPEN) r.ws.send("bye");
        await gone;
        counts.clientOpen--;
      } else if (r.kind === "rejected") {
        counts.refused[r.status] = (counts.refused[r.status] ?? 0) + 1;
        await sleep(o.backoffMs ?? 0);
      } else {
        counts.errors++;
        if (counts.errorSamples.length < 5) counts.errorSamples.push(r.message);
        await sleep(20);
      }
    }
  };
  const loops = Array.from({ length: o.clients }, () => loop());
  return {
    setTargets: (t) => { targets = t; },
    stop: async () => {
      stopped = true;
      for (const w of [...wake]) w();
      await Promise.all(loops);
      return counts;
    },
  };
}

parentPort.on("message", async (m) => {
  if (m.cmd === "start") run = start(m);
  else if (m.cmd === "targets") run?.setTargets(m.targets);
  else if (m.cmd === "stop") {
    const counts = run ? await run.stop() : undefined;
    run = undefined;
    parentPort.postMessage({ counts });
  }
});
