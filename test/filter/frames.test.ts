// Frame inspection inside the release module (the e2e suite test/e2e/frames.test.ts covers real ws peers): the close
// handshake, its deadline, and the stats, driven chunk by chunk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeEnv, conn, upgradeHeaders, H101, isContinue, podTotal, ok, type StepResult } from "./support.ts";

function frame(op: number, payload: Uint8Array, masked: boolean): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? [0x80 | op, (masked ? 0x80 : 0) | n] : [0x80 | op, (masked ? 0x80 : 0) | 126, n >> 8, n & 255];
  const mask = masked ? [7, 1, 9, 3] : [];
  const body = payload.map((b, i) => (masked ? b ^ mask[i % 4] : b));
  return new Uint8Array([...head, ...mask, ...body]);
}
/** Status code of a close frame at the start of `d` (unmasking it when masked), -1 if it is not a close frame. */
function closeCode(d: Uint8Array): number {
  if (d[0] !== 0x88) return -1;
  if ((d[1] & 0x80) === 0) return (d[2] << 8) | d[3];
  return ((d[6] ^ d[2]) << 8) | (d[7] ^ d[3]);
}

test("frames: oversize client message → 1001 to the pod now, 1009 to the client at the pod's next chunk, then the stream ends", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true, max_message_bytes: 100 } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const hello = frame(1, new TextEncoder().encode("hello"), true);
    const big = frame(2, new Uint8Array(200), true);
    const r1 = s.decodeData(new Uint8Array([...hello, ...big]), false) as Extract<StepResult, { kind: "continue" }>;
    assert.equal(r1.kind, "continue");
    const out = r1.data!;
    assert.deepEqual([...out.subarray(0, hello.length)], [...hello], "frames before the offending one pass unchanged");
    assert.equal(closeCode(out.subarray(hello.length)), 1001, "the pod gets 1001 in place of the oversize frame");
    ok((out[hello.length + 1] & 0x80) !== 0, "toward the pod the close frame is masked");
    const r2 = s.encodeData(frame(8, new Uint8Array([0x03, 0xe9]), false), false) as Extract<StepResult, { kind: "continue" }>;
    assert.equal(closeCode(r2.data!), 1009, "the client gets 1009 instead of the pod's close reply");
    const r3 = s.decodeData(frame(8, new Uint8Array([0x03, 0xf1]), true), false);
    assert.equal(r3.kind, "reset", "the client's close reply ends the stream");
    assert.equal(e.stat("frame_closes_total.code.1009"), 1);
    assert.equal(e.stat("close_frames_total.code.1001"), 1, "the pod's close reply was seen (code 1001)");
    assert.equal(e.stat("messages_total.direction.downstream"), 1);
    assert.equal(e.stat("active_connections"), 0);
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("frames: a close handshake that never finishes is reset on the tick after its deadline (frame_resets_total)", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, tick_ms: 1000, frames: { enabled: true, max_frame_bytes: 10 } } });
  try {
    const s = e.h.newStream(0, conn());
    let asyncReset = 0;
    s.events = { onAsync: (r) => { if (r.kind === "reset") asyncReset++; } };
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const r = s.decodeData(frame(2, new Uint8Array(50), true), false);
    assert.equal(r.kind, "continue");
    assert.equal(e.stat("frame_closes_total.code.1009"), 1);
    // the pod never answers: no chunk comes back
    e.proc.advance(1000);
    assert.equal(e.stat("frame_resets_total"), 0, "not before the deadline (2 ticks)");
    e.proc.advance(2000);
    assert.equal(e.stat("frame_resets_total"), 1, "reset once the deadline passed");
    ok(s.ended, "the stream ended");
    ok(asyncReset >= 1, "the reset reached the proxy as an async event");
    assert.equal(e.stat("active_connections"), 0);
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("frames: counters per direction, pings and pongs, idle histogram at the end", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const msg = frame(1, new TextEncoder().encode("0123456789"), true);
    const both = new Uint8Array([...msg, ...frame(9, new Uint8Array(0), true)]);
    // split the client's bytes at an awkward place: chunk boundaries are not frame boundaries
    assert.equal(s.decodeData(both.subarray(0, 7), false).kind, "continue");
    assert.equal(s.decodeData(both.subarray(7), false).kind, "continue");
    assert.equal(s.encodeData(new Uint8Array([...frame(1, new Uint8Array(3), false), ...frame(10, new Uint8Array(0), false)]), false).kind, "continue");
    assert.equal(e.stat("frames_total.direction.downstream"), 2);
    assert.equal(e.stat("messages_total.direction.downstream"), 1);
    assert.equal(e.stat("bytes_total.direction.downstream"), 10);
    assert.equal(e.stat("frames_total.direction.upstream"), 2);
    assert.equal(e.stat("bytes_total.direction.upstream"), 3);
    assert.equal(e.stat("control_frames_total.kind.ping"), 1);
    assert.equal(e.stat("control_frames_total.kind.pong"), 1);
    s.complete();
    assert.equal(e.proc.stats.samples("wasmcustom.ws_governor.max_idle_ms.direction.downstream")?.length, 1);
    assert.equal(e.stat("active_connections"), 0);
  } finally {
    e.close();
  }
});
