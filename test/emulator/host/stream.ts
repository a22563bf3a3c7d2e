// One HTTP stream through the Wasm filter (Envoy's Context as an HTTP filter): callback order (§2.3, §2.4), pause/continue
// (§2.7), traps (§2.5 F); windows (§2.6) in stream_base.ts, local replies (§7) and close_stream (§9) in stream_reply.ts.
import type { DownstreamConnection, FilterStream, HeaderList, StepResult } from "./api.ts";
import { hmGet } from "./headers.ts";
import { concat } from "./local_reply.ts";
import { EMPTY, STOP, type Mode } from "./stream_base.ts";
import { StreamReplies } from "./stream_reply.ts";
import type { Ctx, PluginRt } from "./types.ts";
import type { Vm } from "./vm.ts";

type State = "init" | "paused" | "held" | "flowing" | "done";

export class StreamImpl extends StreamReplies implements FilterStream {
  private queued: [Uint8Array | null, Uint8Array | null] = [null, null]; // arrived while headers StopAll
  private buffered: [Uint8Array | null, Uint8Array | null] = [null, null]; // StopIterationAndBuffer accumulation
  private state: [State, State] = ["init", "init"];
  private eosSeen = [false, false];
  private pendingContinue = [false, false]; // continue_stream recorded during this stream's own callback

  constructor(mode: Mode, vm: Vm | null, ctx: Ctx | null, plugin: PluginRt,
              conn: DownstreamConnection, worker: number, minor: number) {
    super(mode, vm, ctx, plugin, conn, worker, minor);
    if (ctx) ctx.stream = this;
  }

  // ---------------- hostcall side ----------------

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

  private takeContinue(dir: 0 | 1): boolean {
    const c = this.pendingContinue[dir];
    this.pendingContinue[dir] = false;
    return c;
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
}
