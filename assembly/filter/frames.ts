// Frame inspection after the 101 (issue 3). Off: the body callbacks only Continue (or, when the pod drains, reset the
// stream at its next chunk, since without a parser there is no frame boundary to put a close frame at).
// On: one FrameParser per direction copies only frame headers (≤ 14 bytes each) out of the body buffer, counts
// frames/messages/bytes, and enforces limits with RFC 6455 close codes spliced in at a frame boundary:
//   the sender of the bad traffic gets `code` (1002 protocol, 1009 too big, 1008 message rate, 1001 drain),
//   the peer gets 1001; then both close replies are swallowed and the stream is closed. The close toward the sender
//   travels in the other direction, so it waits for that direction's next chunk (normally the peer's close reply).
//   A tick deadline resets streams whose handshake does not finish (frame_resets_total).
import { FrameParser, Violation, closeCodeFor, buildCloseFrame } from "../core/frames";
import { S } from "../core/stats";
import { getBuffer, setBuffer, outPtr, outLen, freeBytes, nowMs, closeStream, OK, BUF_REQUEST_BODY, BUF_RESPONSE_BODY } from "../host/abi";
import { Stream, CONTINUE } from "./stream";

const SPARSE_MIN: u32 = 1024; // smaller chunks are copied whole (one host call)
const SPARSE_MAX_COPIES: i32 = 32; // then the rest of the chunk is copied in one go
const DENSE_GAP: u32 = 512;        // frames closer than this on average: copy the rest of the chunk in one go

/** One direction: its parser, what was already reported to stats, its message-rate bucket. */
class Side {
  parser: FrameParser;
  frames: u64 = 0;
  messages: u64 = 0;
  bytes: u64 = 0;
  pings: u64 = 0;
  pongs: u64 = 0;
  closes: u64 = 0;
  tokens: f64 = 0;
  lastMs: u64 = 0;
  oversize: u64 = 0;      // shadow mode: oversize frames/messages already counted
  closeCounted: bool = false; // the code of this side's close frame was counted
  lastChunkMs: u64 = 0;   // for the idle metric: the longest gap between two chunks of this side
  maxIdleMs: u64 = 0;
  pendingCode: u16 = 0;   // a close frame to deliver on this side at its next frame boundary
  delivered: bool = false;

  constructor(fromClient: bool, rsv1: bool, maxFrame: u64, maxMessage: u64, burst: u32) {
    this.parser = new FrameParser(fromClient, rsv1, maxFrame, maxMessage);
    this.tokens = f64(burst);
  }
}

export class Inspection {
  down: Side;   // frames from the downstream client (request body)
  up: Side;     // frames from the upstream (response body)
  closing: bool = false;
  deadlineMs: u64 = 0;
  shadowDrain: bool = false; // shadow mode: the would-be drain close was counted for this connection

  constructor(rsv1: bool, maxFrame: u64, maxMessage: u64, burst: u32, shadow: bool) {
    this.down = new Side(true, rsv1, maxFrame, maxMessage, burst);
    this.up = new Side(false, rsv1, maxFrame, maxMessage, burst);
    this.down.parser.softLimits = shadow;
    this.up.parser.softLimits = shadow;
  }
}

export function onRequestBody(s: Stream, size: u32, eos: bool): u32 {
  return onBody(s, true, size);
}

export function onResponseBody(s: Stream, size: u32, eos: bool): u32 {
  return onBody(s, false, size);
}

function onBody(s: Stream, fromClient: bool, size: u32): u32 {
  if (!s.confirmed || s.finished) return CONTINUE;
  const insp = s.insp;
  if (insp === null) {
    if (s.root.isDraining() && s.root.config.enforce && !s.reset) {
      s.reset = true;
      s.root.metrics.inc(S.FrameResets);
      closeStream(fromClient ? 0 : 1);
    }
    return CONTINUE;
  }
  const side = fromClient ? insp.down : insp.up;
  const type = fromClient ? BUF_REQUEST_BODY : BUF_RESPONSE_BODY;
  if (insp.closing) return closingChunk(s, insp, side, fromClient, type, size);

  const p = side.parser;
  const now = nowMs();
  if (side.lastChunkMs > 0 && now > side.lastChunkMs && now - side.lastChunkMs > side.maxIdleMs) side.maxIdleMs = now - side.lastChunkMs;
  side.lastChunkMs = now;
  if (size == 0 || p.stopped) return CONTINUE;
  parseChunk(p, type, size);
  report(s, side, fromClient);

  if (!s.root.config.enforce) return shadow(s, insp, side);
  let code: u16 = 0;
  if (p.violation != Violation.NONE) code = closeCodeFor(p.violation);
  else if (overRate(s, side)) code = 1008;
  else if (s.root.isDraining()) code = 1001;
  if (code == 0) return CONTINUE;

  // Where this chunk can be cut: before the offending frame, or at the first frame boundary.
  let cut: i64 = p.firstBoundary;
  if (p.violation != Violation.NONE) {
    cut = p.violationPos >= p.chunkStart ? i64(p.violationPos - p.chunkStart) : -1;
  }
  if (cut < 0) return resetStream(s, fromClient);
  countClose(s, code);
  insp.closing = true;
  insp.deadlineMs = nowMs() + 2 * u64(s.root.config.tickMs);
  s.root.watchClosing(s);
  (fromClient ? insp.up : insp.down).pendingCode = code; // the sender hears `code` from the other direction
  if (!splice(type, u32(cut), size, 1001, fromClient, s.id)) return resetStream(s, fromClient);
  side.delivered = true; // the peer got 1001 on this side
  return CONTINUE;
}

/** Shadow mode: count every close the filter would have sent (size limits once per frame or message, rate each
 *  time the bucket runs dry, protocol once: the parser stops; drain once per connection), forward everything. */
function shadow(s: Stream, insp: Inspection, side: Side): u32 {
  const m = s.root.metrics;
  const p = side.parser;
  if (p.oversize > side.oversize) { m.inc(S.ShadowFrameCloses, i64(p.oversize - side.oversize)); side.oversize = p.oversize; }
  if (p.violation != Violation.NONE && !side.delivered) { side.delivered = true; m.inc(S.ShadowFrameCloses); }
  if (overRate(s, side)) { side.tokens = 0; m.inc(S.ShadowFrameCloses); }
  if (!insp.shadowDrain && s.root.isDraining()) { insp.shadowDrain = true; m.inc(S.ShadowFrameCloses); }
  return CONTINUE;
}

/** After a close was decided: deliver the pending close on this side at a frame boundary; swallow everything else;
 *  once both closes went out, the next chunk from either side ends the stream. */
function closingChunk(s: Stream, insp: Inspection, side: Side, fromClient: bool, type: i32, size: u32): u32 {
  if (insp.down.delivered && insp.up.delivered) {
    setBuffer(type, 0, size, new ArrayBuffer(0));
    if (!s.reset) { s.reset = true; closeStream(fromClient ? 0 : 1); }
    return CONTINUE;
  }
  if (side.delivered || side.pendingCode == 0) {
    setBuffer(type, 0, size, new ArrayBuffer(0));
    return CONTINUE;
  }
  let cut: i64 = 0;
  const p = side.parser;
  if (!p.stopped) {
    parseChunk(p, type, size);
    report(s, side, fromClient); // e.g. the peer's close reply: counted, then replaced
    cut = p.firstBoundary;
    if (cut < 0) return CONTINUE; // still inside a frame that began earlier: forward, try at the next chunk
  }
  if (!splice(type, u32(cut), size, side.pendingCode, fromClient, s.id)) return resetStream(s, fromClient);
  side.delivered = true;
  return CONTINUE;
}

/** Replaces the chunk with its first `cut` bytes followed by a close frame (masked toward the upstream). */
function splice(type: i32, cut: u32, size: u32, code: u16, towardUpstream: bool, id: u32): bool {
  const frame = buildCloseFrame(code, "", towardUpstream, u32(nowMs()) ^ (id * 0x9e3779b1));
  const out = new ArrayBuffer(i32(cut) + frame.byteLength);
  if (cut > 0) {
    if (getBuffer(type, 0, cut) != OK || outLen != i32(cut)) { freeBytes(); return false; }
    memory.copy(changetype<usize>(out), outPtr, cut);
    freeBytes();
  }
  memory.copy(changetype<usize>(out) + cut, changetype<usize>(frame), frame.byteLength);
  return setBuffer(type, 0, size, out) == OK;
}

function resetStream(s: Stream, fromClient: bool): u32 {
  if (!s.reset) {
    s.reset = true;
    s.root.metrics.inc(S.FrameResets);
    closeStream(fromClient ? 0 : 1);
  }
  return CONTINUE;
}

/** Feeds one chunk: only header bytes are copied, unless the chunk is small or dense with frames. */
function parseChunk(p: FrameParser, type: i32, size: u32): void {
  p.beginChunk(size);
  if (size <= SPARSE_MIN) {
    if (getBuffer(type, 0, size) == OK) p.push(outPtr, u32(outLen));
    freeBytes();
    return;
  }
  let copies = 0;
  while (true) {
    const off = p.nextOffset();
    if (off < 0) break;
    let n = p.nextLength();
    // Dense with small frames (or many headers already): one copy of the rest beats a host call per header.
    if (copies >= SPARSE_MAX_COPIES || (copies >= 4 && u32(off) < u32(copies) * DENSE_GAP)) n = size - u32(off);
    if (getBuffer(type, u32(off), n) != OK || outLen == 0) { freeBytes(); break; }
    p.push(outPtr, u32(outLen));
    freeBytes();
    copies++;
  }
}

/** Adds what the parser counted since the last report to the stats (counters take positive deltas only). */
function report(s: Stream, side: Side, fromClient: bool): void {
  const m = s.root.metrics;
  const p = side.parser;
  const dir = fromClient ? 0 : 1;
  if (p.frames > side.frames) { m.inc(S.FramesDown + dir, i64(p.frames - side.frames)); side.frames = p.frames; }
  if (p.messages > side.messages) { m.inc(S.MsgDown + dir, i64(p.messages - side.messages)); }
  if (p.payloadBytes > side.bytes) { m.inc(S.BytesDown + dir, i64(p.payloadBytes - side.bytes)); side.bytes = p.payloadBytes; }
  if (p.pings > side.pings) { m.inc(S.Pings, i64(p.pings - side.pings)); side.pings = p.pings; }
  if (p.pongs > side.pongs) { m.inc(S.Pongs, i64(p.pongs - side.pongs)); side.pongs = p.pongs; }
  if (p.closes > side.closes) { m.inc(S.Closes, i64(p.closes - side.closes)); side.closes = p.closes; }
  if (!side.closeCounted && p.lastCloseCode != 0) {
    side.closeCounted = true;
    const c = p.lastCloseCode;
    let st = S.SeenOther;
    if (c == 1000) st = S.Seen1000;
    else if (c == 1001) st = S.Seen1001;
    else if (c == 1002) st = S.Seen1002;
    else if (c == 1008) st = S.Seen1008;
    else if (c == 1009) st = S.Seen1009;
    else if (c == 1011) st = S.Seen1011;
    m.inc(st);
  }
}

/** At stream end: the longest silence of each direction, as histogram samples. */
export function recordIdle(s: Stream, insp: Inspection): void {
  const m = s.root.metrics;
  m.record(S.IdleDown, insp.down.maxIdleMs);
  m.record(S.IdleUp, insp.up.maxIdleMs);
}

/** Message-rate token bucket per connection and direction. Consumes the messages counted since the last chunk. */
function overRate(s: Stream, side: Side): bool {
  const f = s.root.config.frames;
  const fresh = side.parser.messages - side.messages;
  side.messages = side.parser.messages;
  if (f.messagesPerSecond == 0 || fresh == 0) return false;
  const now = side.lastChunkMs;
  if (side.lastMs > 0 && now > side.lastMs) {
    side.tokens += f64(now - side.lastMs) * f64(f.messagesPerSecond) / 1000.0;
    if (side.tokens > f64(f.messageBurst)) side.tokens = f64(f.messageBurst);
  }
  side.lastMs = now;
  side.tokens -= f64(fresh);
  return side.tokens < 0;
}

function countClose(s: Stream, code: u16): void {
  const m = s.root.metrics;
  if (code == 1001) m.inc(S.Close1001);
  else if (code == 1002) m.inc(S.Close1002);
  else if (code == 1008) m.inc(S.Close1008);
  else if (code == 1009) m.inc(S.Close1009);
  else m.inc(S.FrameResets);
}
