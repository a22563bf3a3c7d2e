// Envoy's VM lifecycle around the leases: wall-clock steps (envoy-host.md §13.4) and the configuration canary
// (§13.5). Wall-clock steps: proxy_get_current_time_nanoseconds is Envoy's system time, which an NTP step
// or a VM migration moves by any amount in either direction, while tick timers stay monotonic. Leases must not expire
// a live VM, caps must not over-admit, and the rate limiter must neither stall nor hand out a fresh burst.
import assert from "node:assert/strict";
import { test } from "node:test";
import { G, finishReply, leases, makeEnv, open, podTotal, reply, ok } from "./support.ts";
import type { Env, Opened } from "./support.ts";

const NO_RATE = { rate_limit: null };

const HOUR = 3_600_000;

function gauge(e: Env): number {
  return e.stat("active_connections");
}

function rejectedWith(o: Opened): number {
  assert.equal(o.admitted, false);
  const st = reply(o.r).status;
  finishReply(o.s);
  return st;
}

for (const step of [HOUR, -HOUR]) {
  test(`§13.4 a wall-clock step of ${step > 0 ? "+" : "−"}1 h: no live VM's shares reclaimed, no over-admission`, () => {
    const e = makeEnv({ concurrency: 3, config: { rate_limit: null, max_connections_per_pod: 6, max_connections_per_client: 2,
      tick_ms: 1000, lease_ticks: 2 } });
    try {
      e.proc.advance(1500); // every worker beat once
      const held: Opened[] = [];
      for (let i = 0; i < 5; i++) held.push(open(e.h, i % 3, `10.0.0.${i + 1}:1`));
      for (const o of held) ok(o.admitted);
      assert.equal(podTotal(e.proc), 5);
      e.proc.stepWallClock(step);
      e.proc.advance(10_000); // ten tick periods on the stepped clock
      assert.equal(e.stat("reclaimed_total"), 0, "no live VM was taken for dead");
      assert.equal(podTotal(e.proc), 5);
      assert.equal(gauge(e), 5);
      assert.equal(leases(e.proc).size, 4, "every VM (three workers and the main thread) still holds its lease");
      // the caps still hold exactly
      const sameClient = open(e.h, 0, "10.0.0.1:2");
      ok(sameClient.admitted, "client 10.0.0.1 holds 2 of 2, the pod 6 of 6");
      assert.equal(rejectedWith(open(e.h, 1, "10.0.0.1:3")), 429, "the client's 3rd connection");
      assert.equal(rejectedWith(open(e.h, 2, "10.0.0.9:1")), 503, "the pod's 7th connection");
      const sixth = sameClient;
      for (const o of [...held, sixth]) o.s.complete();
      assert.equal(podTotal(e.proc), 0);
      assert.equal(gauge(e), 0);
      assert.equal(e.stat("orphan_releases_total"), 0);
    } finally {
      e.close();
    }
  });
}

test("§13.4 a trapped VM is still reclaimed across a wall-clock step, within (lease_ticks + 1) ticks", () => {
  const e = makeEnv({ concurrency: 2, config: { rate_limit: null, max_connections_per_pod: 10, tick_ms: 1000, lease_ticks: 2 } });
  try {
    const keep = open(e.h, 0);
    const doomed = open(e.h, 1);
    ok(keep.admitted && doomed.admitted);
    e.h.trapOnNextHostCall(1);
    e.h.newStream(1, { id: 999, sourceAddress: "10.0.0.1:1", destinationAddress: "10.0.0.10:8080", protocol: "HTTP/1.1" })
      .decodeHeaders([[":method", "GET"], [":path", "/"], [":authority", "a"]], true);
    ok(e.h.vmFailed(1));
    doomed.s.reset("vm failed");
    e.proc.stepWallClock(-HOUR);
    e.proc.advance(3000);
    assert.equal(e.stat("reclaimed_total"), 1);
    assert.equal(podTotal(e.proc), 1);
    keep.s.complete();
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("§13.4 rate limit across wall-clock steps: back 1 h → one admission, then one per interval; forward → at most one burst", () => {
  // 60 per 60 s: one per second, burst 3
  const e = makeEnv({ concurrency: 2, config: { rate_limit: { requests: 60, window_seconds: 60, burst: 3 }, max_connections_per_pod: 1000 } });
  const opened: Opened[] = [];
  const attempt = (w: number): boolean => {
    const o = open(e.h, w);
    if (o.admitted) opened.push(o);
    else {
      assert.equal(reply(o.r).status, 429);
      finishReply(o.s);
    }
    return o.admitted;
  };
  try {
    let n = 0;
    for (let i = 0; i < 10; i++) if (attempt(i % 2)) n++;
    assert.equal(n, 3, "the burst");
    e.proc.stepWallClock(-HOUR);
    n = 0;
    for (let i = 0; i < 10; i++) if (attempt(i % 2)) n++;
    assert.equal(n, 1, "not stalled for an hour, and no fresh burst");
    e.proc.advance(1000);
    n = 0;
    for (let i = 0; i < 10; i++) if (attempt(i % 2)) n++;
    assert.equal(n, 1, "then one per interval");
    e.proc.stepWallClock(2 * HOUR);
    n = 0;
    for (let i = 0; i < 10; i++) if (attempt(i % 2)) n++;
    assert.equal(n, 3, "a step forward refills one burst, no more");
    for (const o of opened) o.s.complete();
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("§13.4 connection durations: a connection open 30 days records 30 days; one whose 101 is after the clock now records 0", () => {
  // The wall clock is moved by steps here (no 30 days of ticks). A 30-day connection once recorded 0 (the 101's time
  // was kept modulo 2^32 ms and read as signed: 24.8 days at most).
  const e = makeEnv({ concurrency: 1, config: NO_RATE });
  try {
    const DAY = 24 * HOUR;
    const long = open(e.h, 0);
    ok(long.admitted);
    e.proc.stepWallClock(30 * DAY + 1234);
    long.s.complete();
    const back = open(e.h, 0);
    ok(back.admitted);
    e.proc.stepWallClock(-HOUR); // NTP steps the clock back while the connection is open
    back.s.complete();
    const plain = open(e.h, 0);
    ok(plain.admitted);
    e.proc.advance(2500);
    plain.s.complete();
    assert.deepEqual(e.proc.stats.samples(G + "connection_duration_ms"), [30 * DAY + 1234, 0, 2500]);
  } finally {
    e.close();
  }
});

test("§13.5 the configuration canary leaves no lease: no VM ever pays a reclaim sweep for it", () => {
  // The canary is configured and destroyed without on_done/on_delete: a lease taken in on_configure would sit in
  // the table until a live VM swept every pod and client key for a VM that never held a share.
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_client: 5, client_buckets: 64, tick_ms: 1000, lease_ticks: 2 } });
  try {
    e.proc.advance(1500); // every VM ticked once: registered
    assert.equal(leases(e.proc).size, 3, "main and two workers; no canary");
    const calls = () => sharedCallsOf(e, 0) + sharedCallsOf(e, 1);
    const before = calls();
    e.proc.advance(6000); // six ticks: lease_ticks·3, long enough for any stale lease to be swept
    // per VM and tick: lease table get + set, drain flag get; a sweep would read 64 client buckets and the pod slots
    assert.equal(calls() - before, 2 * 6 * 3, "only heartbeats and the drain flag, no sweep");
    assert.equal(e.stat("reclaimed_total"), 0);
    ok(!e.logs.some((l) => /reclaimed/.test(l.message)), "no reclaim line");
    const o = open(e.h, 0);
    ok(o.admitted);
    o.s.complete();
  } finally {
    e.close();
  }
});

function sharedCallsOf(e: Env, worker: number): number {
  const c = e.h.hostCalls(worker);
  return c.get("proxy_get_shared_data") + c.get("proxy_set_shared_data");
}
