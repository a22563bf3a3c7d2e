// Fleet tests: emulated Envoy processes running build/ws-governor-fleet.wasm, sharing one real etcd
// (test/support/etcd.ts) through an Envoy cluster "etcd". Real timers (ticks, keepalives) and real HTTP calls.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EnvoyProcess, ROOT, G, conn, upgradeHeaders, H101 } from "../filter/support.ts";
import type { FilterStream, LocalReply, LogEntry, PluginHandle, StepResult } from "../filter/support.ts";
import { after, before } from "node:test";
import { b64, etcdPost, prefixEnd, startEtcd, unb64, type Etcd } from "../support/etcd.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import type { RunningProxy } from "../emulator/proxy/index.ts";
import { afterTick, waitFor } from "../support/wait.ts";

export const FLEET_WASM = join(ROOT, "build/ws-governor-fleet.wasm");
let cache: Uint8Array | undefined;
export function fleetWasm(): Uint8Array {
  if (!cache) {
    assert.ok(existsSync(FLEET_WASM), `${FLEET_WASM} missing: run \`make build\` first`);
    cache = new Uint8Array(readFileSync(FLEET_WASM));
  }
  return cache;
}

export interface Replica {
  name: string;
  proc: EnvoyProcess;
  h: PluginHandle;
  logs: LogEntry[];
  stat(name: string): number;
  closed: boolean;
}

export function fleetConfig(clusterPrefix: string, o: Record<string, unknown> = {}, fleet: Record<string, unknown> = {}): string {
  return JSON.stringify({
    pod_name: "pod-x", max_connections_per_pod: 10, rate_limit: null, tick_ms: 100, ...o,
    fleet: { cluster: "etcd", prefix: clusterPrefix, lease_ttl_seconds: 2, call_timeout_ms: 1000, block: 2, ...fleet },
  });
}

export function startReplica(name: string, etcdPort: number, configuration: string, workers = 2): Replica {
  const logs: LogEntry[] = [];
  const proc = new EnvoyProcess({
    concurrency: workers,
    virtualTime: false,
    node: { id: `gw~${name}`, metadata: { NAME: name } },
    onLog: (e) => logs.push(e),
    maxLogEntries: 20000,
    clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: etcdPort }], connectTimeoutMs: 500 } },
  });
  const h = proc.addPlugin({ wasm: fleetWasm(), configuration, failurePolicy: "FAIL_CLOSED" });
  return { name, proc, h, logs, stat: (n) => proc.stats.get(G + n) ?? 0, closed: false };
}

/** The filter hands its counters to Envoy on its tick (at most tick_ms late; fleetConfig: 100 ms). A count that must
 *  have risen is polled for (bounded; on time-out the caller's assertion reports the value); returns the value. */
export async function statReaches(r: Replica, name: string, atLeast: number, timeoutMs = 3000): Promise<number> {
  await waitFor(() => r.stat(name) >= atLeast, { timeoutMs, intervalMs: 10, what: `${r.name}: ${name} >= ${atLeast}` })
    .catch(() => undefined);
  return r.stat(name);
}

/** One tick (fleetConfig's 100 ms) and a margin: before reading a count that must be exact or must not have moved. */
export const afterFleetTick = (tickMs = 100): Promise<void> => afterTick(tickMs);

/** How one upgrade ended: admitted (101 passed), refused (local reply) or, never acceptable, still hanging. */
export interface Upgrade {
  s: FilterStream;
  replica: Replica;
  outcome: Promise<{ admitted: boolean; reply?: LocalReply }>;
}

function settle(s: FilterStream, r: StepResult): { admitted: boolean; reply?: LocalReply } | undefined {
  if (r.kind === "continue") {
    const r2 = s.encodeHeaders(H101, false);
    return { admitted: r2.kind === "continue" };
  }
  if (r.kind === "localReply") {
    if (!s.ended) s.complete();
    return { admitted: false, reply: r.reply };
  }
  return undefined;
}

/** An upgrade on `worker` of `replica`: decided at once, or after the filter's etcd wait (onAsync), bounded. */
export function upgrade(replica: Replica, worker: number, waitMs = 5000, extra: Array<[string, string]> = []): Upgrade {
  const s = replica.h.newStream(worker, conn(`10.1.0.${1 + worker}:4${worker}000`));
  let resolveFn!: (v: { admitted: boolean; reply?: LocalReply }) => void;
  let rejectFn!: (e: Error) => void;
  const outcome = new Promise<{ admitted: boolean; reply?: LocalReply }>((res, rej) => { resolveFn = res; rejectFn = rej; });
  const timer = setTimeout(() => rejectFn(new Error(`${replica.name}: an upgrade waited > ${waitMs} ms`)), waitMs);
  const done = (v: { admitted: boolean; reply?: LocalReply }) => { clearTimeout(timer); resolveFn(v); };
  s.events = {
    onAsync: (r: StepResult, dir: string) => {
      if (dir !== "request" && r.kind !== "localReply") return;
      const v = settle(s, r);
      if (v) done(v);
    },
  };
  const r = s.decodeHeaders(upgradeHeaders(extra), true);
  const v = settle(s, r);
  if (v) done(v);
  else assert.equal(r.kind, "stop", `unexpected ${JSON.stringify(r).slice(0, 200)}`);
  return { s, replica, outcome };
}

/** Awaits every upgrade: the admitted ones (still open) and the refusals' details, in order. */
export async function outcomes(ups: Upgrade[]): Promise<{ open: Upgrade[]; refused: string[] }> {
  const open: Upgrade[] = [];
  const refused: string[] = [];
  for (const u of ups) {
    const o = await u.outcome;
    if (o.admitted) open.push(u);
    else refused.push(o.reply?.details ?? "?");
  }
  return { open, refused };
}

/** The slots etcd holds for `pod` (or, with `kind` "client", for a client bucket) under `prefix`: holder key → slots. */
export async function etcdSlots(clientUrl: string, prefix: string, pod = "pod-x", kind = "pod"): Promise<Map<string, number>> {
  const p = `${prefix}${kind}/${pod}/`;
  const r = await etcdPost<{ kvs?: Array<{ key: string; value?: string }> }>(clientUrl, "/v3/kv/range",
    { key: b64(p), range_end: b64(prefixEnd(p)) });
  const out = new Map<string, number>();
  for (const kv of r.kvs ?? []) out.set(unb64(kv.key), Number(unb64(kv.value)));
  return out;
}

export function sum(m: Map<string, number>): number {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
}

/** Log lines of a trap (an abort in the module, a failed export): a fleet test fails on any. */
export function traps(r: Replica): string[] {
  return r.logs.filter((l) => /failed: Uncaught|ws_governor: abort/.test(l.message)).map((l) => `${r.name}: ${l.message}`);
}

export function closeReplica(r: Replica): void {
  if (r.closed) return;
  r.closed = true;
  r.proc.close();
}

export function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** Inside a describe(): one real etcd for the suite (started unless the gate skips; a CI run without etcd fails),
 *  stopped after it together with every replica the suite pushed onto `replicas`. */
export function useEtcd(gate: { skip: string | false; failReason?: string }, replicas: Replica[],
                        started: (etcd: Etcd, port: number) => void): void {
  let etcd: Etcd | undefined;
  before(async () => {
    if (gate.skip) return;
    if (gate.failReason) throw new Error(gate.failReason);
    etcd = await startEtcd();
    started(etcd, Number(new URL(etcd.clientUrl).port));
  });
  after(async () => {
    for (const r of replicas) closeReplica(r);
    await etcd?.stop();
  });
}

/** Inside a describe(): a real etcd and one ws echo pod for the suite's loopback proxies; after it, the proxies the
 *  suite pushed onto `proxies`, the pod and etcd are stopped. `env.etcd` is undefined when the gate skips. */
export function useEtcdAndPod(gate: { skip: string | false; failReason?: string }, proxies: RunningProxy[]):
    { etcd?: Etcd; pods: PodServer[] } {
  const env: { etcd?: Etcd; pods: PodServer[] } = { pods: [] };
  before(async () => {
    if (gate.skip) return;
    if (gate.failReason) throw new Error(gate.failReason);
    env.etcd = await startEtcd();
    env.pods = await startPods(1);
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await Promise.all(env.pods.map((p) => p.kill()));
    await env.etcd?.stop();
  });
  return env;
}
