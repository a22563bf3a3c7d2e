import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess } from "./host/index.ts";
import { Probe } from "./probes/build.ts";

function tickProbe(period: number, stopAfter = 0) {
  const p = new Probe();
  p.on("proxy_on_configure", `(drop (call $proxy_set_tick_period_milliseconds (i32.const ${period}))) (i32.const 1)`);
  p.on("proxy_on_tick", `${p.log("tick")} (i32.store (i32.const 300) (i32.add (i32.load (i32.const 300)) (i32.const 1)))
    (if (i32.eq (i32.load (i32.const 300)) (i32.const ${stopAfter})) (then (drop (call $proxy_set_tick_period_milliseconds (i32.const 0)))))`);
  return p.build();
}
const ticks = (proc: EnvoyProcess) => proc.logs.filter((l) => l.message === "tick").map((l) => l.vm);

test("§3.4 N + 1 independent tick streams (main + workers, not the canary); first tick after p ms; re-armed", () => {
  const proc = new EnvoyProcess({ concurrency: 2 });
  proc.addPlugin({ wasm: tickProbe(100) });
  proc.advance(99);
  assert.deepEqual(ticks(proc), []);
  proc.advance(1);
  assert.deepEqual(ticks(proc).sort(), ["main", "worker-0", "worker-1"]);
  proc.advance(250);
  assert.equal(ticks(proc).length, 9);
});

test("§3.4 period 0 stops the timer", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.addPlugin({ wasm: tickProbe(10, 2) });
  proc.advance(100);
  assert.equal(ticks(proc).length, 4, "2 ticks per VM (main, worker-0), then stopped");
});

test("§3.4 ticks are delivered in time order across VMs", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.addPlugin({ wasm: tickProbe(30), vmId: "a" });
  proc.addPlugin({ wasm: tickProbe(20), vmId: "b", name: "b" });
  const times: number[] = [];
  const t0 = proc.nowMs();
  proc.opts.onLog = (e) => { if (e.message === "tick") times.push(proc.nowMs() - t0); };
  proc.advance(60);
  assert.deepEqual(times, [20, 20, 30, 30, 40, 40, 60, 60, 60, 60]);
});

test("§3.4 real timers (virtualTime: false) fire and close() stops them", async () => {
  const proc = new EnvoyProcess({ concurrency: 1, virtualTime: false });
  proc.addPlugin({ wasm: tickProbe(5) });
  await new Promise((r) => setTimeout(r, 40));
  proc.close();
  const n = ticks(proc).length;
  assert.ok(n >= 2, `ticks: ${n}`);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(ticks(proc).length, n);
});

test("harness affordance tickAll(): one tick per armed timer now, clock unchanged, re-armed from now; stopped timers stay stopped", () => {
  const proc = new EnvoyProcess({ concurrency: 1 });
  proc.addPlugin({ wasm: tickProbe(100) });
  proc.addPlugin({ wasm: tickProbe(10, 1), vmId: "b", name: "b" });
  proc.advance(10); // b's timers fire once and stop
  assert.equal(ticks(proc).length, 2);
  const t0 = proc.nowMs();
  proc.advance(40);
  proc.tickAll();
  assert.equal(proc.nowMs(), t0 + 40, "no time moved");
  assert.equal(ticks(proc).length, 4, "the two running timers (main, worker-0) once each; b's stopped timers not");
  proc.advance(99);
  assert.equal(ticks(proc).length, 4, "re-armed from the affordance's tick, not from the original schedule");
  proc.advance(1);
  assert.equal(ticks(proc).length, 6);
});
