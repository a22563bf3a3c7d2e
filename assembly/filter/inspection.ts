// Frame-inspection state of one upgraded stream: a parser per direction and the close handshake's progress.
// Data only (frames.ts acts on it); the Stream holds one after the 101 when frames.enabled.
import { FrameParser } from "../core/frames";

/** One direction: its parser, what was already reported to stats, its message-rate bucket. */
export class Side {
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
  delivered: bool = false; // shadow mode: this side's protocol violation was counted

  constructor(fromClient: bool, rsv1: bool, maxFrame: u64, maxMessage: u64, burst: u32) {
    this.parser = new FrameParser(fromClient, rsv1, maxFrame, maxMessage);
    this.tokens = f64(burst);
  }
}

export class Inspection {
  down: Side;   // frames from the downstream client (request body)
  up: Side;     // frames from the upstream (response body)
  closing: bool = false;
  deadlineTick: u32 = 0;     // the handshake is reset at this tick of its root (ticks are monotonic timers)
  shadowDrain: bool = false; // shadow mode: the would-be drain close was counted for this connection
  clientCode: u16 = 0;       // the close the client gets (step 1)
  podCode: u16 = 0;          // the close the pod gets (step 2)
  clientSent: bool = false;
  podSent: bool = false;

  constructor(rsv1: bool, maxFrame: u64, maxMessage: u64, burst: u32, shadow: bool) {
    this.down = new Side(true, rsv1, maxFrame, maxMessage, burst);
    this.up = new Side(false, rsv1, maxFrame, maxMessage, burst);
    this.down.parser.softLimits = shadow;
    this.up.parser.softLimits = shadow;
  }
}
