// Fleet mode: the global per-client cap and returns of unused slots, against a real etcd (emulated Envoy processes
// with the fleet module, 2 workers each).
//   node --import tsx --test --test-reporter=tap test/fleet/limits.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, type Etcd } from "../support/etcd.ts";
import { rng } from "../filter/support.ts";
import { waitFor } from "../support/wait.ts";
import { useEtcd, traps, etcdSlots, fleetConfig, outcomes, startReplica, sum, upgrade, afterFleetTick, statReaches, type Replica, type Upgrade } from "./support.ts";
import { conn, upgradeHeaders, H101 } from "../filter/support.ts";
import type { LocalReply, StepResult } from "../filter/support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 60_000 };
const BUCKETS = 64;

/** The client bucket the filter uses for `key` (core/codec.ts fnv1a over UTF-16 code units, low byte then high). */
function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (c >> 8), 0x01000193) >>> 0;
  }
  return h % BUCKETS;
}

function client(r: Replica, worker: number, key: string): Upgrade {
  return upgrade(r, worker, 5000, [["x-client", key]]);
}


describe("fleet mode: per-client caps and returns [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test("a client's cap holds across three processes; other clients are not affected; closed slots come back", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-clients/";
    const cfg = fleetConfig(prefix, {
      max_connections_per_pod: 0, max_connections_per_client: 2, client_buckets: BUCKETS,
      client_key: { source: "header", header: "x-client" },
    }, { rebalance_ms: 200 });
    const rs = ["a", "b", "c"].map((n) => startReplica(`gw-${n}`, port, cfg));
    replicas.push(...rs);
    // alice tries 6 times, spread over the three processes and their workers, all at once
    const first = await outcomes(rs.flatMap((r) => [client(r, 0, "alice"), client(r, 1, "alice")]));
    assert.equal(first.open.length, 2, `alice holds exactly 2 across the fleet: ${first.refused}`);
    assert.deepEqual([...new Set(first.refused)], ["ws_governor_client_limit"]);
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix, String(bucketOf("alice")), "client")), 2);
    // bob (another bucket) gets his own 2
    assert.notEqual(bucketOf("bob"), bucketOf("alice"));
    const bob = await outcomes(rs.map((r) => client(r, 1, "bob")));
    assert.equal(bob.open.length, 2, `bob: ${bob.refused}`);
    // alice closes one: she may open one more, anywhere in the fleet (after the holder returns the slot to etcd)
    first.open[0].s.complete();
    let again = false;
    for (let i = 0; i < 40 && !again; i++) {
      const r = rs[(i + 1) % 3];
      const u = await outcomes([client(r, i % 2, "alice")]);
      if (u.open.length === 1) { again = true; first.open.push(u.open[0]); }
      else await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(again, "alice's freed slot came back to the fleet");
    const third = await outcomes(rs.map((r) => client(r, 0, "alice")));
    assert.equal(third.open.length, 0, "still at most 2");
    for (const u of [...first.open.slice(1), ...bob.open]) u.s.complete();
    // everything is given back to etcd once nobody uses it (rebalance_ms 200)
    await waitFor(async () => sum(await etcdSlots(etcd!.clientUrl, prefix, String(bucketOf("alice")), "client")) === 0 &&
      sum(await etcdSlots(etcd!.clientUrl, prefix, String(bucketOf("bob")), "client")) === 0, { timeoutMs: 10_000 });
    const returnedSum = () => rs.reduce((t, r) => t + r.stat("fleet_returned_slots_total"), 0);
    await waitFor(() => returnedSum() >= 4, { timeoutMs: 3000, intervalMs: 10 }).catch(() => undefined); // counted on the tick
    const returned = returnedSum();
    assert.ok(returned >= 4, `returned ${returned}`);
    for (const r of rs) assert.deepEqual(traps(r), []);
  });

  test("racing clients: no client ever holds more than its cap across the fleet; slots churn through returns", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-client-race/";
    const CAP = 2;
    const cfg = fleetConfig(prefix, {
      max_connections_per_pod: 0, max_connections_per_client: CAP, client_buckets: BUCKETS,
      client_key: { source: "header", header: "x-client" },
    }, { rebalance_ms: 100 });
    const rs = ["a", "b", "c"].map((n) => startReplica(`gw-${n}`, port, cfg));
    replicas.push(...rs);
    const names = ["c1", "c2", "c3", "c4", "c5"].filter((n, i, all) => all.findIndex((m) => bucketOf(m) === bucketOf(n)) === i);
    const rand = rng(7);
    const open = new Map<string, Set<Upgrade>>(names.map((n) => [n, new Set<Upgrade>()]));
    let attempts = 0, admitted = 0, over = 0;
    const t0 = Date.now();
    while (attempts < 1500 && Date.now() - t0 < 20_000) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < 10; i++) {
        const who = names[Math.floor(rand() * names.length)];
        const u = client(rs[Math.floor(rand() * 3)], Math.floor(rand() * 2), who);
        attempts++;
        batch.push(u.outcome.then((o) => {
          if (!o.admitted) return;
          admitted++;
          const set = open.get(who)!;
          set.add(u);
          if (set.size > CAP) over++;
        }));
      }
      await Promise.all(batch);
      for (const set of open.values()) for (const u of [...set]) if (rand() < 0.4) { u.s.complete(); set.delete(u); }
      if (rand() < 0.1) await new Promise((res) => setTimeout(res, 150)); // idle moments: returns run
    }
    console.log(`# fleet client race: ${attempts} attempts by ${names.length} clients (cap ${CAP} each) over 3 processes, ` +
      `${admitted} admitted, over-admissions ${over}, returned slots ${rs.reduce((t, r) => t + r.stat("fleet_returned_slots_total"), 0)}`);
    assert.equal(over, 0);
    assert.ok(admitted > attempts / 10, `admitted ${admitted} of ${attempts}`);
    for (const set of open.values()) for (const u of set) u.s.complete();
    for (const r of rs) assert.deepEqual(traps(r), []);
  });

  test("a process's idle pod slots go back to etcd, and another process can use them", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-returns/";
    const cfg = fleetConfig(prefix, { max_connections_per_pod: 6 }, { block: 3, rebalance_ms: 200 });
    const a = startReplica("gw-a", port, cfg);
    const b = startReplica("gw-b", port, cfg);
    replicas.push(a, b);
    const fa = await outcomes([0, 1, 0, 1, 0, 1].map((w) => upgrade(a, w)));
    assert.equal(fa.open.length, 6);
    const fb = await outcomes([upgrade(b, 0)]);
    assert.deepEqual(fb.refused, ["ws_governor_pod_full"]);
    for (const u of fa.open) u.s.complete(); // A idles: its 6 slots return after rebalance_ms
    await waitFor(async () => sum(await etcdSlots(etcd!.clientUrl, prefix)) === 0, { timeoutMs: 10_000 });
    const fb2 = await outcomes([0, 1, 0, 1, 0, 1, 0].map((w) => upgrade(b, w)));
    assert.equal(fb2.open.length, 6, "B takes the whole cap");
    assert.deepEqual(fb2.refused, ["ws_governor_pod_full"]);
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), 6);
    assert.ok(await statReaches(a, "fleet_returned_slots_total", 6) >= 6);
    for (const u of fb2.open) u.s.complete();
    for (const r of [a, b]) assert.deepEqual(traps(r), []);
  });
  test("near the cap (scarce mode): a process holding idle slots gives them back when another finds the limit full, so another " +
    "process is admitted within about rebalance_ms instead of never (B's first grant is cut to 1)", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-scarce/";
    const cfg = fleetConfig(prefix, { max_connections_per_pod: 4 }, { block: 3, rebalance_ms: 300 });
    const a = startReplica("gw-a", port, cfg);
    const b = startReplica("gw-b", port, cfg);
    replicas.push(a, b);
    const fa = await outcomes([upgrade(a, 0)]);
    assert.equal(fa.open.length, 1);
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), 3, "A holds a block of 3: 2 idle");
    const t0 = Date.now();
    let admittedAfter = -1;
    const bOpen: Upgrade[] = [];
    for (let i = 0; i < 50 && bOpen.length < 3; i++) {
      const o = await outcomes([upgrade(b, i % 2)]);
      if (o.open.length) { bOpen.push(...o.open); if (admittedAfter < 0) admittedAfter = Date.now() - t0; }
      else { assert.deepEqual(o.refused, ["ws_governor_pod_full"]); await new Promise((res) => setTimeout(res, 100)); }
    }
    console.log(`# fleet scarce: B admitted ${admittedAfter} ms after A took the whole cap with 1 connection (rebalance_ms 300)`);
    assert.equal(bOpen.length, 3, "B gets the 3 slots A did not use");
    assert.deepEqual((await outcomes([upgrade(b, 0), upgrade(a, 1)])).refused.length, 2, "the cap (4) is full");
    assert.ok(sum(await etcdSlots(etcd.clientUrl, prefix)) <= 4);
    for (const u of [...fa.open, ...bOpen]) u.s.complete();
    for (const r of [a, b]) assert.deepEqual(traps(r), []);
  });
  test("mode upstream (a gateway fleet): each upstream pod's cap holds across three processes at the 101; the " +
    "response waits for etcd when needed; other pods are not affected", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-upstream/";
    const cfg = JSON.stringify({
      mode: "upstream", max_connections_per_pod: 3, rate_limit: null, tick_ms: 100,
      fleet: { cluster: "etcd", prefix, lease_ttl_seconds: 2, call_timeout_ms: 1000, block: 1 }, // no idle slots
    });
    const rs = ["a", "b", "c"].map((n) => startReplica(`gw-${n}`, port, cfg));
    replicas.push(...rs);
    /** An upgrade routed to `pod`: admitted or refused at its 101 (maybe after the filter's etcd wait). */
    const up = (r: Replica, worker: number, pod: string) => {
      const s = r.h.newStream(worker, conn(`10.1.0.9:4${worker}001`));
      s.setUpstream({ address: pod, port: 8080, clusterName: "ws" });
      return new Promise<{ admitted: boolean; reply?: LocalReply; s: typeof s }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("an upgrade waited > 5 s")), 5000);
        const done = (v: { admitted: boolean; reply?: LocalReply }) => { clearTimeout(timer); resolve({ ...v, s }); };
        s.events = {
          onAsync: (x: StepResult, dir: string) => {
            if (dir !== "response") return;
            if (x.kind === "continue") done({ admitted: true });
            else if (x.kind === "localReply") done({ admitted: false, reply: x.reply });
          },
        };
        const r1 = s.decodeHeaders(upgradeHeaders(), true);
        assert.equal(r1.kind, "continue", "the request goes on: the pod is chosen by Envoy, known at the 101");
        const r2 = s.encodeHeaders(H101, false);
        if (r2.kind === "continue") done({ admitted: true });
        else if (r2.kind === "localReply") done({ admitted: false, reply: r2.reply });
        else assert.equal(r2.kind, "stop");
      });
    };
    const podA = "10.0.7.1:8080", podB = "10.0.7.2:8080";
    const tries = await Promise.all(rs.flatMap((r) => [up(r, 0, podA), up(r, 1, podA), up(r, 0, podA)]));
    const openA = tries.filter((t) => t.admitted);
    assert.equal(openA.length, 3, "pod A: exactly its cap across the fleet");
    assert.deepEqual([...new Set(tries.filter((t) => !t.admitted).map((t) => t.reply?.details))], ["ws_governor_pod_full"]);
    assert.ok(tries.filter((t) => !t.admitted).every((t) => t.reply?.status === 503));
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix, podA)), 3);
    const b = await Promise.all(rs.map((r) => up(r, 1, podB)));
    assert.equal(b.filter((t) => t.admitted).length, 3, "pod B has its own cap");
    // one of A's closes: A may take one more, through any process
    openA[0].s.complete();
    let again = false;
    for (let i = 0; i < 40 && !again; i++) {
      const t = await up(rs[(i + 1) % 3], i % 2, podA);
      if (t.admitted) { again = true; openA.push(t); } else await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(again, "A's freed slot came back to the fleet");
    const acceptedSum = () => rs.reduce((t, r) => t + r.stat("accepted_total"), 0);
    await waitFor(() => acceptedSum() >= 7, { timeoutMs: 3000, intervalMs: 10 }).catch(() => undefined); // counted on the tick
    await afterFleetTick(); // and no more a tick later
    const accepted = acceptedSum();
    assert.equal(accepted, 3 + 3 + 1, "accepted_total counts the upgrades confirmed at the 101");
    for (const t of [...openA.slice(1), ...b]) if (t.admitted) t.s.complete();
    for (const r of rs) assert.deepEqual(traps(r), []);
  });
});
