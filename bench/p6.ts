// P6 (issue 12, fleet mode): etcd round trips on the admission path per admitted upgrade at steady state, background
// etcd calls per second, and the admission latency of the fleet module against the local module, in one run.
// Real etcd on loopback (test/support/etcd.ts), emulated Envoy processes with real timers and real HTTP calls.
//
// Load (the same for both arms): R processes × W workers; every step picks a process at random and either opens an
// upgrade (request headers; 101 once admitted) or completes one of its open connections. A process's count (open +
// waiting) is pushed back into [level − band, level + band) (below: open; at or above: close; inside: a fair coin),
// so after the warm-up it fluctuates by at most 2·band < `block` below the grant it reached in the warm-up. Steps
// are paced at `rate` per second for the whole fleet (at most 64 per event-loop turn, so etcd answers are not held up).
// Each round runs a fleet phase and a local phase (order alternating); both arms keep their connections open between
// phases. Last, a load-growth phase (fleet only): every process's band moves up by `growth` slots (a few blocks) over
// `growthMs`: the admission-path calls of a load change per block, and the latency of upgrades that wait for etcd.
//
// Admission latency = wall time from the call of decodeHeaders (upgrade request headers) to the decision: its return
// when it is continue / local reply, or the host's onAsync (proxy_continue_stream or the local reply from the
// http-call callback) when the module waited for etcd.
import { EnvoyProcess, type PluginHandle } from "../test/emulator/host/index.ts";
import type { FilterStream, StepResult } from "../test/emulator/host/api.ts";
import type { HttpCallClient } from "../test/emulator/host/http_call.ts";
import { etcdUnavailable, startEtcd } from "../test/support/etcd.ts";
import { rng } from "../test/filter/support.ts";
import { UPGRADE_REQ, UPGRADE_RESP } from "./lib/host.ts";
import { fmtInt } from "./lib/measure.ts";
import type { Report } from "./lib/report.ts";

export interface P6Params {
  replicas: number; workers: number; cap: number; level: number; band: number; block: number;
  rate: number; warmMs: number; localWarmMs: number; phaseMs: number; rounds: number; growth: number; growthMs: number;
}
export const P6_FULL: P6Params = { replicas: 3, workers: 2, cap: 3000, level: 200, band: 6, block: 16, rate: 3000,
  warmMs: 8000, localWarmMs: 2000, phaseMs: 8000, rounds: 3, growth: 64, growthMs: 5000 };
export const P6_SMOKE: P6Params = { replicas: 3, workers: 2, cap: 300, level: 30, band: 6, block: 16, rate: 1000,
  warmMs: 1000, localWarmMs: 300, phaseMs: 500, rounds: 1, growth: 32, growthMs: 600 };

const G = "wasmcustom.ws_governor.";
const PREFIX = "/bench-p6/";
/** calls that do not depend on the load (docs/fleet.md §7): keepalives, lease grants, and keys no admission touches */
const BACKGROUND_PATHS = new Set(["/v3/lease/keepalive", "/v3/lease/grant"]);
const BACKGROUND_KEYS = new Set(["stats", "want", "holders", "config"]);

/** counts the HTTP calls of the processes it is installed on, by "<path> <first key segment under the prefix>" */
class CallCounter {
  readonly byLabel = new Map<string, number>();
  install(http: HttpCallClient): void {
    const send = http.send.bind(http);
    http.send = (vm, root, cluster, headers, body, timeoutMs, token) => {
      const label = callLabel(headers.find(([k]) => k === ":path")?.[1] ?? "?", body);
      this.byLabel.set(label, (this.byLabel.get(label) ?? 0) + 1);
      return send(vm, root, cluster, headers, body, timeoutMs, token);
    };
  }
  snapshot(): Map<string, number> {
    return new Map(this.byLabel);
  }
}

function callLabel(path: string, body: Uint8Array): string {
  let key = "";
  try {
    key = firstKey(JSON.parse(Buffer.from(body).toString("utf8")));
  } catch { /* not JSON: no key */ }
  const k = Buffer.from(key, "base64").toString("utf8");
  const seg = k.startsWith(PREFIX) ? k.slice(PREFIX.length).split("/")[0] + "/" : key ? "?" : "-";
  return `${path} ${seg}`;
}
function firstKey(v: unknown): string {
  if (v === null || typeof v !== "object") return "";
  const o = v as Record<string, unknown>;
  if (typeof o.key === "string") return o.key;
  for (const x of Object.values(o)) {
    const k = firstKey(x);
    if (k) return k;
  }
  return "";
}
export function isBackground(label: string): boolean {
  const [path, seg] = label.split(" ");
  return BACKGROUND_PATHS.has(path) || BACKGROUND_KEYS.has(seg.replace(/\/$/, ""));
}

interface Proc { proc: EnvoyProcess; h: PluginHandle; open: FilterStream[]; waiting: number }

/** what one phase of an arm measured */
class Tally {
  samples: number[] = [];      // admission latency of every decided upgrade, µs
  waitSamples: number[] = [];  // the part of them that waited for etcd
  admitted = 0; refused = 0; waits = 0; odd = 0; steps = 0;
  readonly refusals = new Map<string, number>();
  refusalText(): string {
    return this.refused === 0 && this.odd === 0 ? "none refused" :
      `${this.refused} refused ${JSON.stringify(Object.fromEntries(this.refusals))}${this.odd ? `, ${this.odd} other` : ""}`;
  }
}

/** one arm: R processes running one module, driven by the load above */
class P6Arm {
  readonly procs: Proc[] = [];
  readonly calls = new CallCounter();
  /** the phase the next steps count in (an upgrade counts in the phase it started in) */
  tally = new Tally();
  lo: number; hi: number;
  private conns = 0;
  constructor(readonly name: string, wasm: Uint8Array, configuration: string, p: P6Params, etcdPort: number,
              private readonly rand: () => number) {
    this.lo = p.level - p.band;
    this.hi = p.level + p.band;
    for (let i = 0; i < p.replicas; i++) {
      const proc = new EnvoyProcess({
        concurrency: p.workers, virtualTime: false, logLevel: "warn", maxLogEntries: 200,
        node: { id: `gw~bench-${name}-${i}`, metadata: { NAME: `bench-${name}-${i}` } },
        clusters: etcdPort > 0 ? { etcd: { endpoints: [{ host: "127.0.0.1", port: etcdPort }], connectTimeoutMs: 500 } } : {},
      });
      this.calls.install(proc.httpCalls);
      const h = proc.addPlugin({ wasm, configuration, failurePolicy: "FAIL_CLOSED" });
      this.procs.push({ proc, h, open: [], waiting: 0 });
    }
  }

  /** open or close one connection on a random process */
  step(): void {
    const t = this.tally;
    t.steps++;
    const p = this.procs[Math.floor(this.rand() * this.procs.length)];
    const n = p.open.length + p.waiting;
    const up = n < this.lo ? true : n >= this.hi ? false : this.rand() < 0.5;
    if (!up) {
      if (p.open.length === 0) return;
      const i = Math.floor(this.rand() * p.open.length);
      const s = p.open[i];
      p.open[i] = p.open[p.open.length - 1];
      p.open.pop();
      s.complete();
      return;
    }
    const c = this.conns++;
    const s = p.h.newStream(Math.floor(this.rand() * p.h.workers), {
      id: c + 1, sourceAddress: `10.3.${(c >> 8) & 255}.${c & 255}:${40000 + (c % 20000)}`,
      destinationAddress: "10.0.0.2:8080", protocol: "HTTP/1.1" });
    let waited = false, decided = false;
    const decide = (r: StepResult, t0: number) => {
      if (decided) return;
      decided = true;
      const us = (performance.now() - t0) * 1000;
      t.samples.push(us);
      if (waited) {
        p.waiting--;
        t.waitSamples.push(us);
      }
      if (r.kind === "continue" && s.encodeHeaders(UPGRADE_RESP, false).kind === "continue") {
        t.admitted++;
        p.open.push(s);
        return;
      }
      if (r.kind === "localReply") {
        t.refused++;
        t.refusals.set(r.reply.details, (t.refusals.get(r.reply.details) ?? 0) + 1);
      } else t.odd++;
      if (!s.ended) s.complete();
    };
    const t0 = performance.now();
    s.events = { onAsync: (r, dir) => { if (dir === "request" || r.kind === "localReply") decide(r, t0); } };
    const r = s.decodeHeaders(UPGRADE_REQ, true);
    if (r.kind === "stop" && !decided) {
      waited = true;
      p.waiting++;
      t.waits++;
    } else decide(r, t0);
  }

  /** steps paced at `rate`/s for `ms` of wall time; then waits (bounded) until no upgrade is left waiting */
  async drive(rate: number, ms: number, tally: Tally, each?: (fraction: number) => void): Promise<void> {
    this.tally = tally;
    const t0 = performance.now();
    let done = 0;
    for (let now = t0; now - t0 < ms; now = performance.now()) {
      each?.((now - t0) / ms);
      const due = Math.min(64, Math.floor(((now - t0) * rate) / 1000) - done);
      for (let i = 0; i < due; i++) this.step();
      done += Math.max(0, due);
      await sleep(1);
    }
    for (let i = 0; i < 500 && this.procs.some((p) => p.waiting > 0); i++) await sleep(10);
  }

  waiting(): number {
    return this.procs.reduce((a, p) => a + p.waiting, 0);
  }
  stat(name: string): number {
    return this.procs.reduce((a, p) => a + (p.proc.stats.get(G + name) ?? 0), 0);
  }
  failed(): boolean {
    return this.procs.some((p) => Array.from({ length: p.h.workers }, (_, w) => p.h.vmFailed(w)).some(Boolean));
  }
  close(): void {
    for (const p of this.procs) {
      for (const s of p.open) s.complete();
      p.open.length = 0;
      p.proc.close();
    }
  }
}

/** P6 rows into `report` (a pending row with the reason when no etcd is installed; CI=true makes that an error, as
 *  for the fleet tests). Throws on a trapped VM or an etcd that does not start. */
export async function runP6(report: Report, p: P6Params, fleetWasm: Uint8Array, localWasm: Uint8Array,
                            say: (s: string) => void): Promise<void> {
  const why = etcdUnavailable();
  if (why) {
    if (process.env.CI === "true") throw new Error(`P6: etcd is required when CI=true: ${why}`);
    console.log(`P6 skipped: ${why}`);
    report.pending("P6", "etcd round trips per admitted upgrade; added admission latency", `skipped: ${why}`, "≤0.1");
    return;
  }
  const etcd = await startEtcd({ name: "ws-governor-bench" });
  const arms: P6Arm[] = [];
  try {
    const port = Number(new URL(etcd.clientUrl).port);
    const base = { pod_name: "bench-pod", max_connections_per_pod: p.cap, rate_limit: null, metrics_path: "", health_path: "" };
    const fleetCfg = JSON.stringify({ ...base, fleet: { cluster: "etcd", prefix: PREFIX, block: p.block } });
    const fleet = new P6Arm("fleet", fleetWasm, fleetCfg, p, port, rng(6));
    arms.push(fleet);
    const local = new P6Arm("local", localWasm, JSON.stringify(base), p, 0, rng(6));
    arms.push(local);
    say(`P6: etcd ${etcd.version} on ${etcd.clientUrl}; ${p.replicas} processes × ${p.workers} workers per arm; warm-up ${p.warmMs} ms`);
    const warm = new Tally();
    await fleet.drive(p.rate, p.warmMs, warm);
    await local.drive(p.rate, p.localWarmMs, new Tally());

    // steady state: rounds of a fleet phase and a local phase
    const c0 = fleet.calls.snapshot(), s0 = fleet.stat("fleet_calls_total"), t0 = performance.now();
    const tf = new Tally(), tl = new Tally();
    let fleetMs = 0, localMs = 0;
    for (let r = 0; r < p.rounds; r++) {
      for (const a of r % 2 === 0 ? [fleet, local] : [local, fleet]) { // alternating order: neither arm always goes first
        const t = performance.now();
        await a.drive(p.rate, p.phaseMs, a === fleet ? tf : tl);
        a.tally = new Tally(); // answers after the phase do not count in it
        if (a === fleet) fleetMs += performance.now() - t; else localMs += performance.now() - t;
      }
      say(`P6 round ${r + 1}/${p.rounds}: fleet ${fmtInt(tf.admitted)} admitted, ${fmtInt(tf.waits)} waited; local ${fmtInt(tl.admitted)} admitted`);
    }
    const windowS = (performance.now() - t0) / 1000;
    const c1 = fleet.calls.snapshot(), s1 = fleet.stat("fleet_calls_total");

    // load growth (fleet only): every process's band moves up by `growth` slots over growthMs, then holds
    const tg = new Tally();
    const lo0 = fleet.lo, hi0 = fleet.hi;
    await fleet.drive(p.rate, p.growthMs, tg, (f) => {
      const up = Math.round(Math.min(1, f * 1.25) * p.growth); // the last fifth holds the new band
      fleet.lo = lo0 + up;
      fleet.hi = hi0 + up;
    });
    const c2 = fleet.calls.snapshot();
    say(`P6 growth: +${p.growth} per process, ${fmtInt(tg.admitted)} admitted, ${fmtInt(tg.waits)} waited`);
    for (const a of arms) if (a.failed()) throw new Error(`P6: a ${a.name} VM trapped`);

    const calls = (from: Map<string, number>, to: Map<string, number>) => {
      const labels = [...new Set([...from.keys(), ...to.keys()])].sort();
      const d = new Map(labels.map((l) => [l, (to.get(l) ?? 0) - (from.get(l) ?? 0)] as [string, number]).filter(([, n]) => n > 0));
      let admission = 0, background = 0;
      for (const [l, n] of d) if (isBackground(l)) background += n; else admission += n;
      return { d, admission, background };
    };
    const st = calls(c0, c1), gr = calls(c1, c2);
    const perUpgrade = tf.admitted > 0 ? st.admission / tf.admitted : NaN;
    const q = quantile;
    const us = (x: number) => (!isFinite(x) ? "n/a" : x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(1)} µs`);
    const lf = { p50: q(tf.samples, 0.5), p99: q(tf.samples, 0.99) }, ll = { p50: q(tl.samples, 0.5), p99: q(tl.samples, 0.99) };
    const show = (d: Map<string, number>) => [...d].map(([l, n]) => `${l} ${fmtInt(n)}`).join(", ") || "none";

    report.le("P6", `etcd round trips on the admission path per admitted upgrade at steady state (${fmtInt(tf.admitted)} upgrades)`,
      perUpgrade, 0.1, (v) => `${v.toFixed(4)} (${fmtInt(st.admission)} calls / ${fmtInt(tf.admitted)} admitted; ${tf.refusalText()})`,
      "≤0.1", (d) => d.toFixed(4), perUpgrade.toFixed(4));
    report.info("P6", "admission latency p50, fleet vs local (request headers → decision)",
      `fleet ${us(lf.p50)}, local ${us(ll.p50)}: added ${us(lf.p50 - ll.p50)}`);
    report.info("P6", "admission latency p99, fleet vs local",
      `fleet ${us(lf.p99)}, local ${us(ll.p99)}: added ${us(lf.p99 - ll.p99)}; ` +
      `${fmtInt(tf.waits)} of ${fmtInt(tf.samples.length)} fleet decisions waited for etcd` +
      (tf.waitSamples.length ? ` (their p50 ${us(q(tf.waitSamples, 0.5))})` : ""));
    report.info("P6", "background etcd calls (keepalives, lease grants), whole fleet",
      `${(st.background / windowS).toFixed(2)} /s (${fmtInt(st.background)} in ${windowS.toFixed(1)} s)`);
    const blocks = (p.replicas * p.growth) / p.block;
    report.info("P6", `load growth: +${p.growth} connections per process in ${(p.growthMs / 1000).toFixed(1)} s (fleet)`,
      `${fmtInt(gr.admission)} admission-path calls = ${(gr.admission / blocks).toFixed(2)} per ${p.block} slots of growth; ` +
      `${fmtInt(tg.waits)} of ${fmtInt(tg.samples.length)} upgrades waited, p50 ${us(q(tg.waitSamples, 0.5))}, ` +
      `p99 ${us(q(tg.waitSamples, 0.99))}; ${tg.refusalText()}`);

    report.detail(`P6 etcd calls of the fleet arm by path and key under the prefix (steady window ${windowS.toFixed(1)} s: ` +
      `${p.rounds} × fleet phase + local phase, fleet_calls_total moved by ${fmtInt(s1 - s0)}, sends counted ` +
      `${fmtInt(st.admission + st.background)})`,
      ["call", "class", "warm-up", "steady window", "per admitted upgrade (steady)", "per second (steady)", "load growth"],
      [...new Set([...c2.keys()])].sort().map((l) => {
        const n = st.d.get(l) ?? 0;
        return [l, isBackground(l) ? "background" : "admission path", fmtInt(c0.get(l) ?? 0), fmtInt(n),
          (n / Math.max(1, tf.admitted)).toFixed(4), (n / windowS).toFixed(2), fmtInt(gr.d.get(l) ?? 0)];
      }));
    const row = (name: string, t: Tally, ms: number) => [name, fmtInt(t.samples.length), fmtInt(t.waits), t.refusalText(),
      us(q(t.samples, 0.5)), us(q(t.samples, 0.9)), us(q(t.samples, 0.99)), us(q(t.samples, 1)),
      ms > 0 ? `${(ms / 1000).toFixed(1)} s` : "–", ms > 0 ? fmtInt(t.steps / (ms / 1000)) : "–"];
    const waitRow = (name: string, t: Tally) => [name, fmtInt(t.waitSamples.length), fmtInt(t.waitSamples.length), "–",
      us(q(t.waitSamples, 0.5)), us(q(t.waitSamples, 0.9)), us(q(t.waitSamples, 0.99)), us(q(t.waitSamples, 1)), "–", "–"];
    report.detail(`P6 admission latency (request headers → decision), ${p.replicas} processes × ${p.workers} workers per ` +
      `arm, cap ${fmtInt(p.cap)}, each process's count in [${lo0}, ${hi0}), ${fmtInt(p.rate)} steps/s, real etcd ` +
      `${etcd.version} on loopback; ${show(st.d)} in the steady window`,
      ["arm / phase", "upgrades timed", "waited for etcd", "refused", "p50", "p90", "p99", "max", "measured time", "steps/s reached"],
      [row("fleet, steady", tf, fleetMs), row("local, steady", tl, localMs), row(`fleet, load growth +${p.growth}`, tg, p.growthMs),
        waitRow(`fleet, load growth: the upgrades that waited`, tg), waitRow(`fleet, warm-up from 0: the upgrades that waited`, warm)]);
    if (fleet.waiting() > 0 || local.waiting() > 0) console.log(`P6: ${fleet.waiting() + local.waiting()} upgrades still waiting at the end`);
  } finally {
    for (const a of arms) {
      try { a.close(); } catch (e) { console.log(`P6: ${a.name} close: ${(e as Error).message}`); }
    }
    await etcd.stop();
  }
}

function quantile(xs: number[], f: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(f * s.length) - 1))];
}
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
