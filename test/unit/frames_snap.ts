// Shared by frames.spec.ts and frames_fuzz.spec.ts: a copy of a FrameParser's verdict and counters, to compare runs
// of the same bytes fed with different chunkings. Not a spec itself.
import { FrameParser } from "../../assembly/core/frames";

export class Snap {
  violation: u8 = 0;
  detail: u8 = 0;
  violationPos: u64 = 0;
  closed: bool = false;
  frames: u64 = 0;
  messages: u64 = 0;
  payloadBytes: u64 = 0;
  pings: u64 = 0;
  pongs: u64 = 0;
  closes: u64 = 0;
  lastCloseCode: u16 = 0;
  messageBytes: u64 = 0;
  messageOpen: bool = false;
  streamPos: u64 = 0;
  boundary: bool = false;
}

export function fill(s: Snap, p: FrameParser): void {
  s.violation = p.violation; s.detail = p.detail; s.violationPos = p.violationPos; s.closed = p.closed;
  s.frames = p.frames; s.messages = p.messages; s.payloadBytes = p.payloadBytes; s.pings = p.pings;
  s.pongs = p.pongs; s.closes = p.closes; s.lastCloseCode = p.lastCloseCode; s.messageBytes = p.messageBytes;
  s.messageOpen = p.messageOpen; s.streamPos = p.streamPos; s.boundary = p.atFrameBoundary;
}

export function sameSnap(a: Snap, b: Snap): bool {
  return a.violation == b.violation && a.detail == b.detail && a.violationPos == b.violationPos &&
    a.closed == b.closed && a.frames == b.frames && a.messages == b.messages && a.payloadBytes == b.payloadBytes &&
    a.pings == b.pings && a.pongs == b.pongs && a.closes == b.closes && a.lastCloseCode == b.lastCloseCode &&
    a.messageBytes == b.messageBytes && a.messageOpen == b.messageOpen && a.streamPos == b.streamPos &&
    a.boundary == b.boundary;
}

export function snapText(s: Snap): string {
  let t = "v=" + s.violation.toString() + " d=" + s.detail.toString() + " vpos=" + s.violationPos.toString();
  t += " frames=" + s.frames.toString() + " msgs=" + s.messages.toString() + " payload=" + s.payloadBytes.toString();
  t += " ping=" + s.pings.toString() + " pong=" + s.pongs.toString() + " close=" + s.closes.toString();
  t += " code=" + s.lastCloseCode.toString() + " msgBytes=" + s.messageBytes.toString();
  t += " pos=" + s.streamPos.toString();
  if (s.closed) t += " closed";
  if (s.messageOpen) t += " open";
  if (s.boundary) t += " boundary";
  return t;
}
