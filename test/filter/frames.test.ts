// Frame inspection inside the release module (the e2e suite test/e2e/frames.test.ts covers real ws peers): the close
// handshake, its deadline, and the stats, driven chunk by chunk. Every body callback that closed the stream must
// return StopIterationNoBuffer: the host emulator records anything else as a §13.1 defect and e.close() then fails.
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

/** Asserts a continue step and returns its data. */
function fwd(r: StepResult, what: string): Uint8Array {
  assert.equal(r.kind, "continue", what);
  return (r as Extract<StepResult, { kind: "continue" }>).data ?? new Uint8Array(0);
}
const close = (code: number, masked: boolean) => frame(8, new Uint8Array([code >> 8, code & 255]), masked);
const PONG = frame(10, new Uint8Array(0), false);

test("frames: oversize client message → ping to the pod; 1009 to the client in place of the pong; its close reply becomes 1001 to the pod; the pod's reply ends the stream (Stop)", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true, max_message_bytes: 100 } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const hello = frame(1, new TextEncoder().encode("hello"), true);
    const big = frame(2, new Uint8Array(200), true);
    const out = fwd(s.decodeData(new Uint8Array([...hello, ...big.subarray(0, 150)]), false), "violation chunk");
    assert.deepEqual([...out.subarray(0, hello.length)], [...hello], "frames before the offending one pass unchanged");
    assert.deepEqual([out[hello.length], out[hello.length + 1]], [0x89, 0x80], "then a masked empty ping toward the pod");
    assert.equal(out.length, hello.length + 6, "nothing else");
    // the client goes on writing (the rest of the oversize frame, more messages): swallowed, still parsed
    assert.equal(fwd(s.decodeData(new Uint8Array([...big.subarray(150), ...hello]), false), "flood").length, 0, "swallowed");
    assert.equal(closeCode(fwd(s.encodeData(PONG, false), "pong")), 1009, "the client gets 1009 in place of the pod's pong");
    assert.equal(fwd(s.decodeData(hello, false), "more flood").length, 0, "the client's data is still swallowed");
    const toPod = fwd(s.decodeData(close(1009, true), false), "client's close reply");
    assert.equal(closeCode(toPod), 1001, "the client's close reply becomes the pod's 1001");
    ok((toPod[1] & 0x80) !== 0, "toward the pod the close frame is masked");
    assert.equal(s.encodeData(close(1001, false), false).kind, "reset", "the pod's close reply ends the stream");
    assert.equal(e.stat("frame_closes_total.code.1009"), 1);
    assert.equal(e.stat("frame_resets_total"), 0, "a finished handshake, not a reset");
    assert.equal(e.stat("close_frames_total.code.1001"), 1, "the pod's close reply was seen (code 1001)");
    assert.equal(e.stat("close_frames_total.code.1009"), 1, "the client's close reply was seen (code 1009)");
    assert.equal(e.stat("messages_total.direction.downstream"), 1, "swallowed messages are not counted");
    assert.equal(e.stat("active_connections"), 0);
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("frames: a masked frame from the pod → 1001 to the client at once; its close reply becomes 1002 to the pod; the next pod chunk ends the stream", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const ok1 = frame(1, new TextEncoder().encode("fine"), false);
    const out = fwd(s.encodeData(new Uint8Array([...ok1, ...frame(1, new Uint8Array(3), true)]), false), "violation");
    assert.deepEqual([...out.subarray(0, ok1.length)], [...ok1]);
    assert.equal(closeCode(out.subarray(ok1.length)), 1001, "the client (peer) gets 1001 in place of the masked frame");
    assert.equal(fwd(s.encodeData(ok1, false), "more from the pod").length, 0, "swallowed");
    const toPod = fwd(s.decodeData(close(1001, true), false), "client's reply");
    assert.equal(closeCode(toPod), 1002, "the pod (sender) gets 1002 in place of the client's close reply");
    assert.equal(s.encodeData(close(1002, false), false).kind, "reset", "the pod's reply ends the stream");
    assert.equal(e.stat("frame_closes_total.code.1002"), 1);
    assert.equal(e.stat("frame_resets_total"), 0);
  } finally {
    e.close();
  }
});

test("frames: message-rate flood → cut at the chunk's first frame boundary; the flood is swallowed until the client's close reply (split across chunks)", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true, messages_per_second: 1, message_burst: 2 } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    const m = frame(1, new TextEncoder().encode("m"), true);
    const three = new Uint8Array([...m, ...m, ...m]);
    const out = fwd(s.decodeData(three, false), "3 messages, burst 2");
    assert.deepEqual([out.length, out[0], out[1]], [6, 0x89, 0x80], "the chunk began at a frame boundary: only a ping goes on");
    assert.equal(e.stat("frame_closes_total.code.1008"), 1);
    for (let i = 0; i < 5; i++) assert.equal(fwd(s.decodeData(three, false), "flood").length, 0, "flood swallowed");
    // the pod answers with an echo, then its pong: the close goes in at the first frame boundary (the chunk start)
    const echo = frame(1, new TextEncoder().encode("m"), false);
    assert.equal(closeCode(fwd(s.encodeData(new Uint8Array([...echo, ...PONG]), false), "pod chunk")), 1008);
    assert.equal(fwd(s.encodeData(echo, false), "late echo").length, 0, "nothing more toward the client");
    const reply = close(1008, true);
    assert.equal(fwd(s.decodeData(new Uint8Array([...m, ...reply.subarray(0, 7)]), false), "reply: header, mask key, one code byte").length, 0);
    assert.equal(closeCode(fwd(s.decodeData(reply.subarray(7), false), "reply, last byte")), 1001, "once the close frame is complete: 1001 to the pod");
    assert.equal(s.encodeData(close(1001, false), false).kind, "reset");
    assert.equal(e.stat("frame_resets_total"), 0);
    assert.equal(e.stat("messages_total.direction.downstream"), 3, "swallowed messages are not counted");
  } finally {
    e.close();
  }
});

test("frames: the client closes on its own before its close arrives → its close is replaced by the pod's; the pod's reply carries the client's", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, frames: { enabled: true, max_frame_bytes: 10 } } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    fwd(s.decodeData(frame(2, new Uint8Array(50), true), false), "oversize");
    assert.equal(closeCode(fwd(s.decodeData(close(1000, true), false), "client's own close")), 1001, "to the pod");
    assert.equal(closeCode(fwd(s.encodeData(close(1001, false), false), "the pod's reply")), 1009, "the client still gets 1009");
    assert.equal(e.stat("frame_closes_total.code.1009"), 1);
  } finally {
    e.close();
  }
});

test("frames: drain with inspection off → reset at the next chunk (StopIterationNoBuffer, frame_resets_total)", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: null, draining: false, tick_ms: 100 } });
  try {
    const s = e.h.newStream(0, conn());
    ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
    ok(isContinue(s.encodeHeaders(H101, false)), "101");
    assert.equal(s.decodeData(frame(1, new Uint8Array(3), true), false).kind, "continue", "before the drain");
    e.proc.sharedData.put("", "wsg:drain", Uint8Array.of(1));
    e.proc.advance(250);
    assert.equal(s.decodeData(frame(1, new Uint8Array(3), true), false).kind, "reset");
    assert.equal(e.stat("frame_resets_total"), 1);
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
    // the pod never answers: no chunk comes back (rawStat: no extra ticks, the deadline counts ticks)
    e.proc.advance(1000);
    assert.equal(e.rawStat("frame_closes_total.code.1009"), 1, "counted, in Envoy after the tick");
    assert.equal(e.rawStat("frame_resets_total"), 0, "not before the deadline (2 ticks)");
    e.proc.advance(2000);
    assert.equal(e.rawStat("frame_resets_total"), 1, "reset once the deadline passed");
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
