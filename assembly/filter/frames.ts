// Frame inspection after the 101 (issue 3). Off: the body callbacks only Continue (or, when the pod drains, reset the
// stream at its next chunk, since without a parser there is no frame boundary to put a close frame at).
// On: one FrameParser per direction copies only frame headers (≤ 14 bytes each) out of the body buffer, counts
// frames/messages/bytes, and enforces limits with RFC 6455 close codes spliced in at a frame boundary: the sender of
// the bad traffic gets `code` (1002 protocol, 1009 too big, 1008 message rate, 1001 drain), its peer 1001.
// The close handshake is ordered so that the client has its close frame before anything can end the connection
// (the pod closes TCP as soon as it has its close: a client still writing would then get a reset and lose the frame):
//   1. the client's close goes out first, on a response chunk: at once if the pod sent the bad traffic, else the
//      filter puts a ping toward the pod where the offending frame was and the pod's answer carries the close;
//   2. the client's own close frame (its reply) is replaced by the pod's close;
//   3. the pod's close reply ends the stream (proxy_close_stream, then StopIterationNoBuffer: envoy-host §13.1).
// Between these steps both directions are swallowed but still parsed (size limits off) to find the close frames.
// A tick deadline (2 ticks, renewed at step 1) resets streams whose handshake does not finish (frame_resets_total).
import { FrameParser, Violation, closeCodeFor, buildCloseFrame } from "../core/frames";
import { S } from "../core/stats";
import { getBuffer, setBuffer, outPtr, outLen, freeBytes, nowMs, closeStream, setEffectiveContext, headerString, OK,
         BUF_REQUEST_BODY, BUF_RESPONSE_BODY, MAP_RESPONSE_HEADERS } from "../host/abi";
import { utf8Encode } from "../core/utf8";
import { removeAt } from "../core/codec";
import { Side, Inspection } from "./inspection";
import { Stream, streams, CONTINUE } from "./stream";

/** StopIterationNoBuffer: what a body callback returns once it called proxy_close_stream (envoy-host §13.1). */
export const STOP_NO_BUFFER: u32 = 3;

const H_EXTENSIONS = utf8Encode("sec-websocket-extensions");

/** Ids of streams in a close handshake, checked against their deadline on every tick (ids, not Streams: every
 *  managed type stays acyclic). */
const closing = new Array<u32>(0);

/** After an admitted 101 (the dispatcher calls this): inspection state when frames.enabled. */
export function startInspection(s: Stream): void {
  const f = s.root.config.frames;
  if (!f.enabled || !s.confirmed) return;
  let rsv1 = false;
  const ext = headerString(MAP_RESPONSE_HEADERS, H_EXTENSIONS);
  if (ext !== null) rsv1 = ext.indexOf("permessage-deflate") >= 0;
  s.insp = new Inspection(rsv1, f.maxFrameBytes, f.maxMessageBytes, f.messageBurst, !s.root.config.enforce);
}

/** On every tick: close handshakes past their deadline end with a reset of the stream. */
export function expireClosing(): void {
  let i = 0;
  while (i < closing.length) {
    const id = closing[i];
    if (!streams.has(id)) { removeAt(closing, i); continue; }
    const s = streams.get(id);
    const insp = s.insp;
    if (s.finished || s.reset || insp === null) { removeAt(closing, i); continue; }
    if (s.root.ticks >= insp.deadlineTick) {
      s.reset = true;
      s.root.metrics.inc(S.FrameResets);
      if (setEffectiveContext(s.id) == OK) closeStream(0);
      removeAt(closing, i);
      continue;
    }
    i++;
  }
}

const SPARSE_MIN: u32 = 1024; // smaller chunks are copied whole (one host call)
const SPARSE_MAX_COPIES: i32 = 32; // then the rest of the chunk is copied in one go
const DENSE_GAP: u32 = 512;        // frames closer than this on average: copy the rest of the chunk in one go

export function onRequestBody(s: Stream, size: u32, eos: bool): u32 {
  return onBody(s, true, size);
}

export function onResponseBody(s: Stream, size: u32, eos: bool): u32 {
  return onBody(s, false, size);
}

function onBody(s: Stream, fromClient: bool, size: u32): u32 {
  if (!s.confirmed || s.finished) return CONTINUE;
  if (s.reset) return STOP_NO_BUFFER; // this filter asked Envoy to end the stream: nothing more goes through
  const insp = s.insp;
  if (insp === null) {
    if (s.root.isDraining() && s.root.config.enforce) return resetStream(s, fromClient);
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
  insp.deadlineTick = s.root.ticks + 2;
  closing.push(s.id);
  insp.clientCode = fromClient ? code : 1001;
  insp.podCode = fromClient ? 1001 : code;
  // From here on both directions are only scanned for close frames: no size limits; an oversize frame is skipped.
  insp.down.parser.softLimits = true;
  insp.up.parser.softLimits = true;
  if (p.resume()) parseRest(p, type, size);
  mute(side);
  if (!fromClient) return toClient(s, insp, type, u32(cut), size);
  // Nothing can be written toward the client before the pod sends a chunk: a ping makes it send one (its pong).
  return splice(s, type, u32(cut), size, 0, true);
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

/** After a close was decided (steps in the file header). Every chunk is parsed, then swallowed or replaced. */
function closingChunk(s: Stream, insp: Inspection, side: Side, fromClient: bool, type: i32, size: u32): u32 {
  const p = side.parser;
  const stopped = p.stopped; // stopped in an earlier chunk: this one is not parsed, its start is taken as a boundary
  if (!stopped) parseChunk(p, type, size);
  mute(side);
  report(s, side, fromClient); // close frames only: the rest was muted
  if (!fromClient && !insp.clientSent) {
    let cut: i64 = 0;
    if (!stopped) cut = p.firstBoundary;
    if (cut < 0) return CONTINUE; // still inside a frame that began earlier: forward, try at the next chunk
    return toClient(s, insp, type, u32(cut), size);
  }
  // A reply counts once its close frame is complete (its last bytes may come in a later chunk). A parser stopped by a
  // protocol error cannot find a close frame: the next chunk after our close counts as the reply.
  const replied = (p.closed && p.atFrameBoundary) || (p.stopped && insp.clientSent);
  if (fromClient && replied && !insp.podSent) {
    insp.podSent = true;
    return splice(s, type, 0, size, insp.podCode, true);
  }
  if (!fromClient && replied && insp.podSent) return endStream(s, false);
  return splice(s, type, 0, size, 0, false); // swallow
}

/** Step 1: the client's close at chunk offset `cut` of a response chunk. */
function toClient(s: Stream, insp: Inspection, type: i32, cut: u32, size: u32): u32 {
  insp.clientSent = true;
  insp.deadlineTick = s.root.ticks + 2;
  return splice(s, type, cut, size, insp.clientCode, false);
}

/** Replaces the chunk with its first `cut` bytes followed by a close frame with `code` (masked toward the upstream),
 *  by an empty ping toward the upstream when `code` is 0 and `towardUpstream`, or by nothing. */
function splice(s: Stream, type: i32, cut: u32, size: u32, code: u16, towardUpstream: bool): u32 {
  const key = u32(nowMs()) ^ (s.id * 0x9e3779b1);
  let frame = new ArrayBuffer(0);
  if (code != 0) frame = buildCloseFrame(code, "", towardUpstream, key);
  else if (towardUpstream) {
    frame = new ArrayBuffer(6);
    const f = changetype<usize>(frame);
    store<u16>(f, 0x8089); // FIN ping, masked, empty payload
    store<u32>(f + 2, key);
  }
  const out = new ArrayBuffer(i32(cut) + frame.byteLength);
  if (cut > 0) {
    if (getBuffer(type, 0, cut) != OK || outLen != i32(cut)) { freeBytes(); return resetStream(s, type == BUF_REQUEST_BODY); }
    memory.copy(changetype<usize>(out), outPtr, cut);
    freeBytes();
  }
  memory.copy(changetype<usize>(out) + cut, changetype<usize>(frame), frame.byteLength);
  if (setBuffer(type, 0, size, out) != OK) return resetStream(s, type == BUF_REQUEST_BODY);
  return CONTINUE;
}

/** The filter gives up on the connection: counted as a frame reset. */
function resetStream(s: Stream, fromClient: bool): u32 {
  if (!s.reset) s.root.metrics.inc(S.FrameResets);
  return endStream(s, fromClient);
}

/** proxy_close_stream; Envoy resets the stream when this VM call returns, before it reads the status (§13.1). */
function endStream(s: Stream, fromClient: bool): u32 {
  if (!s.reset) {
    s.reset = true;
    closeStream(fromClient ? 0 : 1);
  }
  return STOP_NO_BUFFER;
}

/** During a close handshake: what the parser saw is swallowed, not counted (except close frames, by report()). */
function mute(side: Side): void {
  const p = side.parser;
  side.frames = p.frames;
  side.messages = p.messages;
  side.bytes = p.payloadBytes;
  side.pings = p.pings;
  side.pongs = p.pongs;
}

/** Feeds one chunk: only header bytes are copied, unless the chunk is small or dense with frames. */
function parseChunk(p: FrameParser, type: i32, size: u32): void {
  p.beginChunk(size);
  parseRest(p, type, size);
}

/** Feeds the rest of the current chunk from where the parser stands. */
function parseRest(p: FrameParser, type: i32, size: u32): void {
  let copies = 0;
  while (true) {
    const off = p.nextOffset();
    if (off < 0) break;
    let n = p.nextLength();
    // Small, dense with small frames (or many headers already): one copy of the rest beats a host call per header.
    if (size <= SPARSE_MIN || copies >= SPARSE_MAX_COPIES || (copies >= 4 && u32(off) < u32(copies) * DENSE_GAP)) n = size - u32(off);
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
    m.inc(S.Seen1000 + codeIndex(p.lastCloseCode, 6)); // Seen1000 … Seen1011, then SeenOther
  }
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

/** Index of `code` in 1000, 1001, 1002, 1008, 1009, 1011 (the stats' order), or `other` when it is none of them. */
function codeIndex(code: u16, other: i32): i32 {
  const k = i32(code) - 1000;
  if (k == 0 || k == 1 || k == 2) return k;
  if (k == 8 || k == 9) return k - 5;
  if (k == 11) return 5;
  return other;
}

/** Close1001 … Close1009 in the stats' order; anything else counts as a reset. */
function countClose(s: Stream, code: u16): void {
  const i = codeIndex(code, 9) - 1; // 1001 → 0, 1002 → 1, 1008 → 2, 1009 → 3
  s.root.metrics.inc(i >= 0 && i < 4 ? S.Close1001 + i : S.FrameResets);
}
