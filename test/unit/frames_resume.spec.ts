// FrameParser.resume() (assembly/core/frames.ts): after a size violation the filter keeps scanning the sender's bytes
// for its close reply. resume() must re-parse the offending frame with limits off, skip its payload (whole or split
// across chunks), keep the message state (fragmented messages), and find the close frame that follows; it must refuse
// protocol violations and frames that began in an earlier chunk.
import { FrameParser, Violation } from "../../assembly/core/frames";

/** One masked client frame (mask key 0: payload bytes stay as given). */
function frame(first: u8, len: i32): Uint8Array {
  let h = 6;
  if (len >= 126) h = 8;
  const f = new Uint8Array(h + len);
  f[0] = first;
  if (len >= 126) {
    f[1] = 0x80 | 126;
    f[2] = <u8>(len >> 8);
    f[3] = <u8>len;
  } else f[1] = <u8>(0x80 | len);
  return f;
}

function closeFrame(code: u16): Uint8Array {
  const f = frame(0x88, 2);
  f[6] = <u8>(code >> 8);
  f[7] = <u8>code;
  return f;
}

function cat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}

/** Resumes (must succeed), then pushes the rest of the current chunk `buf` from where the parser stands. */
function resumeRest(p: FrameParser, buf: Uint8Array): void {
  expect<bool>(p.resume()).toBe(true);
  const off = p.nextOffset();
  if (off >= 0) p.push(buf.dataStart + <usize>off, <u32>(buf.length - off));
}

describe("FrameParser.resume", () => {
  it("skips an oversize frame split across chunks and finds the close frame after it", () => {
    const p = new FrameParser(true, false, 0, 100);
    const big = frame(0x82, 300);
    const chunk1 = cat(frame(0x81, 5), big.subarray(0, 50));
    p.feedBytes(chunk1);
    expect<u8>(p.violation).toBe(Violation.MESSAGE_TOO_BIG);
    expect<u64>(p.violationPos).toBe(11);
    resumeRest(p, chunk1);
    expect<bool>(p.stopped).toBe(false);
    expect<u8>(p.violation).toBe(Violation.NONE);
    expect<u64>(p.messages).toBe(2); // the oversize message is counted once its header is accepted again
    p.feedBytes(big.subarray(50));
    expect<bool>(p.closed).toBe(false);
    p.feedChunkSparse(cat(frame(0x81, 3), closeFrame(1008)));
    expect<bool>(p.closed).toBe(true);
    expect<u16>(p.lastCloseCode).toBe(1008);
    expect<u8>(p.violation).toBe(Violation.NONE);
  });

  it("keeps a fragmented message open: its continuation frames stay valid", () => {
    const p = new FrameParser(true, false, 0, 100);
    const chunk = cat(frame(0x01, 60), frame(0x00, 60)); // text without FIN, then a continuation over the limit
    p.feedBytes(chunk);
    expect<u8>(p.violation).toBe(Violation.MESSAGE_TOO_BIG);
    resumeRest(p, chunk);
    p.feedBytes(cat(frame(0x80, 10), closeFrame(1000)));
    expect<u8>(p.violation).toBe(Violation.NONE);
    expect<u64>(p.messages).toBe(1);
    expect<u16>(p.lastCloseCode).toBe(1000);
  });

  it("refuses protocol violations and frames that began in an earlier chunk", () => {
    const p = new FrameParser(true, false, 0, 0);
    p.feedBytes(frame(0x83, 1)); // reserved opcode
    expect<u8>(p.violation).toBe(Violation.PROTOCOL);
    expect<bool>(p.resume()).toBe(false);
    expect<bool>(p.stopped).toBe(true);

    const q = new FrameParser(true, false, 10, 0);
    const f = frame(0x82, 200);
    q.feedBytes(f.subarray(0, 1)); // the header is split: the violation comes in the next chunk
    q.feedBytes(f.subarray(1, 20));
    expect<u8>(q.violation).toBe(Violation.FRAME_TOO_BIG);
    expect<bool>(q.resume()).toBe(false);
    expect<bool>(q.stopped).toBe(true);
  });
});
