// envoy-host.md §13.4: proxy_get_current_time_nanoseconds is wall-clock time (it can step forward or backward);
// tick periods and monotonic time are not affected. Stepped from tests in-process and through the proxy's admin hook.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, type PluginHandleImpl } from "./host/index.ts";
import { Probe, RES } from "./probes/build.ts";
import { bootstrap, propertyProbe, rawExchange, startInProxy, statusLine } from "./probes/in_proxy.ts";
import { httpRequest } from "../support/ws-client.ts";

const T0 = 1_700_000_000_000;
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

function tickProbe(): Uint8Array {
  const p = new Probe();
  p.on("proxy_on_configure", "(drop (call $proxy_set_tick_period_milliseconds (i32.const 10))) (i32.const 1)");
  p.on("proxy_on_tick", `
    ${p.store(0, `(i32.add (i32.load (i32.const ${RES})) (i32.const 1))`)}
    (drop (call $proxy_get_current_time_nanoseconds (i32.const 600)))
    (drop (call $wasi_clock_time_get (i32.const 0) (i64.const 0) (i32.const 608)))
    (drop (call $wasi_clock_time_get (i32.const 1) (i64.const 0) (i32.const 616)))`);
  return p.build();
}

test("§13.4 wall clock steps backward and forward; ticks and the monotonic clock do not", () => {
  const proc = new EnvoyProcess({ concurrency: 1, clock: { nowMs: () => T0 } });
  const h = proc.addPlugin({ wasm: tickProbe() }) as PluginHandleImpl;
  const read = () => {
    const m = h.vm(0).mem;
    m.refresh();
    return { ticks: m.dv.getUint32(RES, true), wall: m.dv.getBigUint64(600, true), realtime: m.dv.getBigUint64(608, true),
      mono: m.dv.getBigUint64(616, true) };
  };
  proc.advance(10);
  const a = read();
  assert.equal(a.ticks, 1);
  assert.equal(a.wall, ns(T0 + 10));
  assert.equal(a.realtime, a.wall, "WASI realtime is the same wall clock");

  proc.stepWallClock(-60_000); // NTP steps the clock back a minute
  proc.advance(10);
  const b = read();
  assert.equal(b.ticks, 2, "the tick is due 10 ms later on the steady clock, not a minute later");
  assert.equal(b.wall, ns(T0 + 20 - 60_000), "wall time went backwards");
  assert.ok(b.wall < a.wall);
  assert.equal(b.mono - a.mono, ns(10), "monotonic time moved by exactly the tick period");

  proc.stepWallClock(3_600_000); // and an hour forward: no burst of ticks
  proc.advance(10);
  const c = read();
  assert.equal(c.ticks, 3);
  assert.equal(c.wall, ns(T0 + 30 - 60_000 + 3_600_000));
  assert.equal(c.mono - b.mono, ns(10));
  proc.close();
});

test("§13.4 a running proxy's wall clock: RunningProxy.stepWallClock and admin POST /emulator/wall_clock", async () => {
  const wasm = propertyProbe([], { extra: () => "(drop (call $proxy_get_current_time_nanoseconds (i32.const 600)))" }).build();
  const e = await startInProxy(wasm, bootstrap());
  try {
    const now = async () => {
      const r = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: example.com"]);
      assert.equal(statusLine(r), "HTTP/1.1 200 OK");
      const m = e.h.vm(0).mem;
      m.refresh();
      return Number(m.dv.getBigUint64(600, true) / 1_000_000n);
    };
    const t1 = await now();
    assert.ok(Math.abs(t1 - Date.now()) < 5000, "real time by default");
    e.proxy.stepWallClock(-3_600_000);
    const t2 = await now();
    assert.ok(t2 < t1 - 3_500_000, "stepped back an hour");
    const r = await httpRequest(e.proxy.adminUrl("/emulator/wall_clock?step_ms=7200000"), { method: "POST" });
    assert.equal(r.status, 200);
    const t3 = await now();
    assert.ok(t3 > t1 + 3_500_000 && t3 < t1 + 3_700_000, "then two hours forward through the admin hook");
    assert.equal((await httpRequest(e.proxy.adminUrl("/emulator/wall_clock?step_ms=x"), { method: "POST" })).status, 400);
    assert.equal((await httpRequest(e.proxy.adminUrl("/emulator/wall_clock?step_ms=1"))).status, 405);
  } finally {
    await e.close();
  }
});
