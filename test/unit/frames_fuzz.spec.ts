// Bounded, deterministic fuzzing of the RFC 6455 frame parser (assembly/core/frames.ts).
// * valid: random frame sequences (fragments, interleaved control frames, 7/16/64-bit lengths, masks, RSV1 under
//   deflate, closes, random limits) fed in random chunkings, each chunk through a random feeding strategy; counters
//   and verdict must equal the generator's truth, and the sparse path must copy only header-sized windows.
// * mutated: the same sequences with one byte flipped: any chunking must give the same result as one whole push.
// * garbage: random bytes: never traps, and any chunking gives the same result as one whole push.
// Nothing is allocated per case (as-pect runs with rtrace, which makes allocations expensive).
import { FrameParser, Violation, Detail, Opcode, CLOSE_NO_STATUS } from "../../assembly/core/frames";
import { Snap, fill, sameSnap, snapText } from "./frames_snap";

const VALID_CASES = 2000;
const GARBAGE_CASES = 2000;

// ── PRNG (xorshift32) ────────────────────────────────────────────────────────────────────────────────────────────

let rng: u32 = 0x2545F491;
function rnd(): u32 {
  let x = rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  rng = x;
  return x;
}
function below(n: u32): u32 { return rnd() % n; }
function chance(percent: u32): bool { return below(100) < percent; }

// ── snapshots ────────────────────────────────────────────────────────────────────────────────────────────────────

function clear(s: Snap): void {
  s.violation = 0; s.detail = 0; s.violationPos = 0; s.closed = false; s.frames = 0; s.messages = 0;
  s.payloadBytes = 0; s.pings = 0; s.pongs = 0; s.closes = 0; s.lastCloseCode = 0; s.messageBytes = 0;
  s.messageOpen = false; s.streamPos = 0; s.boundary = true;
}

function mismatch(got: Snap, want: Snap, what: string, caseNo: i32): void {
  expect<string>(snapText(got)).toBe(snapText(want), what + " case " + caseNo.toString());
}

// ── generator ────────────────────────────────────────────────────────────────────────────────────────────────────

const BUF_SIZE: i32 = 1 << 18;
const BUF = new Uint8Array(BUF_SIZE);
const CLOSE_CODES: StaticArray<u16> = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999];

let W: i32 = 0;             // bytes written
let gFromClient = false;
let gExt = false;
let gMaxFrame: u64 = 0;
let gMaxMsg: u64 = 0;
let gStop = false;          // the truth has recorded a violation: stop generating
const STARTS = new StaticArray<i32>(4096); // frame start offsets, for mutations aimed at headers
let nStarts = 0;
const TRUTH = new Snap();

function put(b: u32): void { store<u8>(BUF.dataStart + <usize>W, <u8>b); W++; }

function satAdd(a: u64, b: u64): u64 { let s = a + b; return s < a ? u64.MAX_VALUE : s; }

/** Payload length for a data frame: mostly 7-bit, some 16-bit (boundaries included), rarely 64-bit. */
function dataLen(): u64 {
  let r = below(100);
  let len: u64 = 0;
  if (r < 65) len = <u64>below(126);
  else if (r < 85) len = <u64>(126 + below(1500));
  else if (r < 94) len = chance(50) ? 126 : 65535;
  else if (r < 97) len = <u64>(126 + below(65536 - 126));
  else len = <u64>(65536 + below(5000));
  if (W + <i32>len + 4096 > BUF_SIZE) len = <u64>below(126);
  return len;
}

/** Writes one frame and updates the truth exactly as the parser must see it. */
function frame(fin: bool, rsv1: bool, op: u8, len: u64, closeCode: u16, reasonLen: u32): void {
  if (gStop) return;
  let start = W;
  if (nStarts < STARTS.length) STARTS[nStarts++] = start;
  let ext: i32 = 0;
  if (len >= 65536) ext = 8;
  else if (len >= 126) ext = 2;
  // truth first: limits are checked once the length is read
  let t = TRUTH;
  if (op < 8) {
    let tooBigFrame = gMaxFrame != 0 && len > gMaxFrame;
    let total = len;
    if (op == Opcode.CONTINUATION) total = satAdd(t.messageBytes, len);
    let tooBigMsg = gMaxMsg != 0 && total > gMaxMsg;
    if (tooBigFrame || tooBigMsg) {
      if (tooBigFrame) { t.violation = Violation.FRAME_TOO_BIG; t.detail = Detail.FRAME_TOO_BIG; }
      else { t.violation = Violation.MESSAGE_TOO_BIG; t.detail = Detail.MESSAGE_TOO_BIG; }
      t.violationPos = <u64>start;
      t.streamPos = <u64>(start + 2 + ext);
      t.boundary = false;
      gStop = true;
    }
  }
  if (!gStop) {
    t.frames++;
    t.payloadBytes += len;
    if (op == Opcode.CONTINUATION) {
      t.messageBytes = satAdd(t.messageBytes, len);
      if (fin) { t.messages++; t.messageOpen = false; }
    } else if (op == Opcode.TEXT || op == Opcode.BINARY) {
      t.messageBytes = len;
      if (fin) t.messages++;
      else t.messageOpen = true;
    } else if (op == Opcode.PING) t.pings++;
    else if (op == Opcode.PONG) t.pongs++;
    else if (op == Opcode.CLOSE) {
      t.closes++;
      t.closed = true;
      if (len == 0) t.lastCloseCode = CLOSE_NO_STATUS;
      else t.lastCloseCode = closeCode;
    }
  }
  // bytes
  let b0: u32 = <u32>op;
  if (fin) b0 |= 0x80;
  if (rsv1) b0 |= 0x40;
  put(b0);
  let m: u32 = gFromClient ? 0x80 : 0;
  if (ext == 0) put(m | <u32>len);
  else if (ext == 2) { put(m | 126); put(<u32>(len >> 8) & 0xFF); put(<u32>len & 0xFF); }
  else {
    put(m | 127);
    for (let i = 7; i >= 0; i--) put(<u32>(len >> (<u64>i * 8)) & 0xFF);
  }
  let key: u32 = 0;
  if (gFromClient) {
    key = rnd();
    put(key >>> 24); put((key >>> 16) & 0xFF); put((key >>> 8) & 0xFF); put(key & 0xFF);
  }
  if (op == Opcode.CLOSE && len >= 2) {
    let p0 = W;
    put(<u32>closeCode >>> 8);
    put(<u32>closeCode & 0xFF);
    for (let i: u32 = 0; i < reasonLen; i++) put(97 + below(26));
    if (gFromClient) {
      for (let i: i32 = 0; i < W - p0; i++) {
        let k = (key >>> (24 - ((<u32>i & 3) << 3))) & 0xFF;
        let a = BUF.dataStart + <usize>(p0 + i);
        store<u8>(a, load<u8>(a) ^ <u8>k);
      }
    }
  } else {
    // the parser never looks at payload; random leading bytes make mutated lengths land on junk, not zeros
    let head = <i32>min<u64>(len, 16);
    for (let i = 0; i < head; i++) put(rnd() & 0xFF);
    W += <i32>len - head;
  }
  if (!gStop) t.streamPos = <u64>W;
}

function control(): void {
  let op = Opcode.PING;
  if (chance(50)) op = Opcode.PONG;
  frame(true, false, op, <u64>below(126), 0, 0);
}

function generate(): void {
  W = 0;
  nStarts = 0;
  gStop = false;
  clear(TRUTH);
  gFromClient = chance(50);
  gExt = chance(30);
  gMaxFrame = 0;
  gMaxMsg = 0;
  let lim = below(4);
  if (lim == 1 || lim == 3) gMaxFrame = <u64>(1 + below(3000));
  if (lim == 2 || lim == 3) gMaxMsg = <u64>(1 + below(6000));
  let msgs: u32 = 1 + below(6);
  for (let m: u32 = 0; m < msgs; m++) {
    let op = Opcode.TEXT;
    if (chance(50)) op = Opcode.BINARY;
    let frags: u32 = 1;
    if (chance(35)) frags = 2 + below(4);
    for (let f: u32 = 0; f < frags; f++) {
      while (chance(20)) control();
      let fop = op;
      if (f > 0) fop = Opcode.CONTINUATION;
      frame(f == frags - 1, gExt && f == 0 && chance(50), fop, dataLen(), 0, 0);
    }
  }
  while (chance(15)) control();
  if (chance(40)) {
    if (chance(30)) frame(true, false, Opcode.CLOSE, 0, 0, 0);
    else {
      let rl = below(21);
      frame(true, false, Opcode.CLOSE, <u64>(2 + rl), CLOSE_CODES[below(<u32>CLOSE_CODES.length)], rl);
    }
  }
}

/** Garbage: 25% plain random bytes; otherwise a run of frame-like tokens with random (often wrong) fields. */
function garbage(): i32 {
  let n = <i32>below(97);
  if (chance(25)) {
    for (let i = 0; i < n; i++) BUF[i] = <u8>rnd();
    return n;
  }
  W = 0;
  while (W < n) {
    if (chance(20)) {
      let k: u32 = 1 + below(8);
      for (let i: u32 = 0; i < k; i++) put(rnd() & 0xFF);
      continue;
    }
    let op: u32 = 0;
    let r = below(10);
    if (r < 2) op = 0x0; else if (r < 4) op = 0x1; else if (r < 5) op = 0x2; else if (r < 7) op = 0x8;
    else if (r < 8) op = 0x9; else if (r < 9) op = 0xA; else op = below(16);
    let b0 = op;
    if (chance(70)) b0 |= 0x80;
    if (chance(10)) b0 |= 0x10 << below(3);
    put(b0);
    let m: u32 = 0;
    if (chance(50)) m = 0x80;
    let len: u32 = below(6);
    let lr = below(10);
    if (lr == 0) { put(m | 126); put(0); put(below(256)); len = 0; }
    else if (lr == 1) { put(m | 127); for (let i = 0; i < 7; i++) put(chance(80) ? 0 : below(256)); put(below(256)); len = 0; }
    else put(m | len);
    if (m != 0) for (let i = 0; i < 4; i++) put(chance(50) ? 0 : below(256));
    if ((op == 0x8) && len >= 2 && chance(70)) {
      let code: u32 = CLOSE_CODES[below(<u32>CLOSE_CODES.length)];
      if (chance(30)) code = below(5200);
      put(code >>> 8); put(code & 0xFF);
      len -= 2;
    }
    for (let i: u32 = 0; i < len; i++) put(below(256));
  }
  return n;
}

// ── feeding ──────────────────────────────────────────────────────────────────────────────────────────────────────

const P = new FrameParser(false, false, 0, 0);
const Q = new FrameParser(false, false, 0, 0);
const GOT = new Snap();
const REF = new Snap();
let copied: u64 = 0;
let chunks: u64 = 0;

/** One chunk. strategy 0: push all; 1: glue loop; 2: glue loop pushing fewer bytes; 3: glue loop pushing more. */
function feedChunk(p: FrameParser, ptr: usize, len: u32, strategy: u32): void {
  chunks++;
  p.beginChunk(len);
  if (strategy == 0) { p.push(ptr, len); return; }
  while (true) {
    let off = p.nextOffset();
    if (off < 0) break;
    let n = p.nextLength();
    if (strategy == 2) n = 1 + below(n);
    else if (strategy == 3) n = n + below(len - <u32>off - n + 1);
    copied += <u64>n;
    if (p.push(ptr + <usize>off, n) == 0) break;
  }
}

/** Random chunking of BUF[0, n). fixed >= 0: every chunk uses that strategy; -1: random per chunk.
 *  Small chunks are only used near the start of large inputs (cost), which is where the headers are dense. */
function feedRandom(p: FrameParser, n: i32, fixed: i32): void {
  let style = below(4);
  let off = 0;
  while (off < n) {
    let size: i32 = 1;
    if (off > 2048 && chance(80)) size = 1 + <i32>below(16384);
    else if (style == 0) size = 1 + <i32>below(8);
    else if (style == 1) size = 1 + <i32>below(64);
    else if (style == 2) size = 1 + <i32>below(<u32>n);
    else if (chance(90)) size = 1 + <i32>below(16);
    else size = 1 + <i32>below(<u32>n);
    if (off + size > n) size = n - off;
    if (chance(3)) feedChunk(p, BUF.dataStart, 0, 1); // empty chunks happen (upstream close)
    let st: u32 = fixed >= 0 ? <u32>fixed : below(4);
    feedChunk(p, BUF.dataStart + <usize>off, <u32>size, st);
    off += size;
  }
}

/** 1-byte chunks over the first `k` bytes (alternating push / glue), the rest as one glue chunk. */
function feedBytewise(p: FrameParser, n: i32, k: i32): void {
  let m = min(n, k);
  for (let i = 0; i < m; i++) feedChunk(p, BUF.dataStart + <usize>i, 1, i & 1);
  if (n > m) feedChunk(p, BUF.dataStart + <usize>m, <u32>(n - m), 1);
}

function setup(p: FrameParser): void { p.reset(gFromClient, gExt, gMaxFrame, gMaxMsg); }

// ── tests ────────────────────────────────────────────────────────────────────────────────────────────────────────

describe("frames fuzz: valid sequences", (): void => {
  it("counters match the generator for random chunkings and feeding strategies", (): void => {
    rng = 0x2545F491;
    let violations = 0;
    let bigFrames = 0;
    for (let c = 0; c < VALID_CASES; c++) {
      generate();
      if (TRUTH.violation != Violation.NONE) violations++;
      let n = W;
      // whole buffer, pushed
      setup(P);
      chunks = 0;
      feedChunk(P, BUF.dataStart, <u32>n, 0);
      fill(GOT, P);
      if (!sameSnap(GOT, TRUTH)) mismatch(GOT, TRUTH, "whole", c);
      // random chunks, random strategy per chunk
      setup(P);
      feedRandom(P, n, -1);
      fill(GOT, P);
      if (!sameSnap(GOT, TRUTH)) mismatch(GOT, TRUTH, "mixed chunks", c);
      // random chunks, pure glue loop: the copy bound (one <= 14-byte window per header, close code, chunk start)
      setup(Q);
      copied = 0;
      chunks = 0;
      feedRandom(Q, n, 1);
      fill(GOT, Q);
      if (!sameSnap(GOT, TRUTH)) mismatch(GOT, TRUTH, "glue chunks", c);
      let bound = 14 * (TRUTH.frames + 1 + TRUTH.closes + chunks);
      if (copied > bound) expect<u64>(copied).toBe(bound, "copy bound, case " + c.toString());
      if (n > 65536) bigFrames++;
    }
    // the generator must actually reach the interesting regions
    expect<bool>(violations > VALID_CASES / 10).toBe(true, "some cases hit the limits");
    expect<bool>(violations < VALID_CASES / 2).toBe(true, "most cases are clean");
    expect<bool>(bigFrames > 10).toBe(true, "some 64-bit lengths");
  });

  it("one flipped byte: every chunking agrees with a whole push", (): void => {
    rng = 0x1B873593;
    let verdicts = new StaticArray<i32>(5);
    for (let c = 0; c < VALID_CASES; c++) {
      generate();
      if (chance(50)) { gMaxFrame = 0; gMaxMsg = 0; } // limits would hide most protocol errors
      let n = W;
      if (n == 0) continue;
      // most flips hit the first bytes of a header, the rest anywhere in the first bytes
      let pos: i32 = 0;
      if (nStarts > 0 && chance(70)) pos = STARTS[<i32>below(<u32>nStarts)] + <i32>below(4);
      else pos = <i32>below(<u32>min(n, 64 + <i32>below(<u32>n)));
      if (pos >= n) pos = n - 1;
      let at = BUF.dataStart + <usize>pos;
      store<u8>(at, load<u8>(at) ^ <u8>(1 + below(255)));
      setup(Q);
      feedChunk(Q, BUF.dataStart, <u32>n, 0);
      fill(REF, Q);
      verdicts[<i32>Q.violation]++;
      setup(P);
      feedRandom(P, n, -1);
      fill(GOT, P);
      if (!sameSnap(GOT, REF)) mismatch(GOT, REF, "mutated, mixed chunks", c);
      setup(P);
      feedBytewise(P, n, 1024);
      fill(GOT, P);
      if (!sameSnap(GOT, REF)) mismatch(GOT, REF, "mutated, 1-byte chunks", c);
    }
    expect<bool>(verdicts[Violation.NONE] > 200).toBe(true, "some mutations stay valid");
    expect<bool>(verdicts[Violation.FRAME_TOO_BIG] > 50).toBe(true, "mutations reach frame limits");
    expect<bool>(verdicts[Violation.PROTOCOL] > 300).toBe(true, "mutations reach protocol violations");
  });
});

describe("frames fuzz: garbage", (): void => {
  it("random bytes never trap and give the same verdict for any chunking", (): void => {
    rng = 0x68E31DA4;
    let details = new StaticArray<i32>(32);
    for (let c = 0; c < GARBAGE_CASES; c++) {
      let n = garbage();
      gFromClient = chance(50);
      gExt = chance(50);
      gMaxFrame = chance(50) ? <u64>below(200) : 0;
      gMaxMsg = chance(50) ? <u64>below(400) : 0;
      setup(Q);
      feedChunk(Q, BUF.dataStart, <u32>n, 0);
      fill(REF, Q);
      details[<i32>Q.detail]++;
      // invariants
      if (REF.streamPos > <u64>n) expect<u64>(REF.streamPos).toBe(<u64>n, "streamPos within input");
      if (REF.violation == Violation.NONE && REF.streamPos != <u64>n) expect<u64>(REF.streamPos).toBe(<u64>n, "all consumed");
      if (REF.violation != Violation.NONE && REF.violationPos >= REF.streamPos) expect<bool>(false).toBe(true, "violationPos < streamPos");
      setup(P);
      feedRandom(P, n, -1);
      fill(GOT, P);
      if (!sameSnap(GOT, REF)) mismatch(GOT, REF, "garbage, mixed chunks", c);
      setup(P);
      feedBytewise(P, n, n);
      fill(GOT, P);
      if (!sameSnap(GOT, REF)) mismatch(GOT, REF, "garbage, 1-byte glue chunks", c);
    }
    // every PROTOCOL detail except DESYNC shows up somewhere in the garbage
    for (let d = 1; d <= 15; d++) {
      if (details[d] == 0) expect<i32>(details[d]).toBeGreaterThan(0, "detail " + d.toString() + " reached");
    }
  });
});
