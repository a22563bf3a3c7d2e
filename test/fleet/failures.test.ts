// Fleet mode failure drills against a real etcd: a process killed without releasing anything (its slots come back
// when its lease expires), and etcd down (failure_mode closed / open with local_cap_per_pod; no trap; exact again
// after etcd returns). Every wait is bounded.
//   node --import tsx --test --test-reporter=tap test/fleet/failures.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, etcdPost, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";
import { useEtcd, closeReplica, traps, delay, etcdSlots, fleetConfig, outcomes, startReplica, sum, upgrade, afterFleetTick, statReaches, type Replica, type Upgrade } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 90_000 };
const TTL = 2;

async function admitted(u: Upgrade): Promise<boolean> {
  const o = await u.outcome;
  return o.admitted;
}

/** n upgrades on replica r (alternating workers), all awaited. */
function fill(r: Replica, n: number): Promise<{ open: Upgrade[]; refused: string[] }> {
  return outcomes(Array.from({ length: n }, (_, i) => upgrade(r, i % 2)));
}

describe("fleet mode failure drills [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test(`a process killed without releasing: its slots come back after its lease TTL (${TTL} s)`, T, async () => {
    assert.ok(etcd);
    const prefix = "/t-kill/";
    const cfg = fleetConfig(prefix, { max_connections_per_pod: 6 }, { lease_ttl_seconds: TTL, block: 3 });
    const a = startReplica("gw-a", port, cfg);
    const b = startReplica("gw-b", port, cfg);
    replicas.push(a, b);
    const fa = await fill(a, 6);
    assert.equal(fa.open.length, 6, `A takes the whole cap: ${fa.refused}`);
    const fb = await fill(b, 2);
    assert.deepEqual(fb.refused, ["ws_governor_pod_full", "ws_governor_pod_full"], "B is refused: the cap is global");
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), 6);
    const killed = Date.now();
    closeReplica(a); // a crash: no release, no revoke; only the lease's expiry can free its 6 slots
    let back = -1;
    for (let i = 0; i < 100 && back < 0; i++) { // bounded: 100 × ≤ 200 ms
      const u = upgrade(b, i % 2);
      if (await admitted(u)) back = Date.now() - killed;
      else await delay(200);
    }
    console.log(`# fleet kill: slots back on the other process ${back} ms after the kill (lease TTL ${TTL} s)`);
    assert.ok(back >= 0, "the killed process's slots never came back");
    assert.ok(back < TTL * 1000 + 5000, `slots back only after ${back} ms`);
    const rest = await fill(b, 6);
    assert.equal(rest.open.length, 5, "B now has the whole cap (1 + 5)");
    assert.deepEqual(rest.refused, ["ws_governor_pod_full"]);
    const slots = await etcdSlots(etcd.clientUrl, prefix);
    assert.equal(slots.size, 1, "only B's key is left");
    assert.equal(sum(slots), 6);
    assert.deepEqual([...traps(a), ...traps(b)], [], "no trap");
    closeReplica(b);
  });

  test("etcd down: failure_mode closed refuses (503 contention) what needs etcd, open admits within local_cap_per_pod; " +
    "granted slots keep working; no trap; exact again after etcd returns", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-down/";
    const a = startReplica("gw-a", port, fleetConfig(prefix, { max_connections_per_pod: 6, failure_mode: "closed" },
      { block: 2, lease_ttl_seconds: 10, call_timeout_ms: 300 }));
    const b = startReplica("gw-b", port, fleetConfig(prefix, { max_connections_per_pod: 6, failure_mode: "open" },
      { block: 2, lease_ttl_seconds: 10, call_timeout_ms: 300, local_cap_per_pod: 1 }));
    replicas.push(a, b);
    // each worker VM asks for its own block when both wait at once, so read what each process holds
    const fa = await fill(a, 2);
    const gA = sum(await etcdSlots(etcd.clientUrl, prefix));
    const fb = await fill(b, 2);
    const gB = sum(await etcdSlots(etcd.clientUrl, prefix)) - gA;
    assert.equal(fa.open.length + fb.open.length, 4);
    assert.ok(gA >= 2 && gB >= 2 && gA + gB <= 6, `granted ${gA} + ${gB}`);
    await etcd.halt();
    try {
      // granted slots keep working while etcd is down (no etcd call): A has gA − 1 free after one connection ends;
      // beyond them A needs a grant: failure_mode closed → 503 contention, counted
      fa.open.pop()!.s.complete();
      const failsBefore = a.stat("fleet_call_failures_total");
      const ca = await fill(a, gA - 1 + 2);
      assert.equal(ca.open.length, gA - 1, "admitted from the process's own granted slots");
      assert.deepEqual(ca.refused, ["ws_governor_contention", "ws_governor_contention"]);
      fa.open.push(...ca.open);
      assert.ok(await statReaches(a, "fleet_unavailable_total", 2) >= 2); // (counters reach Envoy on the tick)
      assert.ok(await statReaches(a, "fleet_call_failures_total", failsBefore + 1) > failsBefore, "the failed calls are counted");
      // failure_mode open → one extra slot (local_cap_per_pod 1) beyond B's granted ones, counted; then refused
      const ob = await fill(b, gB - 2 + 2);
      assert.equal(ob.open.length, gB - 2 + 1, "fail-open within local_cap_per_pod");
      assert.deepEqual(ob.refused, ["ws_governor_contention"]);
      await statReaches(b, "fleet_open_admits_total", 1);
      await afterFleetTick(); // exactly one: nothing more arrives a tick later
      assert.equal(b.stat("fleet_open_admits_total"), 1);
      fb.open.push(...ob.open);
      fb.open.pop()!.s.complete(); // the deliberate overage ends (B is back to its granted slots)
    } finally {
      await etcd.restart();
    }
    assert.deepEqual([...traps(a), ...traps(b)], [], "no trap");
    // etcd is back (leases survived a restart): the fleet fills up to exactly the cap, no more
    let open = fa.open.length + fb.open.length;
    assert.equal(open, gA + gB);
    let refusedFull = 0;
    for (let i = 0; i < 40 && refusedFull < 2; i++) {
      const r = i % 2 === 0 ? a : b;
      const o = await upgrade(r, i % 2).outcome;
      if (o.admitted) open++;
      else if (o.reply?.details === "ws_governor_pod_full") refusedFull++;
      else await delay(200); // contention while the calls recover
      assert.ok(open <= 6, `over-admission after etcd returned: ${open} open`);
    }
    assert.equal(open, 6, "the cap is reached again");
    assert.equal(refusedFull, 2);
    assert.ok(sum(await etcdSlots(etcd.clientUrl, prefix)) <= 6);
    assert.deepEqual([...traps(a), ...traps(b)], [], "no trap");
    closeReplica(a);
    closeReplica(b);
  });

  test("a lease lost in etcd (revoked): the next keepalive says so, the process drops its slots, takes a new lease " +
    "and grants again under it (counted in fleet_lease_lost_total)", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-lost/";
    const a = startReplica("gw-a", port, fleetConfig(prefix, { max_connections_per_pod: 4 }, { block: 2, lease_ttl_seconds: 3 }));
    replicas.push(a);
    const first = await fill(a, 1);
    assert.equal(first.open.length, 1);
    const before = [...(await etcdSlots(etcd.clientUrl, prefix)).keys()];
    assert.equal(before.length, 1);
    const id = BigInt("0x" + before[0].slice(before[0].lastIndexOf("/") + 1)).toString();
    await etcdPost(etcd.clientUrl, "/v3/lease/revoke", { ID: id });
    assert.equal((await etcdSlots(etcd.clientUrl, prefix)).size, 0, "revoke deleted the process's key");
    await waitFor(() => a.stat("fleet_lease_lost_total") >= 1, { timeoutMs: 10_000, what: "the keepalive to report the lost lease" });
    const again = await fill(a, 1);
    assert.equal(again.open.length, 1, `admitted under a new lease: ${again.refused}`);
    const after = [...(await etcdSlots(etcd.clientUrl, prefix)).keys()];
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before[0], "a new holder key (new lease id)");
    assert.deepEqual(traps(a), [], "no trap");
    closeReplica(a);
  });
  test("a partition longer than the lease: past its local deadline (TTL − margin after the last renewal) a process " +
    "stops admitting on its old grant; after etcd returns it takes a new lease and the cap holds", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-partition/";
    const cfg = fleetConfig(prefix, { max_connections_per_pod: 4, failure_mode: "closed" },
      { block: 4, lease_ttl_seconds: 2, call_timeout_ms: 300, rebalance_ms: 600000 });
    const a = startReplica("gw-a", port, cfg);
    replicas.push(a);
    const first = await fill(a, 1);
    assert.equal(first.open.length, 1);
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), 4, "A holds a block of 4, 3 of them free");
    await etcd.halt();
    const halted = Date.now();
    let deadlineMs = -1;
    try {
      const early = await fill(a, 1); // within the deadline: a granted free slot
      assert.equal(early.open.length, 1, `a granted slot admits while etcd is briefly away: ${early.refused}`);
      first.open.push(...early.open);
      await delay(2_100); // past TTL: etcd (were it up) would have expired the lease and freed the slots for others
      const late = await fill(a, 1);
      deadlineMs = Date.now() - halted;
      assert.deepEqual(late.refused, ["ws_governor_contention"], "the old grant is no longer used (failure_mode closed)");
    } finally {
      await etcd.restart();
    }
    console.log(`# fleet partition: the old grant refused ${deadlineMs} ms after etcd went away (lease TTL 2 s)`);
    // back: a new lease. The two connections opened before are registered under it without the cap check (so
    // etcd's sum tells the truth), even with no new upgrade; the old lease's key expires by itself.
    const oldKey = [...(await etcdSlots(etcd.clientUrl, prefix)).keys()][0];
    const reg = await waitFor(async () => {
      const m = await etcdSlots(etcd!.clientUrl, prefix);
      const fresh = [...m.entries()].filter(([k]) => k !== oldKey);
      return fresh.length === 1 && fresh[0][1] === first.open.length && a.stat("fleet_registered_slots_total") > 0
        ? fresh[0][0] : false;
    }, { timeoutMs: 10_000, what: "the open connections registered under the new lease" });
    assert.equal(a.stat("fleet_registered_slots_total"), first.open.length);
    await waitFor(async () => !(await etcdSlots(etcd!.clientUrl, prefix)).has(oldKey),
      { timeoutMs: 15_000, what: "the old lease to expire" });
    let open = first.open.length;
    const more = await fill(a, 4);
    open += more.open.length;
    assert.equal(open, 4, `exactly the cap: ${more.refused}`);
    assert.deepEqual([...new Set(more.refused)], ["ws_governor_pod_full"]);
    assert.ok((await etcdSlots(etcd.clientUrl, prefix)).has(reg), "still under the new lease");
    assert.ok(sum(await etcdSlots(etcd.clientUrl, prefix)) <= 4, "etcd holds no more than the cap");
    assert.ok(a.stat("fleet_unavailable_total") >= 1);
    assert.deepEqual(traps(a), [], "no trap");
    closeReplica(a);
  });
});
