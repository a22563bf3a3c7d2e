// RFC 6455 frame parser (assembly/core/frames.ts): hex fixtures, each fed whole, split at every byte boundary and in
// small fixed chunks, through both the full-push path and the sparse (copy only what is asked) path; counters and
// verdicts must be identical for every chunking. Fuzzing lives in frames_fuzz.spec.ts.
import {
  FrameParser, Violation, Detail, closeCodeFor, detailText, isValidCloseCode, buildCloseFrame, CLOSE_NO_STATUS,
} from "../../assembly/core/frames";
import { Snap, fill, sameSnap, snapText } from "./frames_snap";

// ── helpers ──────────────────────────────────────────────────────────────────────────────────────────────────────

function hexVal(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Hex digits (whitespace ignored); a token `zN` (decimal N) stands for N zero bytes. Two passes, no Array growth. */
function hex(s: string): Uint8Array {
  let size = hexInto(s, null);
  let r = new Uint8Array(size);
  hexInto(s, r);
  return r;
}

function hexInto(s: string, out: Uint8Array | null): i32 {
  let i = 0;
  let n = s.length;
  let hi = -1;
  let w = 0;
  while (i < n) {
    let c = s.charCodeAt(i);
    if (c == 122) { // 'z'
      i++;
      let k = 0;
      while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) { k = k * 10 + (s.charCodeAt(i) - 48); i++; }
      w += k; // Uint8Array starts zeroed
      continue;
    }
    let v = hexVal(c);
    if (v >= 0) {
      if (hi < 0) hi = v;
      else {
        if (out) out[w] = <u8>((hi << 4) | v);
        w++;
        hi = -1;
      }
    }
    i++;
  }
  return w;
}

function hexOf(buf: ArrayBuffer): string {
  let b = Uint8Array.wrap(buf);
  let digits = "0123456789abcdef";
  let s = "";
  for (let i = 0; i < b.length; i++) {
    let v = <i32>b[i];
    s += digits.charAt(v >> 4);
    s += digits.charAt(v & 15);
  }
  return s;
}

function expectSame(got: Snap, want: Snap, ctx: string): void {
  if (!sameSnap(got, want)) expect<string>(snapText(got)).toBe(snapText(want), ctx);
}

/** A fixture: bytes, parser settings, expected outcome. */
class Fx {
  bytes: Uint8Array;
  text: string;
  fromClient: bool;
  rsv1: bool = false;
  maxFrame: u64 = 0;
  maxMsg: u64 = 0;
  violation: u8 = 0;
  detail: u8 = 0;
  violationPos: u64 = 0;
  frames: u64 = 0;
  messages: u64 = 0;
  pings: u64 = 0;
  pongs: u64 = 0;
  closes: u64 = 0;
  payload: u64 = 0;
  closeCode: u16 = 0;

  constructor(h: string, fromClient: bool) {
    this.text = h;
    this.bytes = hex(h);
    this.fromClient = fromClient;
  }
  ext(): Fx { this.rsv1 = true; return this; }
  limits(maxFrame: u64, maxMsg: u64): Fx { this.maxFrame = maxFrame; this.maxMsg = maxMsg; return this; }
  counts(frames: u64, messages: u64, pings: u64, pongs: u64, closes: u64): Fx {
    this.frames = frames; this.messages = messages; this.pings = pings; this.pongs = pongs; this.closes = closes;
    return this;
  }
  pay(n: u64): Fx { this.payload = n; return this; }
  close(code: u16): Fx { this.closeCode = code; return this; }
  bad(v: u8, d: u8, pos: u64): Fx { this.violation = v; this.detail = d; this.violationPos = pos; return this; }
}

// Runs reuse one parser and one snapshot: as-pect runs with rtrace, which makes every allocation expensive.
const P = new FrameParser(false, false, 0, 0);
const CUR = new Snap();
let copiedTotal: u64 = 0;

/** The filter glue's loop, with guest memory standing in for proxy_get_buffer_bytes(start, len). */
function glueFeed(p: FrameParser, chunk: usize, chunkLen: u32): u32 {
  let copied: u32 = 0;
  p.beginChunk(chunkLen);
  while (true) {
    let off = p.nextOffset();
    if (off < 0) break;
    let n = p.nextLength();
    copied += n;
    if (p.push(chunk + <usize>off, n) == 0) break;
  }
  return copied;
}

/** Feeds one chunk: sparse (glue loop) or every byte pushed. */
function feed(p: FrameParser, ptr: usize, len: i32, sparse: bool): void {
  if (sparse) {
    copiedTotal += <u64>glueFeed(p, ptr, <u32>len);
  } else {
    p.beginChunk(<u32>len);
    p.push(ptr, <u32>len);
  }
}

/** mode 0: one chunk; 1: two chunks cut at `a`; 2: chunks of `a` bytes. sparse 0/1, 2 = alternate per chunk. */
function run(fx: Fx, mode: i32, a: i32, sparse: i32, out: Snap): void {
  let p = P;
  p.reset(fx.fromClient, fx.rsv1, fx.maxFrame, fx.maxMsg);
  let base = fx.bytes.dataStart;
  let n = fx.bytes.length;
  copiedTotal = 0;
  if (mode == 0) {
    feed(p, base, n, sparse == 1);
  } else if (mode == 1) {
    feed(p, base, a, sparse == 1);
    feed(p, base + <usize>a, n - a, sparse != 0);
  } else {
    let k = 0;
    for (let off = 0; off < n; off += a) {
      let end = off + a;
      if (end > n) end = n;
      let sp = sparse == 1;
      if (sparse == 2) sp = (k & 1) == 1;
      feed(p, base + <usize>off, end - off, sp);
      k++;
    }
  }
  fill(out, p);
}

/** Every cut for small fixtures; for large ones every cut near the ends (where the headers are), a stride between. */
function nextCut(cut: i32, n: i32): i32 {
  if (n <= 4096 || cut < 512 || cut >= n - 512) return cut + 1;
  return min(cut + 251, n - 512);
}

/** Chunk sizes 1..7, then 0 (done); large fixtures get 1, 7 and 1000. */
function nextSize(size: i32, n: i32): i32 {
  if (n <= 4096) return size < 7 ? size + 1 : 0;
  if (size == 1) return 7;
  if (size == 7) return 1000;
  return 0;
}

function check(fx: Fx): void {
  let ref = new Snap();
  run(fx, 0, 0, 0, ref);
  expect<u8>(ref.violation).toBe(fx.violation, "violation " + fx.text);
  expect<u8>(ref.detail).toBe(fx.detail, "detail " + fx.text);
  expect<u64>(ref.violationPos).toBe(fx.violationPos, "violationPos " + fx.text);
  expect<u64>(ref.frames).toBe(fx.frames, "frames " + fx.text);
  expect<u64>(ref.messages).toBe(fx.messages, "messages " + fx.text);
  expect<u64>(ref.pings).toBe(fx.pings, "pings " + fx.text);
  expect<u64>(ref.pongs).toBe(fx.pongs, "pongs " + fx.text);
  expect<u64>(ref.closes).toBe(fx.closes, "closes " + fx.text);
  expect<u64>(ref.payloadBytes).toBe(fx.payload, "payload " + fx.text);
  expect<u16>(ref.lastCloseCode).toBe(fx.closeCode, "close code " + fx.text);
  expect<bool>(ref.closed).toBe(fx.closes > 0, "closed " + fx.text);
  if (fx.violation == Violation.NONE) {
    expect<u64>(ref.streamPos).toBe(<u64>fx.bytes.length, "all consumed " + fx.text);
    expect<bool>(ref.boundary).toBe(true, "ends on a frame boundary " + fx.text);
  }
  let n = fx.bytes.length;
  // the sparse path never copies payload: per chunk at most three windows of <= 14 bytes per header
  let headers = fx.frames + 1;
  let cur = CUR;
  for (let sp = 0; sp < 3; sp++) {
    run(fx, 0, 0, sp, cur);
    if (!sameSnap(cur, ref)) expectSame(cur, ref, "whole, sparse=" + sp.toString() + " " + fx.text);
    if (sp == 1 && copiedTotal > 14 * (1 + 3 * headers)) expect<u64>(copiedTotal).toBe(0, "copy bound (whole)");
    for (let cut = 0; cut <= n; cut = nextCut(cut, n)) {
      run(fx, 1, cut, sp, cur);
      if (!sameSnap(cur, ref)) expectSame(cur, ref, "cut at " + cut.toString() + ", sparse=" + sp.toString() + " " + fx.text);
      if (sp == 1 && copiedTotal > 14 * (2 + 3 * headers)) expect<u64>(copiedTotal).toBe(0, "copy bound at cut " + cut.toString());
    }
    for (let size = 1; size > 0; size = nextSize(size, n)) {
      run(fx, 2, size, sp, cur);
      if (!sameSnap(cur, ref)) expectSame(cur, ref, "chunks of " + size.toString() + ", sparse=" + sp.toString() + " " + fx.text);
    }
  }
}

function srv(h: string): Fx { return new Fx(h, false); }
function cli(h: string): Fx { return new Fx(h, true); }

// ── valid streams ────────────────────────────────────────────────────────────────────────────────────────────────

describe("frames: valid fixtures (every split, both paths)", (): void => {
  it("short text, unmasked (server → client)", (): void => {
    check(srv("81 05 48656c6c6f").counts(1, 1, 0, 0, 0).pay(5));
  });
  it("short text, masked (client → server, RFC 6455 §5.7)", (): void => {
    check(cli("81 85 37fa213d 7f9f4d5158").counts(1, 1, 0, 0, 0).pay(5));
  });
  it("16-bit length (126), unmasked", (): void => {
    check(srv("82 7E 0100 z256").counts(1, 1, 0, 0, 0).pay(256));
  });
  it("16-bit length (126), masked, largest 16-bit value boundary 126", (): void => {
    check(cli("82 FE 0100 11223344 z256 82 FE 007E 01020304 z126").counts(2, 2, 0, 0, 0).pay(382));
  });
  it("64-bit length (127), unmasked 65536 bytes", (): void => {
    check(srv("82 7F 0000000000010000 z65536 81 00").counts(2, 2, 0, 0, 0).pay(65536));
  });
  it("fragmented message with an interleaved ping", (): void => {
    check(srv("01 03 48656c 89 05 48656c6c6f 80 02 6c6f").counts(3, 1, 1, 0, 0).pay(10));
  });
  it("fragmented masked message with interleaved ping and pong", (): void => {
    check(cli("01 83 01020304 494762 89 80 05060708 8A 81 00000000 41 00 80 a1a2a3a4 80 82 0a0b0c0d 6667")
      .counts(5, 1, 1, 1, 0).pay(6));
  });
  it("close with code and reason, unmasked", (): void => {
    check(srv("81 01 41 88 05 03e8 627965").counts(2, 1, 0, 0, 1).pay(6).close(1000));
  });
  it("close with code and reason, masked", (): void => {
    check(cli("88 84 37fa213d 3413 4e56").counts(1, 0, 0, 0, 1).pay(4).close(1001));
  });
  it("close without body reports 1005", (): void => {
    check(srv("88 00").counts(1, 0, 0, 0, 1).close(CLOSE_NO_STATUS));
  });
  it("close codes at the edges of the valid ranges", (): void => {
    check(srv("88 02 0BB8").counts(1, 0, 0, 0, 1).pay(2).close(3000));
    check(srv("88 02 1387").counts(1, 0, 0, 0, 1).pay(2).close(4999));
    check(srv("88 02 03F6").counts(1, 0, 0, 0, 1).pay(2).close(1014));
    check(srv("88 02 03EF").counts(1, 0, 0, 0, 1).pay(2).close(1007));
  });
  it("empty control and data frames", (): void => {
    check(srv("89 00 8A 00 81 01 41 82 00").counts(4, 2, 1, 1, 0).pay(1));
  });
  it("control frame of exactly 125 bytes", (): void => {
    check(srv("89 7D z125").counts(1, 0, 1, 0, 0).pay(125));
  });
  it("RSV1 on first frames when permessage-deflate is negotiated", (): void => {
    check(srv("C1 05 f248cdc9c9 41 02 aabb 80 01 cc").ext().counts(3, 2, 0, 0, 0).pay(8));
  });
  it("limits equal to the sizes pass; control frames ignore max_frame_bytes", (): void => {
    check(srv("81 05 48656c6c6f").limits(5, 5).counts(1, 1, 0, 0, 0).pay(5));
    check(srv("01 03 48656c 89 05 48656c6c6f 80 02 6c6f").limits(3, 5).counts(3, 1, 1, 0, 0).pay(10));
  });
});

// ── violations ───────────────────────────────────────────────────────────────────────────────────────────────────

describe("frames: violations (every split, both paths)", (): void => {
  it("reserved opcodes", (): void => {
    check(srv("81 01 41 83 00").counts(1, 1, 0, 0, 0).pay(1).bad(Violation.PROTOCOL, Detail.RESERVED_OPCODE, 3));
    check(srv("8B 00").bad(Violation.PROTOCOL, Detail.RESERVED_OPCODE, 0));
    check(srv("8F 00").bad(Violation.PROTOCOL, Detail.RESERVED_OPCODE, 0));
    check(srv("87 00").bad(Violation.PROTOCOL, Detail.RESERVED_OPCODE, 0));
  });
  it("RSV bits without a negotiated extension", (): void => {
    check(srv("A1 00").bad(Violation.PROTOCOL, Detail.RSV_BITS, 0));
    check(srv("91 00").bad(Violation.PROTOCOL, Detail.RSV_BITS, 0));
    check(srv("C1 00").bad(Violation.PROTOCOL, Detail.RSV_BITS, 0));
    check(srv("A1 00").ext().bad(Violation.PROTOCOL, Detail.RSV_BITS, 0));
  });
  it("RSV1 with deflate: not on continuations nor control frames", (): void => {
    check(srv("41 01 41 C0 01 41").ext().counts(1, 0, 0, 0, 0).pay(1).bad(Violation.PROTOCOL, Detail.RSV_BITS, 3));
    check(srv("C9 00").ext().bad(Violation.PROTOCOL, Detail.RSV_BITS, 0));
  });
  it("control frame longer than 125 bytes", (): void => {
    check(srv("89 7E 007E z126").bad(Violation.PROTOCOL, Detail.CONTROL_TOO_LONG, 0));
    check(srv("88 7F 0000000000010000").bad(Violation.PROTOCOL, Detail.CONTROL_TOO_LONG, 0));
    check(cli("8A FE 007E").bad(Violation.PROTOCOL, Detail.CONTROL_TOO_LONG, 0));
  });
  it("fragmented control frame", (): void => {
    check(srv("09 00").bad(Violation.PROTOCOL, Detail.CONTROL_FRAGMENTED, 0));
    check(srv("01 01 41 08 00").counts(1, 0, 0, 0, 0).pay(1).bad(Violation.PROTOCOL, Detail.CONTROL_FRAGMENTED, 3));
  });
  it("continuation without a started message", (): void => {
    check(srv("80 00").bad(Violation.PROTOCOL, Detail.UNEXPECTED_CONTINUATION, 0));
    check(srv("81 00 00 00").counts(1, 1, 0, 0, 0).bad(Violation.PROTOCOL, Detail.UNEXPECTED_CONTINUATION, 2));
  });
  it("new data message while a fragmented one is open", (): void => {
    check(srv("01 01 41 81 01 41").counts(1, 0, 0, 0, 0).pay(1).bad(Violation.PROTOCOL, Detail.EXPECTED_CONTINUATION, 3));
    check(srv("01 01 41 89 00 02 00").counts(2, 0, 1, 0, 0).pay(1).bad(Violation.PROTOCOL, Detail.EXPECTED_CONTINUATION, 5));
  });
  it("mask missing on a client frame", (): void => {
    check(cli("81 01 41").bad(Violation.PROTOCOL, Detail.MASK_MISSING, 0));
    check(cli("89 80 00000000 88 00").counts(1, 0, 1, 0, 0).bad(Violation.PROTOCOL, Detail.MASK_MISSING, 6));
  });
  it("mask present on a server frame", (): void => {
    check(srv("81 81 00000000 41").bad(Violation.PROTOCOL, Detail.MASK_UNEXPECTED, 0));
  });
  it("64-bit length with the most significant bit set", (): void => {
    check(srv("82 7F 8000000000000000").bad(Violation.PROTOCOL, Detail.LENGTH_MSB, 0));
    check(cli("82 FF FFFFFFFFFFFFFFFF 00000000").bad(Violation.PROTOCOL, Detail.LENGTH_MSB, 0));
  });
  it("non-minimal length encodings", (): void => {
    check(srv("82 7E 007D z125").bad(Violation.PROTOCOL, Detail.LENGTH_NOT_MINIMAL, 0));
    check(srv("82 7E 0000").bad(Violation.PROTOCOL, Detail.LENGTH_NOT_MINIMAL, 0));
    check(srv("82 7F 000000000000FFFF").bad(Violation.PROTOCOL, Detail.LENGTH_NOT_MINIMAL, 0));
  });
  it("close payload of one byte", (): void => {
    check(srv("88 01 03").bad(Violation.PROTOCOL, Detail.CLOSE_ONE_BYTE, 0));
  });
  it("invalid close codes", (): void => {
    check(srv("88 02 03EC").counts(1, 0, 0, 0, 1).pay(2).bad(Violation.PROTOCOL, Detail.CLOSE_CODE_INVALID, 0));
    check(srv("88 02 03ED").counts(1, 0, 0, 0, 1).pay(2).bad(Violation.PROTOCOL, Detail.CLOSE_CODE_INVALID, 0));
    check(srv("88 03 03E7 41").counts(1, 0, 0, 0, 1).pay(2).bad(Violation.PROTOCOL, Detail.CLOSE_CODE_INVALID, 0));
    check(srv("88 02 0BB7").counts(1, 0, 0, 0, 1).pay(2).bad(Violation.PROTOCOL, Detail.CLOSE_CODE_INVALID, 0));
    // masked 1005: 03 ED under key 01 02 → 02 EF
    check(cli("88 82 01020304 02EF").counts(1, 0, 0, 0, 1).pay(2).bad(Violation.PROTOCOL, Detail.CLOSE_CODE_INVALID, 0));
  });
  it("frames after a close frame", (): void => {
    check(srv("88 00 81 01 41").counts(1, 0, 0, 0, 1).close(1005).bad(Violation.PROTOCOL, Detail.FRAME_AFTER_CLOSE, 2));
    check(srv("88 02 03E8 89 00").counts(1, 0, 0, 0, 1).pay(2).close(1000).bad(Violation.PROTOCOL, Detail.FRAME_AFTER_CLOSE, 4));
  });
  it("frame too big (max_frame_bytes)", (): void => {
    check(srv("81 05 48656c6c6f").limits(4, 0).bad(Violation.FRAME_TOO_BIG, Detail.FRAME_TOO_BIG, 0));
    check(srv("81 00 82 7F 0000000100000000").limits(1 << 20, 0).counts(1, 1, 0, 0, 0)
      .bad(Violation.FRAME_TOO_BIG, Detail.FRAME_TOO_BIG, 2));
    check(srv("01 02 4142 80 03 434445").limits(2, 0).counts(1, 0, 0, 0, 0).pay(2)
      .bad(Violation.FRAME_TOO_BIG, Detail.FRAME_TOO_BIG, 4));
  });
  it("message too big (max_message_bytes, fragments summed)", (): void => {
    check(srv("01 03 48656c 89 00 80 02 6c6f").limits(0, 4).counts(2, 0, 1, 0, 0).pay(3)
      .bad(Violation.MESSAGE_TOO_BIG, Detail.MESSAGE_TOO_BIG, 7));
    check(srv("81 05 48656c6c6f").limits(0, 4).bad(Violation.MESSAGE_TOO_BIG, Detail.MESSAGE_TOO_BIG, 0));
    check(srv("81 04 41414141 81 05 4141414141").limits(0, 4).counts(1, 1, 0, 0, 0).pay(4)
      .bad(Violation.MESSAGE_TOO_BIG, Detail.MESSAGE_TOO_BIG, 6));
  });
});

// ── API details ──────────────────────────────────────────────────────────────────────────────────────────────────

describe("frames: chunk protocol", (): void => {
  it("asks only for header bytes and skips payload arithmetically", (): void => {
    let b = hex("81 05 48656c6c6f 89 00 82 7E 0100 z256 81 00");
    let p = new FrameParser(false, false, 0, 0);
    p.beginChunk(<u32>b.length);
    expect<i32>(p.nextOffset()).toBe(0);
    expect<u32>(p.nextLength()).toBe(14);
    // 14 bytes: text header + payload, ping, 16-bit header, 1 payload byte
    expect<u32>(p.push(b.dataStart, 14)).toBe(14);
    expect<u64>(p.frames).toBe(3);
    expect<i32>(p.nextOffset()).toBe(13 + 256);
    expect<u32>(p.nextLength()).toBe(2);
    expect<u32>(p.push(b.dataStart + 13 + 256, 2)).toBe(2);
    expect<i32>(p.nextOffset()).toBe(-1);
    expect<u32>(p.nextLength()).toBe(0);
    expect<u64>(p.frames).toBe(4);
    expect<u64>(p.messages).toBe(3);
    expect<u64>(p.payloadBytes).toBe(261);
  });
  it("large payloads cost one header copy whatever the chunking", (): void => {
    let b = hex("82 7F 0000000000010000 z65536");
    let p = new FrameParser(false, false, 0, 0);
    expect<u32>(p.feedChunkSparse(b)).toBe(14);
    let q = new FrameParser(false, false, 0, 0);
    let copied: u32 = 0;
    for (let i = 0; i < b.length; i++) copied += glueFeed(q, b.dataStart + <usize>i, 1);
    expect<u32>(copied).toBe(10);
    expect<u64>(q.payloadBytes).toBe(65536);
    let r = new FrameParser(false, false, 0, 0);
    copied = 0;
    for (let i = 0; i < b.length; i += 1000) copied += glueFeed(r, b.dataStart + <usize>i, <u32>min(1000, b.length - i));
    expect<u32>(copied).toBe(14);
  });
  it("asks for exactly the rest of a header split across chunks", (): void => {
    let b = hex("82 FE 0100 11223344");
    let p = new FrameParser(true, false, 0, 0);
    p.beginChunk(3);
    expect<u32>(p.nextLength()).toBe(3);
    p.push(b.dataStart, 3);
    expect<i32>(p.nextOffset()).toBe(-1);
    p.beginChunk(100);
    expect<i32>(p.nextOffset()).toBe(0);
    expect<u32>(p.nextLength()).toBe(5);
    p.push(b.dataStart + 3, 5);
    expect<u64>(p.frames).toBe(1);
    expect<i32>(p.nextOffset()).toBe(-1); // the 92 remaining bytes are payload
    expect<bool>(p.atFrameBoundary).toBe(false);
  });
  it("asks for the 2 close-code bytes when they start a chunk", (): void => {
    let b = hex("88 82 01020304 02EA");
    let p = new FrameParser(true, false, 0, 0);
    p.beginChunk(6);
    p.push(b.dataStart, 6);
    p.beginChunk(2);
    expect<i32>(p.nextOffset()).toBe(0);
    expect<u32>(p.nextLength()).toBe(2);
    let copy = hex("02EA"); // what proxy_get_buffer_bytes(type, 0, 2) would return
    expect<u32>(p.pushBuffer(copy.buffer)).toBe(2);
    expect<u16>(p.lastCloseCode).toBe(1000);
    expect<bool>(p.atFrameBoundary).toBe(true);
  });
  it("push never reads past the announced chunk", (): void => {
    let b = hex("81 01 41 81 01 41");
    let p = new FrameParser(false, false, 0, 0);
    p.beginChunk(3);
    expect<u32>(p.push(b.dataStart, 6)).toBe(3);
    expect<u64>(p.frames).toBe(1);
    expect<u64>(p.streamPos).toBe(3);
  });
  it("reports where the offending frame starts relative to the chunk", (): void => {
    let b = hex("81 01 41 81 01 41 83 00");
    let p = new FrameParser(false, false, 0, 0);
    p.feedBytes(b.subarray(0, 4));
    p.feedChunkSparse(b.subarray(4, 8));
    expect<u8>(p.violation).toBe(Violation.PROTOCOL);
    expect<u64>(p.chunkStart).toBe(4);
    expect<u64>(p.violationPos).toBe(6);
    expect<u64>(p.streamPos).toBe(7);
  });
  it("a new chunk before the previous one was read is a DESYNC", (): void => {
    let b = hex("81 01 41 81 01 41");
    let p = new FrameParser(false, false, 0, 0);
    p.beginChunk(6);
    p.push(b.dataStart, 4);
    p.beginChunk(6);
    expect<u8>(p.violation).toBe(Violation.DESYNC);
    expect<u8>(p.detail).toBe(Detail.DESYNC);
    expect<u64>(p.violationPos).toBe(4);
    expect<u16>(closeCodeFor(p.violation)).toBe(1011);
  });
  it("a chunk that ends inside payload is not a DESYNC", (): void => {
    let b = hex("82 7E 0100 z256");
    let p = new FrameParser(false, false, 0, 0);
    p.beginChunk(100);
    p.push(b.dataStart, 4);
    p.beginChunk(160);
    p.push(b.dataStart + 100, 160);
    expect<u8>(p.violation).toBe(Violation.NONE);
    expect<u64>(p.payloadBytes).toBe(256);
  });
  it("violations are sticky", (): void => {
    let p = new FrameParser(false, false, 0, 0);
    p.feedBytes(hex("83 00"));
    p.feedBytes(hex("81 01 41"));
    expect<u64>(p.frames).toBe(0);
    expect<bool>(p.stopped).toBe(true);
    expect<i32>(p.nextOffset()).toBe(-1);
    expect<u32>(p.push(0, 10)).toBe(0);
    expect<u8>(p.detail).toBe(Detail.RESERVED_OPCODE);
  });
  it("tracks the size of the open message", (): void => {
    let p = new FrameParser(false, false, 0, 0);
    p.feedBytes(hex("01 03 414141"));
    expect<bool>(p.messageOpen).toBe(true);
    expect<u64>(p.messageBytes).toBe(3);
    p.feedBytes(hex("89 02 4141 00 04 41414141"));
    expect<u64>(p.messageBytes).toBe(7);
    p.feedBytes(hex("80 01 41"));
    expect<bool>(p.messageOpen).toBe(false);
    expect<u64>(p.messageBytes).toBe(8);
    expect<u64>(p.messages).toBe(1);
    p.feedBytes(hex("82 02 4141"));
    expect<u64>(p.messageBytes).toBe(2);
  });
  it("empty chunks are harmless", (): void => {
    let p = new FrameParser(false, false, 0, 0);
    p.feedChunkSparse(new Uint8Array(0));
    p.beginChunk(0);
    expect<i32>(p.nextOffset()).toBe(-1);
    expect<u8>(p.violation).toBe(Violation.NONE);
  });
});

describe("frames: codes and close frames", (): void => {
  it("close-code validity per RFC 6455 §7.4", (): void => {
    expect<bool>(isValidCloseCode(999)).toBe(false);
    expect<bool>(isValidCloseCode(0)).toBe(false);
    for (let c: u32 = 1000; c <= 1003; c++) expect<bool>(isValidCloseCode(c)).toBe(true);
    expect<bool>(isValidCloseCode(1004)).toBe(false);
    expect<bool>(isValidCloseCode(1005)).toBe(false);
    expect<bool>(isValidCloseCode(1006)).toBe(false);
    for (let c: u32 = 1007; c <= 1014; c++) expect<bool>(isValidCloseCode(c)).toBe(true);
    expect<bool>(isValidCloseCode(1015)).toBe(false);
    expect<bool>(isValidCloseCode(1016)).toBe(false);
    expect<bool>(isValidCloseCode(2999)).toBe(false);
    expect<bool>(isValidCloseCode(3000)).toBe(true);
    expect<bool>(isValidCloseCode(4999)).toBe(true);
    expect<bool>(isValidCloseCode(5000)).toBe(false);
    expect<bool>(isValidCloseCode(65535)).toBe(false);
  });
  it("closeCodeFor and detailText", (): void => {
    expect<u16>(closeCodeFor(Violation.NONE)).toBe(1000);
    expect<u16>(closeCodeFor(Violation.PROTOCOL)).toBe(1002);
    expect<u16>(closeCodeFor(Violation.FRAME_TOO_BIG)).toBe(1009);
    expect<u16>(closeCodeFor(Violation.MESSAGE_TOO_BIG)).toBe(1009);
    expect<u16>(closeCodeFor(Violation.DESYNC)).toBe(1011);
    for (let d: u8 = 1; d <= 16; d++) {
      expect<bool>(detailText(d).length > 0).toBe(true);
      expect<bool>(detailText(d) != "unknown").toBe(true);
    }
    expect<string>(detailText(Detail.RESERVED_OPCODE)).toBe("reserved opcode");
  });
  it("buildCloseFrame: exact bytes", (): void => {
    expect<string>(hexOf(buildCloseFrame(1000, "bye", false, 0))).toBe("880503e8627965");
    expect<string>(hexOf(buildCloseFrame(1001, "ok", true, 0x37fa213d))).toBe("888437fa213d34134e56");
    expect<string>(hexOf(buildCloseFrame(1002, "", false, 0))).toBe("880203ea");
    expect<string>(hexOf(buildCloseFrame(0, "ignored", false, 0))).toBe("8800");
    expect<string>(hexOf(buildCloseFrame(1005, "x", true, 0x01020304))).toBe("888001020304");
  });
  it("buildCloseFrame: reason cut to 123 bytes on a code-point boundary", (): void => {
    let ascii = "";
    for (let i = 0; i < 200; i++) ascii += "a";
    let f = buildCloseFrame(1008, ascii, false, 0);
    expect<i32>(f.byteLength).toBe(2 + 125);
    let e2 = "";
    for (let i = 0; i < 100; i++) e2 += "é"; // 2 bytes each: 123 would split one, so 122
    f = buildCloseFrame(1008, e2, false, 0);
    expect<i32>(f.byteLength).toBe(2 + 2 + 122);
    let e3 = "";
    for (let i = 0; i < 60; i++) e3 += "€"; // 3 bytes each: 123 fits exactly 41
    f = buildCloseFrame(1008, e3, true, 7);
    expect<i32>(f.byteLength).toBe(6 + 2 + 123);
  });
  it("buildCloseFrame round-trips through the parser", (): void => {
    roundTrip(1000, "normal", false, 0);
    roundTrip(1001, "going away", true, 0xdeadbeef);
    roundTrip(1002, "protocol error", true, 0);
    roundTrip(1008, "policy", false, 0);
    roundTrip(1009, "", true, 0x80000001);
    roundTrip(4000, "app", true, 0x12345678);
  });
});

function roundTrip(code: u16, reason: string, masked: bool, key: u32): void {
  let f = Uint8Array.wrap(buildCloseFrame(code, reason, masked, key));
  let fx = new Fx("", masked);
  fx.bytes = f;
  fx.text = "close " + code.toString();
  let reasonLen = String.UTF8.byteLength(reason, false);
  check(fx.counts(1, 0, 0, 0, 1).pay(<u64>(2 + reasonLen)).close(code));
}
