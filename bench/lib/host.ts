// One arm = one EnvoyProcess + one plugin. Upgrade lifecycles, streams held open ("live"), host-call counts.
import { EnvoyProcess, type PluginHandleImpl } from "../../test/emulator/host/index.ts";
import type { DownstreamConnection, FilterStream, HeaderList, StepResult } from "../../test/emulator/host/api.ts";

export const UPGRADE_REQ: HeaderList = [
  [":authority", "chat.example.com"], [":path", "/ws"], [":method", "GET"], [":scheme", "http"],
  ["upgrade", "websocket"], ["connection", "Upgrade"], ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="],
  ["sec-websocket-version", "13"], ["user-agent", "bench"]];
export const UPGRADE_RESP: HeaderList = [
  [":status", "101"], ["upgrade", "websocket"], ["connection", "Upgrade"],
  ["sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]];

/** P0: a plain request (no `upgrade`, not an endpoint path) and its response. */
export const PLAIN_REQ: HeaderList = [
  [":authority", "shop.example.com"], [":path", "/api/items?page=2"], [":method", "GET"], [":scheme", "http"],
  ["user-agent", "bench"], ["accept", "application/json"], ["x-request-id", "3f1c9a2e-5b7d-4e1f-9c2a-8d6b4f0e1a3c"]];
export const PLAIN_RESP: HeaderList = [
  [":status", "200"], ["content-type", "application/json"], ["content-length", "2"]];
const PLAIN_BODY = new TextEncoder().encode("{}");
/** P0: a plain request with a body (a POST; every gRPC call has this shape): headers arrive with eos = 0 */
export const POST_REQ: HeaderList = PLAIN_REQ.map(([k, v]) => [k, k === ":method" ? "POST" : v] as [string, string])
  .concat([["content-type", "application/json"], ["content-length", "2"]]);
const NO_BYTES = new Uint8Array(0);
const MSG_UP = new Uint8Array([0x82, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // masked binary "hello"
const MSG_DOWN = new Uint8Array([0x82, 0x02, 0x6f, 0x6b]);                          // binary "ok"

export const CONN: DownstreamConnection = {
  id: 1, sourceAddress: "10.1.2.3:40000", destinationAddress: "10.0.0.2:8080", protocol: "HTTP/1.1",
};

export class Arm {
  readonly proc: EnvoyProcess;
  readonly h: PluginHandleImpl;
  /** streams admitted and not closed, per worker */
  readonly live: FilterStream[][] = [];
  private ops = 0;
  /** virtual upgrades per second per worker: every 1000 upgrades the virtual clock moves by 1000/rate s, so ticks
   *  (heartbeat, the filter's periodic __collect) run as they would in Envoy at that rate; 0 = the clock stands still */
  rate = 1000;
  constructor(readonly name: string, wasm: Uint8Array, configuration: string, concurrency = 1) {
    this.proc = new EnvoyProcess({ concurrency, virtualTime: true, logLevel: "warn", maxLogEntries: 100 });
    this.h = this.proc.addPlugin({ wasm, configuration }) as PluginHandleImpl;
    for (let i = 0; i < concurrency; i++) this.live.push([]);
  }

  /** request headers (upgrade) + 101; returns the request-headers step result */
  admit(worker: number): { s: FilterStream; r: StepResult } {
    this.clock();
    const s = this.h.newStream(worker, CONN);
    const r = s.decodeHeaders(UPGRADE_REQ, false);
    if (r.kind === "continue") s.encodeHeaders(UPGRADE_RESP, false);
    return { s, r };
  }

  /** one full upgrade lifecycle: admit + 101 + complete */
  lifecycle(worker: number): boolean {
    this.clock();
    const s = this.h.newStream(worker, CONN);
    const r = s.decodeHeaders(UPGRADE_REQ, false);
    const ok = r.kind === "continue";
    if (ok) s.encodeHeaders(UPGRADE_RESP, false);
    s.complete();
    return ok;
  }

  /** P0, filter not wrapped: one plain request/response (HTTP/1: headers with eos, 200, the body, then its end).
   *  `body`: a POST with a body instead (headers with eos = 0, the body, the end-of-message chunk with eos = 1). */
  plain(worker: number, body = false): boolean {
    this.clock();
    const s = this.h.newStream(worker, CONN);
    const r = s.decodeHeaders(body ? POST_REQ : PLAIN_REQ, !body);
    if (r.kind === "continue") {
      if (body) {
        s.decodeData(PLAIN_BODY, false);
        s.decodeData(NO_BYTES, true);
      }
      s.encodeHeaders(PLAIN_RESP, false);
      s.encodeData(PLAIN_BODY, false);
      s.encodeData(NO_BYTES, true);
    }
    s.complete();
    return r.kind === "continue";
  }

  /** P0, filter wrapped in ExtensionWithMatcher + SkipFilter: Envoy 1.30–1.36 still creates the context and logs,
   *  so the stream gets on_context_create (lazily, from the log), on_log, on_done, on_delete and nothing else */
  skipped(worker: number): void {
    this.clock();
    this.h.newStream(worker, CONN).complete();
  }

  private msgStream: FilterStream | null = null;
  /** one WebSocket message each way on a stream held open after its 101 (a 5 B masked binary frame up, a 2 B
   *  unmasked one down): what every message costs on the data path */
  message(worker: number): void {
    let s = this.msgStream;
    if (s === null) {
      const a = this.admit(worker);
      if (a.r.kind !== "continue") throw new Error(`${this.name}: the message stream was not admitted (${a.r.kind})`);
      s = this.msgStream = a.s;
    }
    if (s.decodeData(MSG_UP, false).kind !== "continue" || s.encodeData(MSG_DOWN, false).kind !== "continue") {
      throw new Error(`${this.name}: a WebSocket message was not continued`);
    }
  }

  /** bring the live count of a worker to n (only grows), bounded by deadline; returns the live count reached */
  holdOpen(worker: number, n: number, deadline: number): number {
    const l = this.live[worker];
    while (l.length < n && performance.now() < deadline) {
      for (let k = 0; k < 256 && l.length < n; k++) {
        const { s, r } = this.admit(worker);
        if (r.kind !== "continue") throw new Error(`${this.name}: admission refused while holding streams open (${r.kind})`);
        l.push(s);
      }
    }
    return l.length;
  }

  private clock(): void {
    if (++this.ops === 1000) {
      this.ops = 0;
      if (this.rate > 0) this.proc.advance(1_000_000 / this.rate);
    }
  }

  closeAll(worker: number): void {
    for (const s of this.live[worker]) s.complete();
    this.live[worker].length = 0;
  }

  failed(): boolean {
    for (let i = 0; i < this.h.workers; i++) if (this.h.vmFailed(i)) return true;
    return false;
  }
  stat(name: string): number {
    return this.proc.stats.get(name) ?? 0;
  }
}

/** The filter's configuration for the benchmarks: admission always succeeds (cap high, no rate limit). */
export function filterConfig(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    pod_name: "bench-pod", max_connections_per_pod: 1000000, rate_limit: null, metrics_path: "", health_path: "",
    ...extra,
  });
}
