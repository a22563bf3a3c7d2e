// envoy-host.md §13.1: what a callback returns after it asked for a reset (proxy_close_stream) or a local reply
// (proxy_send_local_response). Continue after either is a module defect in every stream callback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, HostDefectError, encodePairsBytes, type FilterStream, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET } from "./probes/helpers.ts";

type Cb = "proxy_on_request_headers" | "proxy_on_request_body" | "proxy_on_request_trailers"
  | "proxy_on_response_headers" | "proxy_on_response_body" | "proxy_on_response_trailers";
const CALLBACKS: Cb[] = ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
  "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers"];

/** a probe whose callback `cb` performs `action` and returns `ret`; every other callback returns Continue */
function probe(cb: Cb, action: "close" | "reply", ret: number): Uint8Array {
  const p = new Probe();
  const pairs = encodePairsBytes([]);
  const act = action === "close" ? "(drop (call $proxy_close_stream (i32.const 0)))"
    : `(drop (call $proxy_send_local_response (i32.const 403) ${p.s("denied")} ${p.s("no")} ${p.s(pairs)} (i32.const -1)))`;
  for (const c of CALLBACKS) p.on(c, c === cb ? `${act} (i32.const ${ret})` : "(i32.const 0)");
  return p.build();
}

/** drive one stream up to (and including) the callback under test */
function drive(s: FilterStream, cb: Cb): void {
  const steps: Array<[Cb, () => unknown]> = [
    ["proxy_on_request_headers", () => s.decodeHeaders(GET, false)],
    ["proxy_on_request_body", () => s.decodeData(Buffer.from("x"), false)],
    ["proxy_on_request_trailers", () => s.decodeTrailers!([["grpc-timeout", "1S"]])],
    ["proxy_on_response_headers", () => s.encodeHeaders([[":status", "200"]], false)],
    ["proxy_on_response_body", () => s.encodeData(Buffer.from("y"), false)],
    ["proxy_on_response_trailers", () => s.encodeTrailers!([["grpc-status", "0"]])],
  ];
  for (const [name, step] of steps) {
    step();
    if (name === cb || s.ended) return;
  }
}

function run(cb: Cb, action: "close" | "reply", ret: number) {
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: probe(cb, action, ret) }) as PluginHandleImpl;
  const s = h.newStream(0, conn());
  drive(s, cb);
  return { proc, s };
}

test("§13.1 Continue after proxy_close_stream is a defect in every stream callback; close() fails the harness", () => {
  for (const cb of CALLBACKS) {
    const { proc, s } = run(cb, "close", 0);
    assert.ok(s.ended, `${cb}: the stream was reset`);
    assert.equal(proc.defects.length, 1, `${cb}: one defect`);
    const d = proc.defects[0];
    assert.equal(d.kind, "continue_after_close_stream");
    assert.equal(d.callback, cb);
    assert.equal(d.returned, 0);
    assert.match(d.message, cb.endsWith("_body") ? /return StopIterationNoBuffer \(3\)/ : /return StopIteration \(1\)/);
    assert.ok(proc.logs.some((l) => l.level === "critical" && l.line.startsWith("wasm defect: " + cb)), `${cb}: logged`);
    assert.throws(() => proc.close(), (e: unknown) => e instanceof HostDefectError && e.defects[0].callback === cb);
  }
});

test("§13.1 Continue after proxy_send_local_response is a defect in every stream callback", () => {
  for (const cb of CALLBACKS) {
    const { proc } = run(cb, "reply", 0);
    assert.deepEqual(proc.defects.map((d) => [d.kind, d.callback]), [["continue_after_local_reply", cb]], cb);
    assert.throws(() => proc.assertNoDefects(), HostDefectError);
  }
});

test("§13.1 ContinueAndEndStream (2) from a headers callback after close_stream is a Continue too", () => {
  const { proc } = run("proxy_on_request_headers", "close", 2);
  assert.equal(proc.defects.length, 1);
  assert.match(proc.defects[0].message, /ContinueAndEndStream \(2\)/);
});

test("§13.1 the required Stop statuses are not defects: StopIteration (1) from headers/trailers, StopIterationNoBuffer (3) from bodies", () => {
  for (const cb of CALLBACKS) {
    for (const action of ["close", "reply"] as const) {
      const { proc, s } = run(cb, action, cb.endsWith("_body") ? 3 : 1);
      assert.equal(proc.defects.length, 0, `${cb} ${action}`);
      if (action === "close") assert.ok(s.ended, `${cb}: reset`);
      proc.close(); // does not throw
    }
  }
  // any other Stop status is acceptable too (StopAllIterationAndWatermark from headers, StopIterationAndBuffer from a body)
  assert.equal(run("proxy_on_request_headers", "close", 4).proc.defects.length, 0);
  assert.equal(run("proxy_on_request_body", "close", 1).proc.defects.length, 0);
});

test("§13.1 Continue without a prior close/reply in that callback is fine; defects: \"record\" keeps close() quiet", () => {
  const p = new Probe();
  // on_request_headers closes and stops correctly; the later callbacks never run (stream reset) — no defect
  p.on("proxy_on_request_headers", "(drop (call $proxy_close_stream (i32.const 0))) (i32.const 1)");
  p.on("proxy_on_request_body", "(i32.const 0)");
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h = proc.addPlugin({ wasm: p.build() });
  const s = h.newStream(0, conn());
  s.decodeHeaders(GET, false);
  assert.equal(s.decodeData(Buffer.from("x"), false).kind, "stop");
  assert.equal(proc.defects.length, 0);
  proc.close();

  const { proc: rec } = ((): { proc: EnvoyProcess } => {
    const pr = new EnvoyProcess({ concurrency: 1, defects: "record" });
    const hh = pr.addPlugin({ wasm: probe("proxy_on_request_body", "close", 0) });
    drive(hh.newStream(0, conn()), "proxy_on_request_body");
    return { proc: pr };
  })();
  assert.equal(rec.defects.length, 1);
  rec.close(); // recorded, not thrown
  assert.equal(rec.takeDefects().length, 1);
  assert.equal(rec.defects.length, 0);
});
