// StreamBase: a stream's state, header/body availability windows (§2.6), callback dispatch and on_log teardown (§2.4).
import type { DownstreamConnection, HeaderList, StepResult, StreamEvents } from "./api.ts";
import type { Ctx, PluginRt } from "./types.ts";
import type { Vm } from "./vm.ts";

export type Mode = "vm" | "passthrough" | "failclosed";
export type Phase = "" | "req_headers" | "req_body" | "req_trailers" | "resp_headers" | "resp_body" | "resp_trailers" | "lr" | "log";
export const STOP: StepResult = { kind: "stop" };
export const EMPTY = new Uint8Array(0);

export abstract class StreamBase {
  events: StreamEvents = {};
  ended = false;
  /** Envoy would hold this stream without answering (1.30–1.34 fail-closed, or a stuck local reply) */
  hung = false;
  routeCacheClears = 0;
  // header maps and their windows
  reqMap: HeaderList | null = null;
  respMap: HeaderList | null = null;
  reqTrailers: HeaderList | null = null;
  respTrailers: HeaderList | null = null;
  protected reqLive = false;
  protected respLive = false;
  protected reqTrLive = false;
  protected respTrLive = false;
  logPhase = false;
  protected phase: Phase = "";
  protected phaseEos = false;
  // bodies
  protected body: [Uint8Array, Uint8Array] = [EMPTY, EMPTY];
  protected bodyLive = [false, false];
  // set while this stream's own callback runs (after-call actions are recorded, not run)
  protected inStep = false;
  /** §13.1: proxy_close_stream / proxy_send_local_response called for this stream since its last callback began */
  protected acted: "close" | "reply" | null = null;
  // properties
  headersSeen = false;
  startMs: number;   // wall clock (request.time)
  startMono: number; // steady clock (request.duration)
  endMono = 0;
  responseCode: number | undefined;
  codeDetails: string | undefined;
  upstream: { address: string; port?: number; clusterName?: string } | undefined;
  route: { routeName?: string; clusterName?: string } = {};
  dynamicMetadata = new Map<string, Record<string, unknown>>();
  filterState = new Map<string, Uint8Array>();
  reqBodyBytes = 0;
  respBodyBytes = 0;

  constructor(readonly mode: Mode, readonly vm: Vm | null, readonly ctx: Ctx | null, readonly plugin: PluginRt,
              readonly conn: DownstreamConnection, readonly worker: number, protected readonly minor: number) {
    this.startMs = vm ? vm.proc.nowMs() : Date.now();
    this.startMono = vm ? vm.proc.monoMs() : performance.now();
  }
  get contextId(): number {
    return this.ctx ? this.ctx.id : 0;
  }

  setUpstream(info: { address: string; port?: number; clusterName?: string }): void {
    this.upstream = info;
  }
  setRoute(info: { routeName?: string; clusterName?: string }): void {
    this.route = { ...this.route, ...info };
  }
  /** dynamic metadata (metadata.filter_metadata.<ns>), as another filter (e.g. jwt_authn) would set it */
  setDynamicMetadata(ns: string, obj: Record<string, unknown>): void {
    this.dynamicMetadata.set(ns, obj);
  }

  // ---------------- hostcall side: availability windows ----------------

  constMap(type: number): HeaderList | null {
    switch (type) {
      case 0: return this.reqLive || this.logPhase ? this.reqMap : null;
      case 1: return this.reqTrLive || this.logPhase ? this.reqTrailers : null;
      case 2: return this.respLive || this.logPhase ? this.respMap : null;
      case 3: return this.respTrLive || this.logPhase ? this.respTrailers : null;
      default: return null;
    }
  }
  mutableMap(type: number): HeaderList | null {
    if (this.logPhase) return null;
    switch (type) {
      case 0: return this.reqLive ? this.reqMap : null;
      case 2: return this.respLive ? this.respMap : null;
      case 1:
        if (this.reqTrLive) return this.reqTrailers;
        if (this.phase === "req_body" && this.phaseEos) return (this.reqTrailers ??= []); // addDecodedTrailers
        return null;
      case 3:
        if (this.respTrLive) return this.respTrailers;
        if (this.phase === "resp_body" && this.phaseEos) return (this.respTrailers ??= []);
        return null;
      default: return null;
    }
  }
  headersModified(type: number): void {
    if (type === 0) this.routeCacheClears++;
  }
  clearRouteCache(): void {
    this.routeCacheClears++;
  }
  liveBody(type: 0 | 1): Uint8Array | null {
    return this.bodyLive[type] ? this.body[type] : null;
  }
  setLiveBody(type: 0 | 1, data: Uint8Array): void {
    this.body[type] = data;
  }

  // ---------------- callback dispatch ----------------

  protected cb(name: string, phase: Phase, n: number, eos: boolean): number | undefined {
    const vm = this.vm!;
    if (!vm.fn(name)) {
      vm.lastStop = false;
      return undefined;
    }
    this.phase = phase;
    this.phaseEos = eos;
    this.inStep = true;
    this.acted = null;
    let r: number | undefined;
    try {
      r = vm.call(name, this.ctx!, this.ctx!.id, n, eos ? 1 : 0);
    } finally {
      this.inStep = false;
      this.phase = "";
      this.phaseEos = false;
    }
    this.checkReturn(name, r);
    return r;
  }

  /** §13.1: Envoy runs the deferred reset / local reply when the outermost VM call returns, i.e. before the filter
   *  manager reads the status. Continue then runs the next filter (the router) on a destroyed stream: a defect. */
  protected checkReturn(name: string, r: number | undefined): void {
    const vm = this.vm!;
    if (r === undefined || this.acted === null || vm.failed) return;
    const kind = name.endsWith("_headers") ? "headers" : name.endsWith("_body") ? "body" : "trailers";
    const isContinue = kind === "headers" ? r === 0 || r === 2 : r === 0;
    if (!isContinue) return;
    const what = this.acted === "close" ? "proxy_close_stream" : "proxy_send_local_response";
    const want = kind === "body" ? "StopIterationNoBuffer (3)" : "StopIteration (1)";
    vm.proc.recordDefect({
      kind: this.acted === "close" ? "continue_after_close_stream" : "continue_after_local_reply",
      callback: name, returned: r, contextId: this.ctx!.id, vm: vm.name,
      message: `${name} (context ${this.ctx!.id}, ${vm.name}) returned ${r === 2 ? "ContinueAndEndStream (2)" : "Continue (0)"} ` +
        `after ${what} in the same callback: Envoy runs the deferred ${this.acted === "close" ? "reset" : "local reply"} ` +
        `before it reads the status and then continues the filter chain on a destroyed stream (crash class, ` +
        `envoy-host.md §13.1); return ${want}`,
    });
  }

  protected ensureCreated(): void {
    const ctx = this.ctx!;
    if (ctx.created) return;
    ctx.created = true;
    this.vm!.call("proxy_on_context_create", ctx, ctx.id, ctx.root!.id);
  }

  /** §1.6 header status mapping */
  protected headersStatus(r: number | undefined): "continue" | "stopAll" | "stopIter" {
    if (this.vm!.lastStop) return "stopAll";
    if (r === undefined || r === 0 || r === 2) return "continue";
    if (r === 1) return this.plugin.allowStop && this.minor >= 35 ? "stopIter" : "stopAll";
    return "stopAll";
  }
  protected dataStatus(r: number | undefined): "continue" | "buffer" | "nobuffer" {
    if (this.vm!.lastStop) return "nobuffer";
    if (r === undefined || r === 0) return "continue";
    if (r === 1 || r === 2) return "buffer";
    return "nobuffer";
  }

  protected emit(results: StepResult[], dir: "request" | "response"): void {
    for (const r of results) this.events.onAsync?.(r, dir);
  }

  /** on_log → on_done → on_delete (§2.4); nothing at all on a failed VM */
  protected finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.reqLive = this.respLive = this.reqTrLive = this.respTrLive = false;
    this.bodyLive[0] = this.bodyLive[1] = false;
    const vm = this.vm, ctx = this.ctx;
    if (this.mode !== "vm" || !vm || !ctx) return;
    try {
      this.finishVm(vm, ctx);
    } finally {
      vm.streamEnded(this.plugin);
    }
  }

  private finishVm(vm: Vm, ctx: Ctx): void {
    this.endMono = vm.proc.monoMs();
    if (!vm.failed) {
      this.logPhase = true;
      this.ensureCreated();
      this.phase = "log";
      vm.call("proxy_on_log", ctx, ctx.id);
      this.logPhase = false;
      this.phase = "";
      vm.call("proxy_on_done", ctx, ctx.id);
      vm.call("proxy_on_delete", ctx, ctx.id);
    }
    vm.contexts.delete(ctx.id);
  }
}
