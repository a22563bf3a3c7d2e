// Streaming RFC 6455 frame parser, one instance per connection and direction.
// PURE: imports nothing from the SDK, ../host or ../filter. No allocation after construction, no throw, no assert.
//
// ── Why it looks like this ───────────────────────────────────────────────────────────────────────────────────────
// After the 101, Envoy hands every socket read to the body callbacks as one chunk; chunk boundaries are not frame
// boundaries. The host copies bytes into the VM on request (proxy_get_buffer_bytes(start, len)), so the parser only
// ever asks for the bytes it must look at — frame headers (2–14 bytes) and the 2-byte code of a close frame — and
// skips payload arithmetically with a u64 counter. Every copy is ≤ 14 bytes, and a chunk needs at most one copy per
// frame header starting in it, one per close code, plus one at its start (a header or code split across chunks):
// bytes copied per chunk ≤ 14 × (1 + headers starting in it + close frames), whatever the payload sizes.
//
// ── Chunk protocol (what the filter's body callback does) ─────────────────────────────────────────────────────────
//     p.beginChunk(bodySize);
//     while (true) {
//       let off = p.nextOffset();                 // skips payload; -1: nothing more to look at in this chunk
//       if (off < 0) break;
//       let n = p.nextLength();                   // 1..14 bytes wanted from `off`
//       let buf = <copy n bytes of the body buffer starting at off>;   // proxy_get_buffer_bytes(type, off, n)
//       if (buf.byteLength == 0) break;           // host gave nothing (should not happen): stop inspecting
//       p.pushBuffer(buf);                        // = p.push(changetype<usize>(buf), <u32>buf.byteLength)
//     }
//     // then read p.violation / counters (diff them against the values before the chunk for per-chunk stats)
// Rules:
// * Bytes passed to push() must be the chunk bytes starting exactly at the last nextOffset(). push() may be given
//   fewer or more bytes than nextLength() (extra bytes are parsed too: payload is skipped, following headers read);
//   it never reads past the end of the announced chunk and returns how many bytes it consumed.
// * Copying the whole chunk once and calling push(ptr, bodySize) right after beginChunk() is equally valid (cheaper
//   for chunks full of tiny frames). Any mix gives identical results: counters and verdict depend only on the byte
//   stream, never on chunking.
// * A header or close code split across chunks is kept in the parser's state (byte-wise state machine; the
//   14-byte staging area is the state itself). The next chunk then starts with nextOffset() == 0.
// * beginChunk() while the previous chunk still has unread header bytes records Violation.DESYNC (caller bug).
// * After a violation the parser is stopped (sticky): nextOffset() is -1, push() consumes 0, counters freeze;
//   only resume() (size violations) restarts it.
//
// ── Counter semantics ─────────────────────────────────────────────────────────────────────────────────────────────
// A frame is counted when its header is complete and accepted (payload may still be in flight): frames, pings,
// pongs, closes, messages (a data message counts when the header of its FIN frame is accepted, so a rate limiter
// sees it before its payload flows). payloadBytes counts payload bytes actually passed. lastCloseCode is set when
// the close code's 2 bytes have been read (CLOSE_NO_STATUS = 1005 for an empty close body; 0 = no close yet).
// Not checked (payload is never copied): UTF-8 validity of text messages and close reasons (RFC → 1007).
//
// ── Offsets for the glue ──────────────────────────────────────────────────────────────────────────────────────────
// streamPos: bytes consumed since construction (frozen after a violation, just past the offending byte).
// chunkStart: stream offset of the current chunk's first byte. violationPos: stream offset of the first byte of the
// offending frame (for DESYNC: of the first unread byte). If violationPos >= chunkStart, bytes [0, violationPos -
// chunkStart) of this chunk end on a frame boundary (a close frame can be spliced there); otherwise the offending
// frame began in an earlier, already forwarded chunk and the only clean action is a reset.

import { isValidCloseCode, CLOSE_NO_STATUS, Opcode, Violation, Detail } from "./frames_codes";
export {
  Opcode, Violation, Detail, closeCodeFor, detailText,
  isValidCloseCode, buildCloseFrame, CLOSE_NO_STATUS, CLOSE_REASON_MAX,
} from "./frames_codes";

const ST_HEADER: u8 = 0;
const ST_CLOSE_CODE: u8 = 1;
const ST_PAYLOAD: u8 = 2;
const ST_STOPPED: u8 = 3;

/** Header bytes asked for while the header length is still unknown (the maximum header size). */
const MAX_HEADER: u32 = 14;

export class FrameParser {
  // configuration
  fromClient: bool = false;
  allowRsv1: bool = false;  // permessage-deflate negotiated: RSV1 allowed on the first frame of a data message
  maxFrameBytes: u64 = 0;   // data-frame payload limit, 0 = none (control frames are capped at 125 by the RFC)
  maxMessageBytes: u64 = 0; // data-message limit (sum of its fragments), 0 = none
  /** Shadow mode: size limits are only counted in `oversize` (once per frame or message), parsing goes on. */
  softLimits: bool = false;
  oversize: u64 = 0;

  // verdict
  violation: u8 = 0;        // Violation.*
  detail: u8 = 0;           // Detail.*
  violationPos: u64 = 0;    // stream offset of the offending frame's first byte
  closed: bool = false;     // a close frame header has been accepted

  // counters (see file header for when each moves)
  frames: u64 = 0;
  messages: u64 = 0;
  payloadBytes: u64 = 0;
  pings: u64 = 0;
  pongs: u64 = 0;
  closes: u64 = 0;
  lastCloseCode: u16 = 0;
  messageBytes: u64 = 0;    // size of the open (or last) data message: its frames' declared lengths summed
  messageOpen: bool = false; // a fragmented data message awaits continuation frames

  // positions
  streamPos: u64 = 0;
  chunkStart: u64 = 0;
  frameStart: u64 = 0;      // stream offset of the current (or last) frame's first byte
  /** Chunk offset of the first frame boundary reached in the current chunk (0 when it began between frames,
   *  the chunk length when the first boundary is its end), or -1 while none has been reached. A close frame can be
   *  spliced in there. */
  firstBoundary: i64 = -1;
  private chunkEnd: u64 = 0;

  // frame state
  private state: u8 = ST_HEADER;
  private hPos: u32 = 0;    // header bytes seen
  private hLen: u32 = 0;    // header length, 0 until byte 1 has been read
  private extLen: u32 = 0;  // extended length bytes (0, 2, 8)
  private opcode: u8 = 0;
  private fin: bool = false;
  private masked: bool = false;
  private len: u64 = 0;     // payload length
  private maskKey: u32 = 0;
  private remaining: u64 = 0;
  private codeHave: u32 = 0;
  private code: u32 = 0;

  constructor(fromClient: bool, extensionsAllowRsv1: bool, maxFrameBytes: u64, maxMessageBytes: u64) {
    // Every other field starts at its initializer, which is what reset() sets (a call here would store them twice).
    this.fromClient = fromClient;
    this.allowRsv1 = extensionsAllowRsv1;
    this.maxFrameBytes = maxFrameBytes;
    this.maxMessageBytes = maxMessageBytes;
    this.firstBoundary = 0; // as reset() leaves it: a fresh parser stands at a frame boundary
  }

  /** Back to the state of a fresh parser with these settings (lets callers reuse one object; no allocation). */
  reset(fromClient: bool, extensionsAllowRsv1: bool, maxFrameBytes: u64, maxMessageBytes: u64): void {
    this.fromClient = fromClient;
    this.allowRsv1 = extensionsAllowRsv1;
    this.maxFrameBytes = maxFrameBytes;
    this.maxMessageBytes = maxMessageBytes;
    this.violation = Violation.NONE;
    this.detail = Detail.NONE;
    this.violationPos = 0;
    this.closed = false;
    this.frames = 0;
    this.messages = 0;
    this.payloadBytes = 0;
    this.pings = 0;
    this.pongs = 0;
    this.closes = 0;
    this.oversize = 0;
    this.lastCloseCode = 0;
    this.messageBytes = 0;
    this.messageOpen = false;
    this.streamPos = 0;
    this.chunkStart = 0;
    this.frameStart = 0;
    this.chunkEnd = 0;
    this.opcode = 0;
    this.fin = false;
    this.masked = false;
    this.frameDone();
  }

  /** After a size violation whose frame starts in the current chunk: forgets it and parses on from that frame's first
   *  byte with size limits off (softLimits), so a close handshake can skip the frame and find the sender's close
   *  frame. Continue with the chunk protocol (nextOffset() points at the frame). False (nothing changed) otherwise. */
  resume(): bool {
    const v = this.violation;
    if ((v != Violation.FRAME_TOO_BIG && v != Violation.MESSAGE_TOO_BIG) || this.violationPos < this.chunkStart) return false;
    this.violation = Violation.NONE;
    this.detail = Detail.NONE;
    this.softLimits = true;
    this.streamPos = this.violationPos;
    this.frameDone();
    return true;
  }

  /** True once a violation has been recorded. */
  get stopped(): bool { return this.state == ST_STOPPED; }

  /** True between frames (no header, close code or payload partly read). */
  get atFrameBoundary(): bool { return this.state == ST_HEADER && this.hPos == 0; }

  /** Announces the next chunk of `chunkLen` bytes. */
  beginChunk(chunkLen: u32): void {
    if (this.state != ST_STOPPED) {
      this.skipPayload();
      if (this.streamPos < this.chunkEnd) {
        this.frameStart = this.streamPos;
        this.violate(Detail.DESYNC);
      }
    }
    // streamPos == chunkEnd here unless stopped, where it stays frozen at the offending byte + 1
    this.chunkStart = this.chunkEnd;
    this.chunkEnd = this.chunkStart + <u64>chunkLen;
    this.firstBoundary = this.atFrameBoundary ? 0 : -1;
  }

  /** Skips payload inside the chunk; returns the chunk offset of the next byte to copy, or -1 if none. */
  nextOffset(): i32 {
    if (this.state == ST_STOPPED) return -1;
    this.skipPayload();
    if (this.streamPos >= this.chunkEnd) return -1;
    return <i32>(this.streamPos - this.chunkStart);
  }

  /** How many bytes to copy from nextOffset() (≤ 14, ≤ rest of chunk); 0 if none. */
  nextLength(): u32 {
    if (this.state == ST_STOPPED) return 0;
    this.skipPayload();
    let left = this.chunkEnd - this.streamPos;
    if (left == 0) return 0;
    let need: u32 = 0;
    if (this.state == ST_CLOSE_CODE) need = 2 - this.codeHave;
    else if (this.hLen != 0) need = this.hLen - this.hPos;
    else need = MAX_HEADER - this.hPos;
    if (<u64>need > left) need = <u32>left;
    return need;
  }

  /** Consumes bytes at the current position (see protocol). Returns bytes consumed. */
  push(ptr: usize, len: u32): u32 {
    if (this.state == ST_STOPPED) return 0;
    let avail = this.chunkEnd - this.streamPos;
    let n: u32 = len;
    if (<u64>n > avail) n = <u32>avail;
    let i: u32 = 0;
    while (i < n) {
      let st = this.state;
      if (st == ST_PAYLOAD) {
        let s = this.remaining;
        if (s > <u64>(n - i)) s = <u64>(n - i);
        i += <u32>s;
        this.passPayload(s);
      } else if (st == ST_HEADER) {
        this.headerByte(load<u8>(ptr + <usize>i));
        i++;
      } else if (st == ST_CLOSE_CODE) {
        this.closeCodeByte(load<u8>(ptr + <usize>i));
        i++;
      } else {
        break; // stopped inside this push
      }
    }
    return i;
  }

  pushBuffer(buf: ArrayBuffer): u32 {
    return this.push(changetype<usize>(buf), <u32>buf.byteLength);
  }

  /** Convenience (tests, fuzzing): one chunk, every byte pushed. */
  feedBytes(buf: Uint8Array): void {
    this.beginChunk(<u32>buf.length);
    this.push(buf.dataStart, <u32>buf.length);
  }

  /** Convenience (tests, fuzzing): one chunk through the sparse protocol, as the filter glue does it. Returns bytes "copied". */
  feedChunkSparse(buf: Uint8Array): u32 {
    this.beginChunk(<u32>buf.length);
    let copied: u32 = 0;
    while (true) {
      let off = this.nextOffset();
      if (off < 0) break;
      let n = this.nextLength();
      copied += n;
      if (this.push(buf.dataStart + <usize>off, n) == 0) break;
    }
    return copied;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────────────

  private skipPayload(): void {
    if (this.state != ST_PAYLOAD) return;
    let s = this.remaining;
    let left = this.chunkEnd - this.streamPos;
    if (s > left) s = left;
    this.passPayload(s);
  }

  private passPayload(s: u64): void {
    this.streamPos += s;
    this.payloadBytes += s;
    this.remaining -= s;
    if (this.remaining == 0) this.frameDone();
  }

  private violate(detail: u8): void {
    let v = Violation.PROTOCOL;
    if (detail == Detail.FRAME_TOO_BIG) v = Violation.FRAME_TOO_BIG;
    else if (detail == Detail.MESSAGE_TOO_BIG) v = Violation.MESSAGE_TOO_BIG;
    else if (detail == Detail.DESYNC) v = Violation.DESYNC;
    this.violation = v;
    this.detail = detail;
    this.violationPos = this.frameStart;
    this.state = ST_STOPPED;
  }

  private frameDone(): void {
    if (this.firstBoundary < 0 && this.streamPos >= this.chunkStart) this.firstBoundary = <i64>(this.streamPos - this.chunkStart);
    this.state = ST_HEADER;
    this.hPos = 0;
    this.hLen = 0;
    this.extLen = 0;
    this.len = 0;
    this.maskKey = 0;
    this.remaining = 0;
    this.codeHave = 0;
    this.code = 0;
  }

  private headerByte(b: u8): void {
    let pos = this.hPos;
    if (pos == 0) this.frameStart = this.streamPos;
    this.streamPos++;
    this.hPos = pos + 1;
    if (pos == 0) {
      this.byte0(b);
    } else if (pos == 1) {
      this.byte1(b);
    } else if (pos < 2 + this.extLen) {
      this.len = (this.len << 8) | <u64>b;
      if (pos == 1 + this.extLen) this.lengthDone();
    } else {
      this.maskKey = (this.maskKey << 8) | <u32>b;
    }
    if (this.state == ST_HEADER && this.hLen != 0 && this.hPos == this.hLen) this.headerDone();
  }

  private byte0(b: u8): void {
    let op = b & 0x0F;
    this.fin = (b & 0x80) != 0;
    this.opcode = op;
    if (this.closed) { this.violate(Detail.FRAME_AFTER_CLOSE); return; }
    if ((op >= 3 && op <= 7) || op >= 11) { this.violate(Detail.RESERVED_OPCODE); return; }
    if ((b & 0x30) != 0) { this.violate(Detail.RSV_BITS); return; }
    if ((b & 0x40) != 0 && !(this.allowRsv1 && (op == Opcode.TEXT || op == Opcode.BINARY))) {
      this.violate(Detail.RSV_BITS); return;
    }
    if (op >= 8 && !this.fin) { this.violate(Detail.CONTROL_FRAGMENTED); return; }
    if (op == Opcode.CONTINUATION && !this.messageOpen) { this.violate(Detail.UNEXPECTED_CONTINUATION); return; }
    if ((op == Opcode.TEXT || op == Opcode.BINARY) && this.messageOpen) { this.violate(Detail.EXPECTED_CONTINUATION); return; }
  }

  private byte1(b: u8): void {
    let m = (b & 0x80) != 0;
    let l7 = b & 0x7F;
    this.masked = m;
    if (this.fromClient && !m) { this.violate(Detail.MASK_MISSING); return; }
    if (!this.fromClient && m) { this.violate(Detail.MASK_UNEXPECTED); return; }
    if (this.opcode >= 8 && l7 > 125) { this.violate(Detail.CONTROL_TOO_LONG); return; }
    let ext: u32 = 0;
    if (l7 == 126) ext = 2;
    else if (l7 == 127) ext = 8;
    this.extLen = ext;
    let h: u32 = 2 + ext;
    if (m) h += 4;
    this.hLen = h;
    if (ext == 0) {
      this.len = <u64>l7;
      this.lengthDone();
    }
  }

  private lengthDone(): void {
    let len = this.len;
    let ext = this.extLen;
    let op = this.opcode;
    if (ext == 8 && (len >>> 63) != 0) { this.violate(Detail.LENGTH_MSB); return; }
    if ((ext == 2 && len < 126) || (ext == 8 && len < 65536)) { this.violate(Detail.LENGTH_NOT_MINIMAL); return; }
    if (op == Opcode.CLOSE && len == 1) { this.violate(Detail.CLOSE_ONE_BYTE); return; }
    if (op < 8) {
      let tooBig = false;
      if (this.maxFrameBytes != 0 && len > this.maxFrameBytes) {
        if (!this.softLimits) { this.violate(Detail.FRAME_TOO_BIG); return; }
        tooBig = true;
      }
      if (this.maxMessageBytes != 0) {
        let before: u64 = 0;
        if (op == Opcode.CONTINUATION) before = this.messageBytes;
        let total = satAdd(before, len);
        if (total > this.maxMessageBytes) {
          if (!this.softLimits) { this.violate(Detail.MESSAGE_TOO_BIG); return; }
          if (before <= this.maxMessageBytes) tooBig = true; // once per message
        }
      }
      if (tooBig) this.oversize++;
    }
  }

  private headerDone(): void {
    let op = this.opcode;
    let len = this.len;
    this.frames++;
    if (op == Opcode.CONTINUATION) {
      this.messageBytes = satAdd(this.messageBytes, len);
      if (this.fin) { this.messages++; this.messageOpen = false; }
    } else if (op == Opcode.TEXT || op == Opcode.BINARY) {
      this.messageBytes = len;
      if (this.fin) this.messages++;
      else this.messageOpen = true;
    } else if (op == Opcode.PING) {
      this.pings++;
    } else if (op == Opcode.PONG) {
      this.pongs++;
    } else if (op == Opcode.CLOSE) {
      this.closes++;
      this.closed = true;
      if (len == 0) this.lastCloseCode = CLOSE_NO_STATUS;
    }
    if (len == 0) {
      this.frameDone();
    } else if (op == Opcode.CLOSE) {
      this.state = ST_CLOSE_CODE;
      this.remaining = len;
    } else {
      this.state = ST_PAYLOAD;
      this.remaining = len;
    }
  }

  private closeCodeByte(b: u8): void {
    let have = this.codeHave;
    let x = <u32>b;
    if (this.masked) x ^= (this.maskKey >>> (24 - (have << 3))) & 0xFF;
    this.code = (this.code << 8) | x;
    this.codeHave = have + 1;
    this.streamPos++;
    this.payloadBytes++;
    this.remaining--;
    if (have + 1 < 2) return;
    if (!isValidCloseCode(this.code)) { this.violate(Detail.CLOSE_CODE_INVALID); return; }
    this.lastCloseCode = <u16>this.code;
    if (this.remaining == 0) this.frameDone();
    else this.state = ST_PAYLOAD;
  }
}

function satAdd(a: u64, b: u64): u64 {
  let s = a + b;
  if (s < a) return u64.MAX_VALUE;
  return s;
}
