// Fleet mode, the global rate limit (docs/fleet.md §3.4, leased tokens) against a real etcd: three emulated Envoy
// processes × 2 workers offer a steady stream of upgrades under one rate limit (20 per 5 s). Every admission is
// timestamped and every sliding window of 5 s is checked: at most 20 admissions fleet-wide. The same load without a
// fleet block (each process alone) admits far more. 429s carry Retry-After; etcd halted → failure_mode; no trap.
//   node --import tsx --test --test-reporter=tap test/fleet/rate.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, type Etcd } from "../support/etcd.ts";
import type { LocalReply } from "../filter/support.ts";
import { useEtcd, closeReplica, traps, delay, fleetConfig, startReplica, upgrade, statReaches, type Replica } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 90_000 };
const REQUESTS = 20;
const WINDOW_S = 5;
const H = 1;               // rate_horizon_seconds
const CALL_TIMEOUT = 500;
const TTL_S = WINDOW_S + 2 * H + Math.ceil(CALL_TIMEOUT / 1000); // the rate lease's TTL: the longest Retry-After
const RATE = { requests: REQUESTS, window_seconds: WINDOW_S };

function rateConfig(prefix: string, o: Record<string, unknown> = {}): string {
  return fleetConfig(prefix, { max_connections_per_pod: 0, rate_limit: RATE, ...o },
    { rate_horizon_seconds: H, call_timeout_ms: CALL_TIMEOUT, lease_ttl_seconds: 4 });
}

interface Run { admits: number[]; refused: LocalReply[]; upgrades: number }

/** Every `periodMs`, on each worker of each replica, one upgrade (not waiting for the previous one), for `ms`.
 *  An admitted one is timestamped when the filter let it through and ended at once. */
async function drive(replicas: Replica[], ms: number, periodMs: number): Promise<Run> {
  const run: Run = { admits: [], refused: [], upgrades: 0 };
  const pending: Array<Promise<void>> = [];
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    for (const r of replicas) {
      for (let w = 0; w < 2; w++) {
        const u = upgrade(r, w);
        run.upgrades++;
        pending.push(u.outcome.then((o) => {
          if (o.admitted) { run.admits.push(Date.now()); u.s.complete(); }
          else if (o.reply) run.refused.push(o.reply);
        }));
      }
    }
    await delay(periodMs);
  }
  await Promise.all(pending);
  run.admits.sort((a, b) => a - b);
  return run;
}

/** The most admissions inside any window [t, t + ms). */
function maxWindow(times: number[], ms: number): number {
  let best = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (times[i] - times[j] >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

function header(rep: LocalReply, name: string): string | undefined {
  return rep.headers.find(([k]) => k === name)?.[1];
}

function stats(rs: Replica[], name: string): number {
  return rs.reduce((n, r) => n + r.stat(name), 0);
}

describe("fleet mode, the global rate limit [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test(`${REQUESTS} per ${WINDOW_S} s over 3 processes × 2 workers: every sliding window holds at most ${REQUESTS} ` +
    "admissions fleet-wide (each process alone: far more); 429s carry Retry-After", T, async () => {
    assert.ok(etcd);
    const fleet = ["a", "b", "c"].map((n) => startReplica(`gw-${n}`, port, rateConfig("/t-rate/")));
    replicas.push(...fleet);
    const run = await drive(fleet, 12_000, 60);
    const worst = maxWindow(run.admits, WINDOW_S * 1000);
    const details = new Map<string, number>();
    for (const r of run.refused) details.set(r.details, (details.get(r.details) ?? 0) + 1);
    const claims = stats(fleet, "fleet_rate_claims_total");
    const tokens = stats(fleet, "fleet_rate_tokens_claimed_total");
    const expired = stats(fleet, "fleet_rate_tokens_expired_total");
    console.log(`# fleet rate: ${run.upgrades} upgrades in 12 s, ${run.admits.length} admitted, most in a ${WINDOW_S} s ` +
      `window ${worst} / ${REQUESTS}; refused ${JSON.stringify(Object.fromEntries(details))}; claims ${claims} ` +
      `(${tokens} tokens, ${expired} expired unspent), etcd calls ${stats(fleet, "fleet_calls_total")}, ` +
      `failures ${stats(fleet, "fleet_call_failures_total")}`);
    assert.ok(worst <= REQUESTS, `${worst} admissions within ${WINDOW_S} s (limit ${REQUESTS})`);
    assert.ok(run.admits.length >= REQUESTS, `only ${run.admits.length} admitted in 12 s`);
    assert.ok(claims > 0 && tokens >= run.admits.length, "every admission spent a claimed token");
    assert.equal(stats(fleet, "fleet_open_admits_total"), 0);
    const rate = run.refused.filter((r) => r.details === "ws_governor_rate_limited");
    assert.ok(rate.length > 0, "the fleet refused with 429");
    for (const r of rate) {
      assert.equal(r.status, 429);
      const secs = Number(header(r, "retry-after"));
      assert.ok(Number.isInteger(secs) && secs >= 1 && secs <= TTL_S, `Retry-After ${header(r, "retry-after")}`);
      assert.equal(header(r, "ratelimit-limit"), String(REQUESTS));
    }
    assert.equal(rate.length, run.refused.length, `only 429s: ${JSON.stringify(Object.fromEntries(details))}`);
    assert.deepEqual(fleet.flatMap(traps), [], "no trap");
    for (const r of fleet) closeReplica(r);

    // the same load on three processes without a fleet block: each enforces the limit alone
    const local = ["a", "b", "c"].map((n) => startReplica(`gw-${n}`, port,
      JSON.stringify({ pod_name: "pod-x", max_connections_per_pod: 0, rate_limit: RATE, tick_ms: 100 })));
    replicas.push(...local);
    const lrun = await drive(local, WINDOW_S * 1000, 60);
    const lworst = maxWindow(lrun.admits, WINDOW_S * 1000);
    console.log(`# local rate: ${lrun.upgrades} upgrades in ${WINDOW_S} s, most in a window ${lworst}`);
    assert.ok(lworst > 2 * REQUESTS, `without fleet mode only ${lworst} in a window`);
    for (const r of local) closeReplica(r);
  });

  test("etcd halted: once the claimed tokens expired, failure_mode closed answers 503 contention and open admits " +
    "(counted); no trap; claims work again after etcd returns", T, async () => {
    assert.ok(etcd);
    const closed = startReplica("gw-closed", port, rateConfig("/t-rate-down/", { failure_mode: "closed" }));
    const open = startReplica("gw-open", port, rateConfig("/t-rate-down/", { failure_mode: "open" }));
    replicas.push(closed, open);
    for (const r of [closed, open]) {
      const o = await upgrade(r, 0).outcome;
      assert.ok(o.admitted, `${r.name}: ${o.reply?.details}`);
    }
    await etcd.halt();
    try {
      await delay(H * 1000 + 300); // the tokens claimed before the halt are past their horizon
      const c = await Promise.all([0, 1, 0].map((w) => upgrade(closed, w).outcome));
      assert.deepEqual(c.map((o) => o.reply?.status ?? "admitted"), [503, 503, 503]);
      assert.deepEqual(c.map((o) => o.reply?.details), Array(3).fill("ws_governor_contention"));
      assert.ok(await statReaches(closed, "fleet_unavailable_total", 3) >= 3); // (counters reach Envoy on the tick)
      const p = await Promise.all([0, 1, 0].map((w) => upgrade(open, w).outcome));
      assert.deepEqual(p.map((o) => o.admitted), [true, true, true]);
      assert.ok(await statReaches(open, "fleet_open_admits_total", 3) >= 3);
    } finally {
      await etcd.restart();
    }
    let back = false;
    for (let i = 0; i < 20 && !back; i++) { // bounded: the calls recover
      back = (await upgrade(closed, i % 2).outcome).admitted;
      if (!back) await delay(300);
    }
    assert.ok(back, "admitted again after etcd returned");
    assert.deepEqual([...traps(closed), ...traps(open)], [], "no trap");
    closeReplica(closed);
    closeReplica(open);
  });
});
