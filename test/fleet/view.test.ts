// The fleet's view on /websocket/metrics (docs/fleet.md §6) against a real etcd: 3 emulated Envoy processes hold
// connections on one pod and publish their stats; a scrape of any one shows the fleet's sums (active = every open
// connection, granted = etcd's sum, holders = 3, up 1) after its local page. A scrape whose stream ended while etcd was
// read gets nothing (and nothing traps); with etcd halted a scrape still answers, with the local page and fleet_up 0.
//   node --import tsx --test --test-reporter=tap test/fleet/view.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { b64, etcdGate, etcdPost, prefixEnd, unb64, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";
import { bodyText, conn, parseProm, plainHeaders } from "../filter/support.ts";
import type { LocalReply, StepResult } from "../filter/support.ts";
import { useEtcd, closeReplica, traps, etcdSlots, fleetConfig, startReplica, sum, upgrade, afterFleetTick, statReaches, type Replica, type Upgrade } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 60_000 };
const CALL_TIMEOUT_MS = 500;
const ACTIVE = 'ws_governor_fleet_active{pod="pod-x"}';
const GRANTED = 'ws_governor_fleet_granted{pod="pod-x"}';
const PERIOD_MS = 200;

/** GET /websocket/metrics from loopback on `worker` of `r`: the local reply, whether it came at once or after the
 *  filter's etcd read (onAsync). Rejects if none came within `waitMs` (a hang, never acceptable). */
function scrape(r: Replica, worker = 0, waitMs = CALL_TIMEOUT_MS + 3000): Promise<LocalReply> {
  const s = r.h.newStream(worker, conn("127.0.0.1:45000"));
  return new Promise<LocalReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${r.name}: no metrics answer within ${waitMs} ms`)), waitMs);
    const done = (x: StepResult) => {
      if (x.kind !== "localReply") return;
      clearTimeout(timer);
      if (!s.ended) s.complete();
      resolve(x.reply);
    };
    s.events = { onAsync: (x: StepResult) => done(x) };
    const first = s.decodeHeaders(plainHeaders("/websocket/metrics"), true);
    if (first.kind === "localReply") done(first);
    else assert.equal(first.kind, "stop", `the scrape must wait for etcd: ${JSON.stringify(first).slice(0, 200)}`);
  });
}

async function page(r: Replica, worker = 0): Promise<Map<string, number>> {
  const rep = await scrape(r, worker);
  assert.equal(rep.status, 200);
  assert.equal(rep.details, "ws_governor_metrics");
  return parseProm(bodyText(rep));
}

async function open(r: Replica, n: number): Promise<Upgrade[]> {
  const ups: Upgrade[] = [];
  for (let i = 0; i < n; i++) ups.push(upgrade(r, i % 2));
  for (const u of ups) assert.ok((await u.outcome).admitted, `${r.name}: an upgrade was refused`);
  return ups;
}

describe("fleet view on /websocket/metrics [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test("3 processes: any one's scrape shows active = every open connection, granted = etcd's sum, 3 holders, up 1; " +
    "a stream that ended while waiting is skipped; etcd halted → the local page with fleet_up 0; no trap", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-view/";
    const cfg = fleetConfig(prefix, { max_connections_per_pod: 12 },
      { block: 2, call_timeout_ms: CALL_TIMEOUT_MS, lease_ttl_seconds: 10, stats_period_ms: PERIOD_MS });
    const [a, b, c] = ["gw-a", "gw-b", "gw-c"].map((n) => startReplica(n, port, cfg));
    replicas.push(a, b, c);
    const conns = [...await open(a, 3), ...await open(b, 2), ...await open(c, 1)];

    // the holders publish every 200 ms: poll (bounded) until one scrape reflects all six connections
    const m = await waitFor(async () => {
      const p = await page(b, 1);
      return p.get(ACTIVE) === 6 && p.get("ws_governor_fleet_holders") === 3 ? p : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200, what: "a scrape of gw-b showing 6 active connections over 3 holders" });
    assert.equal(m.get("ws_governor_fleet_up"), 1);
    assert.equal(m.get(GRANTED), sum(await etcdSlots(etcd.clientUrl, prefix)), "granted = etcd's sum over holders");
    assert.ok(m.get(GRANTED)! >= 6 && m.get(GRANTED)! <= 12);
    assert.equal(m.get('websocket_connections_active_total{pod="pod-x"}'), 2, "the local page (gw-b's own view) comes first");
    // etcd holds one stats value per process, each under its lease
    const st = await etcdPost<{ kvs?: Array<{ key: string; value?: string; lease?: string }> }>(etcd.clientUrl,
      "/v3/kv/range", { key: b64(`${prefix}stats/`), range_end: b64(prefixEnd(`${prefix}stats/`)) });
    assert.equal(st.kvs?.length, 3);
    for (const kv of st.kvs ?? []) {
      assert.match(unb64(kv.key), /^\/t-view\/stats\/[0-9a-f]{16}$/);
      assert.equal(BigInt(kv.lease ?? "0").toString(16).padStart(16, "0"), unb64(kv.key).slice(-16), "under the holder's lease");
      assert.match(unb64(kv.value), /^(\d+ pod-x\n)$/);
    }
    const puts0 = a.stat("fleet_stats_puts_total");
    const t0 = Date.now();
    for (const r of [a, c]) { // the same fleet from every process
      const p = await page(r);
      assert.equal(p.get(ACTIVE), 6, r.name);
      assert.equal(p.get("ws_governor_fleet_holders"), 3, r.name);
    }

    // closing connections shows within a publication period or two
    conns[0].s.complete();
    conns[3].s.complete();
    await waitFor(async () => (await page(c)).get(ACTIVE) === 4, { timeoutMs: 10_000, intervalMs: 200, what: "active 4" });

    // a scrape whose stream ends while etcd is being read gets no reply (and nothing traps); the next one works
    const gone = c.h.newStream(0, conn("127.0.0.1:45001"));
    const late: StepResult[] = [];
    gone.events = { onAsync: (x: StepResult) => late.push(x) };
    assert.equal(gone.decodeHeaders(plainHeaders("/websocket/metrics"), true).kind, "stop");
    gone.complete();
    assert.equal((await page(c)).get("ws_governor_fleet_up"), 1);
    assert.deepEqual(late, [], "no reply to a stream that ended");
    assert.ok(await statReaches(c, "fleet_scrapes_total", 3) >= 3); // (counters reach Envoy on the tick)
    // one VM per process publishes per period (2 workers here): 6 more puts take at least 5 periods (+1 for the
    // record's first claim, which has no cas), however the ticks fell
    await waitFor(() => a.stat("fleet_stats_puts_total") >= puts0 + 6, { timeoutMs: 10_000, intervalMs: 20, what: "6 puts" });
    const puts = a.stat("fleet_stats_puts_total") - puts0;
    const periods = Math.floor((Date.now() - t0) / PERIOD_MS);
    assert.ok(puts <= periods + 2, `${puts} puts in ${periods} periods: more than one VM published per period`);

    await etcd.halt();
    try {
      const failures = a.stat("fleet_scrape_failures_total");
      const rep = await scrape(a, 1);
      assert.equal(rep.status, 200);
      const text = bodyText(rep);
      const d = parseProm(text);
      assert.equal(d.get("ws_governor_fleet_up"), 0);
      assert.equal(d.get('websocket_connections_active_total{pod="pod-x"}'), 2, "the local view");
      assert.doesNotMatch(text, /ws_governor_fleet_(active|granted|holders)/, "no fleet series without etcd");
      await statReaches(a, "fleet_scrape_failures_total", failures + 1);
      await afterFleetTick(); // exactly one: nothing more arrives a tick later
      assert.equal(a.stat("fleet_scrape_failures_total"), failures + 1);
    } finally {
      await etcd.restart();
    }
    assert.deepEqual([...traps(a), ...traps(b), ...traps(c)], [], "no trap");
    for (const r of [a, b, c]) closeReplica(r);
  });
});
