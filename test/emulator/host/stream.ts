// One HTTP stream through the Wasm filter (Envoy's Context as an HTTP filter): callback order (§2.3, §2.4), header and
// body availability windows (§2.6), pause/continue (§2.7), local replies (§7), close_stream (§9), traps (§2.5 F).
import type { DownstreamConnection, FilterStream, HeaderList, StepResult, StreamEvents } from "./api.ts";
import { R } from "./memory.ts";
import { hmGet } from "./headers.ts";
import { FAIL_STREAM, buildLocalReply, concat, type LocalReplyReq } from "./local_reply.ts";
import type { Ctx, PluginRt } from "./types.ts";
import type { Vm } from "./vm.ts";

type Mode = "vm" | "passthrough" | "failclosed";
type State = "init" | "paused" | "held" | "flowing" | "done";
type Phase = "" | "req_headers" | "req_body" | "req_trailers" | "resp_headers" | "resp_body" | "resp_trailers" | "lr" | "log";
const STOP: StepResult = { kind: "stop" };
const EMPTY = new Uint8Array(0);

export class StreamImpl implements FilterStream {
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
  private reqLive = false;
  private respLive = false;
  private reqTrLive = false;
  private respTrLive = false;
  logPhase = false;
  private phase: Phase = "";
  private phaseEos = false;
  // bodies
  private body: [Uint8Array, Uint8Array] = [EMPTY, EMPTY];
  private bodyLive = [false, false];
  private queued: [Uint8Array | null, Uint8Array | null] = [null, null]; // arrived while headers StopAll
  private buffered: [Uint8Array | null, Uint8Array | null] = [null, null]; // StopIterationAndBuffer accumulation
  private state: [State, State] = ["init", "init"];
  private eosSeen = [false, false];
  // after-call actions recorded during this stream's own callback
  private inStep = false;
  private pendingReplies: LocalReplyReq[] = [];
  private pendingClose = false;
  private pendingContinue = [false, false];
  private localReplyCalls = 0;
  private decoderAborted = false;
  private responseStarted = false;
  private responseDone = false;
  private respFromUpstream = false;
  private streamFailed = false;
  private failureReplySent = false;
  private heldReply: StepResult | null = null;
  // properties
  headersSeen = false;
  startMs: number;
  endMs = 0;
  responseCode: number | undefined;
  codeDetails: string | undefined;
  upstream: { address: string; port?: number; clusterName?: string } | undefined;
  route: { routeName?: string; clusterName?: string } = {};
  dynamicMetadata = new Map<string, Record<string, unknown>>();
  filterState = new Map<string, Uint8Array>();
  reqBodyBytes = 0;
  respBodyBytes = 0;

  constructor(readonly mode: Mode, readonly vm: Vm | null, readonly ctx: Ctx | null, readonly plugin: PluginRt,
              readonly conn: DownstreamConnection, readonly worker: number, private readonly minor: number) {
    this.startMs = vm ? vm.proc.nowMs() : Date.now();
    if (ctx) ctx.stream = this;
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

  // ---------------- hostcall side ----------------

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

  sendLocalResponse(req: LocalReplyReq): R {
    if (this.minor <= 32 && this.localReplyCalls >= 1) return R.BadArgument; // local_reply_hold_
    this.localReplyCalls++;
    this.vm!.addAfter(() => {
      if (this.ended) return;
      if (this.inStep) this.pendingReplies.push(req);
      else this.emit([this.localReplyNow(req, false)], this.responseCode === undefined ? "request" : "response");
    });
    return R.Ok;
  }
  continueStream(dir: 0 | 1): void {
    // request-side pointers are cleared immediately (Context::continueStream)
    this.reqLive = false;
    this.reqTrLive = false;
    this.bodyLive[0] = false;
    this.vm!.addAfter(() => {
      if (this.ended) return;
      const stepDir = this.phase.startsWith("req") ? 0 : 1;
      if (this.inStep && stepDir === dir) this.pendingContinue[dir] = true;
      else this.emit(this.resume(dir), dir === 0 ? "request" : "response");
    });
  }
  closeStream(): void {
    this.codeDetails ??= "wasm_close_stream";
    this.vm!.addAfter(() => {
      if (this.ended) return;
      if (this.inStep) this.pendingClose = true;
      else this.emit([this.doReset()], "request");
    });
  }

  // ---------------- proxy side ----------------

  decodeHeaders(headers: HeaderList, endStream: boolean): StepResult {
    if (this.ended) return STOP;
    if (this.mode === "passthrough") return { kind: "continue", headers };
    if (this.mode === "failclosed") return this.vmlessFail();
    this.headersSeen = true;
    this.reqMap = headers.slice();
    this.eosSeen[0] = endStream;
    if (this.vm!.failed) return this.failResult() ?? this.fwdHeaders(0, endStream);
    this.ensureCreated();
    this.reqLive = true;
    const r = this.cb("proxy_on_request_headers", "req_headers", this.reqMap.length, endStream);
    if (this.vm!.failed) return this.failResult() ?? this.fwdHeaders(0, endStream);
    const early = this.afterCallbacks();
    if (early) return early;
    if (this.headersStatus(r) === "continue" || this.takeContinue(0)) return this.fwdHeaders(0, endStream);
    this.state[0] = this.headersStatus(r) === "stopIter" ? "held" : "paused";
    return STOP;
  }

  decodeData(data: Uint8Array, endStream: boolean): StepResult {
    if (this.ended) return STOP;
    if (this.mode === "passthrough") return { kind: "continue", data };
    if (this.mode === "failclosed" || this.decoderAborted) return STOP;
    this.reqBodyBytes += data.length;
    return this.bodyStep(0, data, endStream);
  }

  decodeTrailers(trailers: HeaderList): StepResult {
    return this.trailersStep(0, trailers);
  }

  encodeHeaders(headers: HeaderList, endStream: boolean, details?: string): StepResult {
    if (this.ended || this.responseDone) return STOP;
    if (this.mode !== "vm") return { kind: "continue", headers };
    const status = Number(hmGet(headers, ":status"));
    if (status >= 100 && status < 200 && status !== 101) return { kind: "continue", headers }; // encode1xxHeaders
    this.responseCode = status;
    this.codeDetails = details ?? "via_upstream";
    this.respMap = headers.slice();
    this.respFromUpstream = true;
    this.eosSeen[1] = endStream;
    if (!this.ctx!.created || this.failureReplySent) return this.fwdHeaders(1, endStream);
    if (this.vm!.failed) return this.failResult() ?? this.fwdHeaders(1, endStream);
    this.respLive = true;
    const r = this.cb("proxy_on_response_headers", "resp_headers", this.respMap.length, endStream);
    if (this.vm!.failed) return this.failResult() ?? this.fwdHeaders(1, endStream);
    const early = this.afterCallbacks();
    if (early) return early;
    if (this.headersStatus(r) === "continue" || this.takeContinue(1)) return this.fwdHeaders(1, endStream);
    this.state[1] = this.headersStatus(r) === "stopIter" ? "held" : "paused";
    return STOP;
  }

  encodeData(data: Uint8Array, endStream: boolean): StepResult {
    if (this.ended || this.responseDone) return STOP;
    if (this.mode !== "vm") return { kind: "continue", data };
    this.respBodyBytes += data.length;
    if (!this.ctx!.created || this.failureReplySent) return { kind: "continue", data };
    return this.bodyStep(1, data, endStream);
  }

  encodeTrailers(trailers: HeaderList): StepResult {
    if (this.responseDone) return STOP;
    return this.trailersStep(1, trailers);
  }

  complete(): void {
    this.finish();
  }
  reset(reason: string): void {
    if (this.ended) return;
    this.codeDetails ??= reason;
    this.finish();
  }

  // ---------------- internals ----------------

  private cb(name: string, phase: Phase, n: number, eos: boolean): number | undefined {
    const vm = this.vm!;
    if (!vm.fn(name)) {
      vm.lastStop = false;
      return undefined;
    }
    this.phase = phase;
    this.phaseEos = eos;
    this.inStep = true;
    try {
      return vm.call(name, this.ctx!, this.ctx!.id, n, eos ? 1 : 0);
    } finally {
      this.inStep = false;
      this.phase = "";
      this.phaseEos = false;
    }
  }

  private ensureCreated(): void {
    const ctx = this.ctx!;
    if (ctx.created) return;
    ctx.created = true;
    this.vm!.call("proxy_on_context_create", ctx, ctx.id, ctx.root!.id);
  }

  /** §1.6 header status mapping */
  private headersStatus(r: number | undefined): "continue" | "stopAll" | "stopIter" {
    if (this.vm!.lastStop) return "stopAll";
    if (r === undefined || r === 0 || r === 2) return "continue";
    if (r === 1) return this.plugin.allowStop && this.minor >= 35 ? "stopIter" : "stopAll";
    return "stopAll";
  }
  private dataStatus(r: number | undefined): "continue" | "buffer" | "nobuffer" {
    if (this.vm!.lastStop) return "nobuffer";
    if (r === undefined || r === 0) return "continue";
    if (r === 1 || r === 2) return "buffer";
    return "nobuffer";
  }
  private takeContinue(dir: 0 | 1): boolean {
    const c = this.pendingContinue[dir];
    this.pendingContinue[dir] = false;
    return c;
  }

  /** close_stream or local reply recorded during the callback just run */
  private afterCallbacks(): StepResult | null {
    if (this.pendingClose) return this.doReset();
    if (this.pendingReplies.length) {
      const rep = this.pendingReplies[0]; // while decoding only the first prepared reply is kept
      this.pendingReplies = [];
      return this.localReplyNow(rep, false);
    }
    return null;
  }

  private fwdHeaders(dir: 0 | 1, eos: boolean): StepResult {
    if (dir === 0) this.reqLive = false;
    else {
      this.respLive = false;
      this.responseStarted = true;
    }
    this.state[dir] = eos ? "done" : "flowing";
    return { kind: "continue", headers: (dir === 0 ? this.reqMap : this.respMap)! };
  }

  private bodyStep(dir: 0 | 1, data: Uint8Array, eos: boolean): StepResult {
    const vm = this.vm!;
    if (this.streamFailed) return this.plugin.failOpenField ? { kind: "continue", data } : STOP;
    if (vm.failed) return this.failResult() ?? { kind: "continue", data };
    if (this.state[dir] === "paused") { // headers StopAll: the filter manager buffers, no callback
      this.queued[dir] = concat(this.queued[dir] ?? EMPTY, data);
      this.eosSeen[dir] = eos;
      return STOP;
    }
    this.eosSeen[dir] = eos;
    let buf = data;
    let appendAfter: Uint8Array | null = null;
    const prev = this.buffered[dir];
    if (prev) {
      if (this.minor >= 32) buf = concat(prev, data); // 2e4ee89: current chunk appended before the call
      else { buf = prev; appendAfter = data; }
    }
    this.body[dir] = buf;
    this.bodyLive[dir] = true;
    const r = this.cb(dir === 0 ? "proxy_on_request_body" : "proxy_on_response_body", dir === 0 ? "req_body" : "resp_body",
      buf.length, eos);
    let cur = this.body[dir];
    this.bodyLive[dir] = false;
    if (appendAfter) cur = concat(cur, appendAfter);
    if (vm.failed) return this.failResult() ?? { kind: "continue", data: cur };
    const early = this.afterCallbacks();
    if (early) return early;
    const st = this.dataStatus(r);
    if (st === "continue" || this.takeContinue(dir)) {
      this.buffered[dir] = null;
      const res: { kind: "continue"; headers?: HeaderList; data?: Uint8Array } = { kind: "continue", data: cur };
      if (this.state[dir] === "held") {
        res.headers = (dir === 0 ? this.reqMap : this.respMap)!;
        if (dir === 0) this.reqLive = false;
        else { this.respLive = false; this.responseStarted = true; }
      }
      this.state[dir] = eos ? "done" : "flowing";
      return res;
    }
    if (st === "buffer") {
      this.buffered[dir] = cur;
      this.body[dir] = cur;
      this.bodyLive[dir] = true; // readable while paused by it
    } else this.buffered[dir] = null;
    return STOP;
  }

  private trailersStep(dir: 0 | 1, trailers: HeaderList): StepResult {
    if (this.ended) return STOP;
    if (this.mode !== "vm" || !this.ctx!.created || this.failureReplySent) return { kind: "continue", headers: trailers };
    if (this.vm!.failed) return this.failResult() ?? { kind: "continue", headers: trailers };
    const list = trailers.slice();
    if (dir === 0) { this.reqTrailers = list; this.reqTrLive = true; }
    else { this.respTrailers = list; this.respTrLive = true; }
    const r = this.cb(dir === 0 ? "proxy_on_request_trailers" : "proxy_on_response_trailers",
      dir === 0 ? "req_trailers" : "resp_trailers", list.length, false);
    if (dir === 0) this.reqTrLive = false;
    else this.respTrLive = false;
    if (this.vm!.failed) return this.failResult() ?? { kind: "continue", headers: list };
    const early = this.afterCallbacks();
    if (early) return early;
    if (this.vm!.lastStop || (r !== undefined && r !== 0)) return STOP;
    return { kind: "continue", headers: list };
  }

  /** continueDecoding()/continueEncoding() after the VM call (§2.7) */
  private resume(dir: 0 | 1): StepResult[] {
    const out: StepResult[] = [];
    if (dir === 1 && this.heldReply) {
      out.push(this.heldReply);
      this.heldReply = null;
      this.hung = false;
      return out;
    }
    const st = this.state[dir];
    if (st === "paused" || st === "held") {
      const q = this.queued[dir];
      this.queued[dir] = null;
      out.push(this.fwdHeaders(dir, this.eosSeen[dir] && !q));
      if (q) out.push(this.bodyStep(dir, q, this.eosSeen[dir]));
    } else if (this.buffered[dir]) {
      out.push({ kind: "continue", data: this.buffered[dir]! });
      this.buffered[dir] = null;
      this.bodyLive[dir] = false;
      this.state[dir] = this.eosSeen[dir] ? "done" : "flowing";
    }
    return out;
  }

  private emit(results: StepResult[], dir: "request" | "response"): void {
    for (const r of results) this.events.onAsync?.(r, dir);
  }

  /** sendLocalReply: through the encoder chain (§7.2), directly (§7.3) or a reset once the response started */
  private localReplyNow(req: LocalReplyReq, skipVm: boolean): StepResult {
    if (this.responseStarted) return this.doReset(req.details);
    this.decoderAborted = true;
    this.reqLive = false;
    this.bodyLive[0] = false;
    const { headers, body } = buildLocalReply(req, this.reqMap);
    this.responseCode = req.code;
    this.codeDetails = req.details;
    if (this.respFromUpstream) return this.replyResult(headers, body, req.details); // sendDirectLocalReply
    this.respMap = headers;
    if (skipVm || this.vm!.failed || !this.ctx!.created) return this.replyResult(headers, body, req.details);
    // the same filter's on_response_headers / on_response_body run for its own reply
    this.respLive = true;
    this.inStep = true;
    this.phase = "lr";
    let r: number | undefined;
    try {
      r = this.vm!.call("proxy_on_response_headers", this.ctx!, this.ctx!.id, headers.length, body.length === 0 ? 1 : 0);
    } finally {
      this.inStep = false;
      this.phase = "";
    }
    this.respLive = false;
    if (this.vm!.failed) return this.failResult() ?? this.replyResult(headers, body, req.details);
    if (this.pendingClose) return this.doReset();
    if (this.pendingReplies.length) { // 1.33+: a new reply from the reply's own headers callback goes out directly
      const rep = this.pendingReplies[0];
      this.pendingReplies = [];
      const b = buildLocalReply(rep, this.reqMap);
      this.responseCode = rep.code;
      this.codeDetails = rep.details;
      return this.replyResult(b.headers, b.body, rep.details);
    }
    if (this.headersStatus(r) !== "continue") {
      this.hung = true; // the filter holds its own reply until continue_stream(1)
      this.heldReply = this.replyResult(headers, body, req.details);
      this.responseDone = false;
      return STOP;
    }
    let outBody = body;
    if (body.length > 0) {
      this.body[1] = body;
      this.bodyLive[1] = true;
      this.respBodyBytes += body.length;
      this.cb("proxy_on_response_body", "resp_body", body.length, true);
      outBody = this.body[1];
      this.bodyLive[1] = false;
      if (this.vm!.failed) return this.failResult() ?? this.replyResult(headers, outBody, req.details);
      if (this.pendingClose || this.pendingReplies.length) {
        this.pendingReplies = [];
        return this.doReset(req.details);
      }
    }
    return this.replyResult(this.respMap, outBody, req.details);
  }

  private replyResult(headers: HeaderList, body: Uint8Array, details: string): StepResult {
    this.responseStarted = true;
    this.responseDone = true;
    this.respMap = headers;
    const status = Number(hmGet(headers, ":status") ?? 0);
    return { kind: "localReply", reply: { status, headers, body, details } };
  }

  /** CHECK_FAIL_HTTP after a trap: fail_open field → continue (null); else failStream once (§2.5 F, §3.3) */
  private failResult(): StepResult | null {
    if (this.plugin.failOpenField) return null;
    if (this.streamFailed) return STOP;
    this.streamFailed = true;
    this.reqLive = this.respLive = false;
    this.bodyLive[0] = this.bodyLive[1] = false;
    if (this.minor >= 35) {
      this.failureReplySent = true;
      return this.localReplyNow(FAIL_STREAM, true);
    }
    this.hung = true; // 1.30–1.34: the 503 is held in the encoder chain; the client gets nothing
    return STOP;
  }

  /** a filter without VM on a failed worker (FAIL_CLOSED, §3.3) */
  private vmlessFail(): StepResult {
    if (this.minor >= 35) {
      if (this.failureReplySent) return STOP;
      this.failureReplySent = true;
      this.codeDetails = "wasm_fail_stream";
      this.responseCode = 503;
      const { headers, body } = buildLocalReply(FAIL_STREAM, null);
      return { kind: "localReply", reply: { status: 503, headers, body, details: "wasm_fail_stream" } };
    }
    this.hung = true;
    return STOP;
  }

  private doReset(details?: string): StepResult {
    this.codeDetails ??= details;
    const d = this.codeDetails ?? "reset";
    this.finish();
    return { kind: "reset", details: d };
  }

  /** on_log → on_done → on_delete (§2.4); nothing at all on a failed VM */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.reqLive = this.respLive = this.reqTrLive = this.respTrLive = false;
    this.bodyLive[0] = this.bodyLive[1] = false;
    const vm = this.vm, ctx = this.ctx;
    if (this.mode !== "vm" || !vm || !ctx) return;
    this.endMs = vm.proc.nowMs();
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
