// StreamReplies: local replies (§7), close_stream (§9) and the fail-stream paths after a trap (§2.5 F, §3.3).
import type { HeaderList, StepResult } from "./api.ts";
import { R } from "./memory.ts";
import { hmGet } from "./headers.ts";
import { FAIL_STREAM, buildLocalReply, type LocalReplyReq } from "./local_reply.ts";
import { STOP, StreamBase } from "./stream_base.ts";

export abstract class StreamReplies extends StreamBase {
  // after-call actions recorded during this stream's own callback
  private pendingReplies: LocalReplyReq[] = [];
  private pendingClose = false;
  private localReplyCalls = 0;
  protected decoderAborted = false;
  protected responseStarted = false;
  protected responseDone = false;
  protected respFromUpstream = false;
  protected streamFailed = false;
  protected failureReplySent = false;
  protected heldReply: StepResult | null = null;

  // ---------------- hostcall side ----------------

  sendLocalResponse(req: LocalReplyReq): R {
    if (this.minor <= 32 && this.localReplyCalls >= 1) return R.BadArgument; // local_reply_hold_
    this.localReplyCalls++;
    if (this.acted === null) this.acted = "reply";
    this.vm!.addAfter(() => {
      if (this.ended) return;
      if (this.inStep) this.pendingReplies.push(req);
      else this.emit([this.localReplyNow(req, false)], this.responseCode === undefined ? "request" : "response");
    });
    return R.Ok;
  }
  closeStream(): void {
    this.codeDetails ??= "wasm_close_stream";
    this.acted = "close";
    this.vm!.addAfter(() => {
      if (this.ended) return;
      if (this.inStep) this.pendingClose = true;
      else this.emit([this.doReset()], "request");
    });
  }

  // ---------------- internals ----------------

  /** close_stream or local reply recorded during the callback just run */
  protected afterCallbacks(): StepResult | null {
    if (this.pendingClose) return this.doReset();
    if (this.pendingReplies.length) {
      const rep = this.pendingReplies[0]; // while decoding only the first prepared reply is kept
      this.pendingReplies = [];
      return this.localReplyNow(rep, false);
    }
    return null;
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
    this.acted = null;
    let r: number | undefined;
    try {
      r = this.vm!.call("proxy_on_response_headers", this.ctx!, this.ctx!.id, headers.length, body.length === 0 ? 1 : 0);
    } finally {
      this.inStep = false;
      this.phase = "";
    }
    this.checkReturn("proxy_on_response_headers", r);
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
  protected failResult(): StepResult | null {
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
  protected vmlessFail(): StepResult {
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

  protected doReset(details?: string): StepResult {
    this.codeDetails ??= details;
    const d = this.codeDetails ?? "reset";
    this.finish();
    return { kind: "reset", details: d };
  }
}
