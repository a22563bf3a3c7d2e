// Stats handed to Envoy on the tick (assembly/host/metrics.ts): an upgrade lifecycle makes no counter or gauge call,
// Envoy's values lag by at most one tick_ms, nothing is lost when a root goes, and a VM that dies with changes not yet
// handed over leaves the gauge exact (the sweeper takes back what it had published with its heartbeat).
import assert from "node:assert/strict";
import { test } from "node:test";
import { bodyText, conn, leaseGauges, makeEnv, ok, open, plainHeaders, podTotal, reply, upgradeHeaders } from "./support.ts";

const NO_RATE = { rate_limit: null };

test("metrics: a lifecycle makes no counter or gauge call; Envoy sees the changes at the next tick, exactly", () => {
  const e = makeEnv({ concurrency: 1, config: { ...NO_RATE, max_connections_per_pod: 10, tick_ms: 1000 } });
  try {
    e.proc.advance(1000); // registered, counters of configure handed over
    const calls = e.h.hostCalls(0);
    calls.reset();
    const o = open(e.h, 0);
    ok(o.admitted);
    e.proc.advance(300);
    o.s.complete();
    assert.equal(calls.get("proxy_increment_metric"), 0, "no counter or gauge call in the lifecycle");
    assert.equal(calls.get("proxy_record_metric"), 1, "the duration sample only");
    const all = Object.values(calls.all()).reduce((a, b) => a + b, 0);
    assert.equal(all, 9, `host calls per lifecycle: ${JSON.stringify(calls.all())}`);
    assert.equal(e.rawStat("upgrades_total"), 0, "not yet in Envoy");
    assert.equal(e.rawStat("released_total"), 0);
    e.proc.advance(700); // the tick
    assert.equal(e.rawStat("upgrades_total"), 1);
    assert.equal(e.rawStat("accepted_total"), 1);
    assert.equal(e.rawStat("released_total"), 1);
    assert.equal(e.rawStat("active_connections"), 0);
    // a connection still open at the tick is in the gauge after it
    const p = open(e.h, 0);
    ok(p.admitted);
    assert.equal(e.rawStat("active_connections"), 0, "before the tick");
    e.proc.advance(1000);
    assert.equal(e.rawStat("active_connections"), 1, "after the tick");
    // published with the heartbeat (the main thread's VM has an entry too, with 0)
    assert.deepEqual([...leaseGauges(e.proc).values()].sort(), [0, 1]);
    p.s.complete();
    e.proc.advance(1000);
    assert.equal(e.rawStat("active_connections"), 0);
    assert.equal(e.rawStat("upgrades_total"), 2);
  } finally {
    e.close();
  }
});

test("metrics: a plugin removed between ticks hands its counters over on the way out", () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 10, tick_ms: 1000 } });
  try {
    e.proc.advance(1000);
    for (const w of [0, 1]) {
      const o = open(e.h, w);
      ok(o.admitted);
      o.s.complete();
    }
    assert.equal(e.rawStat("upgrades_total"), 0);
    e.h.remove();
    assert.equal(e.rawStat("upgrades_total"), 2);
    assert.equal(e.rawStat("released_total"), 2);
  } finally {
    e.close();
  }
});

test("metrics: a VM that traps with gauge changes not yet handed over leaves the gauge exact after the sweep", () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 20, tick_ms: 1000, lease_ticks: 3 } });
  try {
    e.proc.advance(1000);
    const keep = [open(e.h, 0), open(e.h, 0)];
    const early = [open(e.h, 1), open(e.h, 1), open(e.h, 1)];
    e.proc.advance(1000); // worker 1 publishes 3 and hands them to Envoy
    assert.equal(e.rawStat("active_connections"), 5);
    const late = [open(e.h, 1), open(e.h, 1)]; // +2 on worker 1, not yet handed over
    const gone = early[0];
    gone.s.complete(); // −1 on worker 1, not yet handed over
    for (const o of [...keep, ...early, ...late]) ok(o.admitted);
    assert.equal(podTotal(e.proc), 6);
    e.h.trapOnNextHostCall(1);
    const t = e.h.newStream(1, conn());
    t.decodeHeaders(upgradeHeaders(), false);
    ok(e.h.vmFailed(1), "worker 1 trapped");
    for (const o of [...early.slice(1), ...late]) o.s.reset("vm failed");
    e.proc.advance(5000); // worker 0 sees worker 1 silent for lease_ticks beats and sweeps it
    assert.equal(podTotal(e.proc), 2, "worker 1's 4 shares reclaimed");
    assert.equal(e.rawStat("reclaimed_total"), 4);
    assert.equal(e.rawStat("active_connections"), 2, "exactly worker 0's connections: the 3 worker 1 had published are taken back");
    for (const k of keep) k.s.complete();
    e.proc.advance(1000);
    assert.equal(e.rawStat("active_connections"), 0);
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("metrics: the serving VM's own counters are exact on /websocket/metrics without waiting for a tick", () => {
  const e = makeEnv({ concurrency: 1, config: { ...NO_RATE, max_connections_per_pod: 10, tick_ms: 1000 } });
  try {
    e.proc.advance(1000);
    const o = open(e.h, 0);
    ok(o.admitted);
    o.s.complete();
    const s = e.h.newStream(0, conn("127.0.0.1:40000"));
    const body = bodyText(reply(s.decodeHeaders(plainHeaders("/websocket/metrics"), true)));
    assert.equal(e.rawStat("upgrades_total"), 1, "handed over for the page");
    assert.match(body, /^ws_governor_upgrades_total 1$/m);
    assert.match(body, /^ws_governor_released_total 1$/m);
  } finally {
    e.close();
  }
});
