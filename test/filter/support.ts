// Helpers for the filter tests: the real release module (build/ws-governor.wasm) inside the Envoy host emulator
// (test/emulator/host). No assertions about behaviour here, only plumbing and decoders of the shared-data formats
// (assembly/core/codec.ts), written independently of the filter so that a format change is noticed.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EnvoyProcess, PluginLoadError } from "../emulator/host/index.ts";
import type {
  DownstreamConnection, FilterStream, HeaderList, LocalReply, LogEntry, PluginHandle, ProcessOptions, StepResult,
} from "../emulator/host/index.ts";

export { EnvoyProcess, PluginLoadError };
export type { FilterStream, HeaderList, LocalReply, LogEntry, PluginHandle, StepResult };

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WASM_PATH = join(ROOT, "build/ws-governor.wasm");
export const G = "wasmcustom.ws_governor.";
export const VMID = ""; // vm_config.vm_id as Istio sets it (the emulator's default)

let wasmCache: Uint8Array | undefined;
export function wasm(): Uint8Array {
  if (!wasmCache) {
    assert.ok(existsSync(WASM_PATH), `${WASM_PATH} missing: run \`make build\` first`);
    wasmCache = new Uint8Array(readFileSync(WASM_PATH));
  }
  return wasmCache;
}

/** envoy/envoy.yaml's stats_tags (docs/contracts.md), so /stats/prometheus gets the labels. */
export const STATS_TAGS = ["reason", "decision", "direction", "kind", "code"].map((t) => ({
  tagName: t,
  regex: `^wasmcustom\\.ws_governor\\.\\w+(\\.${t}\\.(\\w+))$`,
}));

export interface Env {
  proc: EnvoyProcess;
  h: PluginHandle;
  logs: LogEntry[];
  /** full stat value ("wasmcustom.ws_governor." + name), 0 when undefined, after every VM's tick (the filter hands
   *  counters and the gauge to Envoy on its tick: host/metrics.ts) */
  stat(name: string): number;
  /** the value as Envoy holds it right now, no tick first */
  rawStat(name: string): number;
  close(): void;
}

export interface EnvOptions {
  concurrency?: number;
  pod?: string;
  config?: Record<string, unknown> | string;
  failurePolicy?: "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";
  process?: Partial<ProcessOptions>;
  /** the module to load (default: build/ws-governor.wasm) */
  module?: Uint8Array;
}

export function makeEnv(o: EnvOptions = {}): Env {
  const logs: LogEntry[] = [];
  const proc = new EnvoyProcess({
    concurrency: o.concurrency ?? 2,
    virtualTime: true,
    node: { id: "sidecar~10.0.0.10~pod-a.ns~ns.svc.cluster.local", metadata: { NAME: o.pod ?? "pod-a" } },
    statsTags: STATS_TAGS,
    onLog: (e) => logs.push(e),
    maxLogEntries: 200000,
    // a fixed epoch keeps runs deterministic (the emulator's ns clock is a double: nowMs·1e6 > 2^53 rounds)
    clock: { nowMs: () => 1_700_000_000_000 },
    ...o.process,
  });
  const configuration = typeof o.config === "string" ? o.config : JSON.stringify(o.config ?? {});
  let h: PluginHandle;
  try {
    h = proc.addPlugin({ wasm: o.module ?? wasm(), configuration, failurePolicy: o.failurePolicy ?? "FAIL_CLOSED" });
  } catch (e) {
    proc.close();
    throw e;
  }
  return {
    proc, h, logs,
    stat: (name) => { proc.tickAll(); return proc.stats.get(G + name) ?? 0; },
    rawStat: (name) => proc.stats.get(G + name) ?? 0,
    close: () => proc.close(),
  };
}

/** Loads a configuration that must fail; returns the error and the logs. */
export function loadFailure(config: Record<string, unknown> | string, module: Uint8Array = wasm()): { error: unknown; logs: LogEntry[] } {
  const logs: LogEntry[] = [];
  const proc = new EnvoyProcess({ concurrency: 1, virtualTime: true, node: { metadata: { NAME: "pod-a" } }, onLog: (e) => logs.push(e) });
  try {
    proc.addPlugin({ wasm: module, configuration: typeof config === "string" ? config : JSON.stringify(config) });
    return { error: undefined, logs };
  } catch (e) {
    return { error: e, logs };
  } finally {
    proc.close();
  }
}

let connId = 1;
/** A downstream connection. A loopback source connects to a loopback address, as on a real host, unless `destination`
 *  says otherwise (e.g. a source.address that Envoy took from x-forwarded-for on a connection to the pod IP). */
export function conn(source = "10.0.0.1:40000", protocol: "HTTP/1.1" | "HTTP/2" = "HTTP/1.1",
                     destination?: string): DownstreamConnection {
  const loop = /^(127\.|\[::1\])/.test(source);
  return { id: connId++, sourceAddress: source, destinationAddress: destination ?? (loop ? "127.0.0.1:8080" : "10.0.0.10:8080"), protocol };
}

export function upgradeHeaders(extra: HeaderList = [], path = "/ws"): HeaderList {
  return [
    [":method", "GET"], [":path", path], [":authority", "pod-a.example"], [":scheme", "http"],
    ["upgrade", "websocket"], ["connection", "Upgrade"], ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="],
    ["sec-websocket-version", "13"], ["x-forwarded-proto", "http"], ["x-request-id", "r-1"], ...extra,
  ];
}

export function plainHeaders(path = "/api/x", extra: HeaderList = []): HeaderList {
  return [[":method", "GET"], [":path", path], [":authority", "pod-a.example"], [":scheme", "http"], ...extra];
}

export const H101: HeaderList = [[":status", "101"], ["upgrade", "websocket"], ["connection", "Upgrade"],
  ["sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]];
export const H200: HeaderList = [[":status", "200"], ["content-length", "2"]];

export function isContinue(r: StepResult): boolean {
  return r.kind === "continue";
}

export function reply(r: StepResult): LocalReply {
  assert.equal(r.kind, "localReply", `expected a local reply, got ${JSON.stringify(r).slice(0, 300)}`);
  return (r as Extract<StepResult, { kind: "localReply" }>).reply;
}

export function header(h: HeaderList, name: string): string | undefined {
  return h.find(([k]) => k === name)?.[1];
}

export interface Opened { s: FilterStream; admitted: boolean; r: StepResult }

/** Upgrade request on `worker`; if it passes, the upstream answers 101. Returns whether both steps continued. */
export function open(h: PluginHandle, worker = 0, source = "10.0.0.1:40000", extra: HeaderList = []): Opened {
  const s = h.newStream(worker, conn(source));
  const r = s.decodeHeaders(upgradeHeaders(extra), false);
  if (r.kind !== "continue") return { s, admitted: false, r };
  const r2 = s.encodeHeaders(H101, false);
  return { s, admitted: r2.kind === "continue", r: r2 };
}

/** A local reply goes to the client; the proxy then completes the stream (api.ts host conventions). */
export function finishReply(s: FilterStream): void {
  if (!s.ended) s.complete();
}

// ---------------------------------------------------------------------------------------------------------
// shared-data values (assembly/core/codec.ts)

export interface LedgerValue { name: string; rejected: bigint; shares: Map<number, number>; total: number }

/** Decodes a pod/client ledger value: W 1 1 | u16 nameLen | name | u64 rejected | u16 n | n × (u32 vm, u32 count). */
export function decodeLedger(v: Uint8Array): LedgerValue | null {
  if (v.length === 0) return { name: "", rejected: 0n, shares: new Map(), total: 0 };
  if (v.length < 5 || v[0] !== 0x57 || v[1] !== 1 || v[2] !== 1) return null;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const nameLen = dv.getUint16(3, true);
  if (v.length < 5 + nameLen + 10) return null;
  const name = Buffer.from(v.subarray(5, 5 + nameLen)).toString("utf8");
  let o = 5 + nameLen;
  const rejected = dv.getBigUint64(o, true); o += 8;
  const n = dv.getUint16(o, true); o += 2;
  if (v.length !== o + n * 8) return null;
  const shares = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const vm = dv.getUint32(o, true), c = dv.getUint32(o + 4, true);
    o += 8;
    if (c > 0) shares.set(vm, c);
    total += c;
  }
  return { name, rejected, shares, total };
}

export function encodeLedger(name: string, shares: Array<[number, number]>, rejected = 0n): Uint8Array {
  const nb = Buffer.from(name, "utf8");
  const out = new Uint8Array(3 + 2 + nb.length + 8 + 2 + shares.length * 8);
  const dv = new DataView(out.buffer);
  out[0] = 0x57; out[1] = 1; out[2] = 1;
  dv.setUint16(3, nb.length, true);
  out.set(nb, 5);
  let o = 5 + nb.length;
  dv.setBigUint64(o, rejected, true); o += 8;
  dv.setUint16(o, shares.length, true); o += 2;
  for (const [vm, c] of shares) { dv.setUint32(o, vm, true); dv.setUint32(o + 4, c, true); o += 8; }
  return out;
}

/** Leases: W 1 3 | u16 n | n × (u32 vm, u64 beatMs). */
export function decodeLeases(v: Uint8Array): Map<number, number> | null {
  if (v.length === 0) return new Map();
  if (v.length < 5 || v[0] !== 0x57 || v[1] !== 1 || v[2] !== 3) return null;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const n = dv.getUint16(3, true);
  if (v.length !== 5 + n * 12) return null;
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) m.set(dv.getUint32(5 + i * 12, true), Number(dv.getBigUint64(9 + i * 12, true)));
  return m;
}

/** Each VM's published gauge share: bits 32–62 of its lease value when bit 63 is set (assembly/core/codec.ts). */
export function leaseGauges(proc: EnvoyProcess, prefix = "wsg"): Map<number, number> {
  const e = proc.sharedData.get(VMID, prefix + ":vms");
  assert.ok(e, "lease table missing");
  const dv = new DataView(e.value.buffer, e.value.byteOffset, e.value.byteLength);
  const m = new Map<number, number>();
  for (let o = 5; o + 12 <= e.value.length; o += 12) {
    const hi = dv.getUint32(o + 8, true);
    m.set(dv.getUint32(o, true), hi >= 0x80000000 ? hi - 0x80000000 : -1);
  }
  return m;
}

export function ledgerAt(proc: EnvoyProcess, key: string): LedgerValue | null {
  const e = proc.sharedData.get(VMID, key);
  if (!e) return null;
  return decodeLedger(e.value);
}

/** Every pod-slot ledger (wsg:pod:<i>) currently in shared data. */
export function podLedgers(proc: EnvoyProcess, prefix = "wsg"): Map<string, LedgerValue> {
  const out = new Map<string, LedgerValue>();
  for (const k of proc.sharedData.keys(VMID)) {
    if (!k.startsWith(prefix + ":pod:")) continue;
    const l = ledgerAt(proc, k);
    assert.ok(l, `${k} does not decode`);
    out.set(k, l);
  }
  return out;
}

/** Sum of every pod slot's shares (or of one pod's). */
export function podTotal(proc: EnvoyProcess, pod?: string, prefix = "wsg"): number {
  let t = 0;
  for (const l of podLedgers(proc, prefix).values()) if (pod === undefined || l.name === pod) t += l.total;
  return t;
}

export function clientTotal(proc: EnvoyProcess, prefix = "wsg"): number {
  let t = 0;
  for (const k of proc.sharedData.keys(VMID)) {
    if (!k.startsWith(prefix + ":cli:")) continue;
    const l = ledgerAt(proc, k);
    assert.ok(l, `${k} does not decode`);
    t += l.total;
  }
  return t;
}

export function leases(proc: EnvoyProcess, prefix = "wsg"): Map<number, number> {
  const e = proc.sharedData.get(VMID, prefix + ":vms");
  assert.ok(e, "lease table missing");
  const l = decodeLeases(e.value);
  assert.ok(l, "lease table does not decode");
  return l;
}

/** Sum of the shared-data calls of a worker (upgrade detection must not touch shared data for plain traffic). */
export function sharedCalls(h: PluginHandle, worker: number): number {
  const c = h.hostCalls(worker);
  return c.get("proxy_get_shared_data") + c.get("proxy_set_shared_data");
}

/** Parses Prometheus text into "name{labels}" → value. */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(-?[0-9.eE+]+|NaN|[+-]Inf)\s*$/.exec(line.trim());
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

export function bodyText(r: LocalReply): string {
  return Buffer.from(r.body).toString("utf8");
}

/** Deterministic PRNG (mulberry32) so racing tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** assert.ok with a message always: node's generated message re-reads the (tsx-transformed) source and can hang. */
export function ok(value: unknown, message?: string): asserts value {
  assert.ok(value, message ?? "expected a truthy value");
}

/** active_connections after every VM's tick; fails when it went negative (Envoy's gauge is a u64 that would wrap) */
export function gauge(e: Env): number {
  const g = e.stat("active_connections");
  ok(g < 2 ** 63, `active_connections went negative (u64 wrap): ${g}`);
  return g;
}

/** A foreign write of the same bytes: only the cas changes, so the writer in flight gets a CasMismatch. */
export function bump(e: Env, key: string): void {
  const cur = e.proc.sharedData.get(VMID, key);
  if (cur) e.proc.sharedData.put(VMID, key, cur.value);
}
