// Corrupt or foreign values in shared data (written by something else under our keys): defined behaviour, never a
// trap, never a lost or doubled count. Ledgers and rate values read as empty and are rewritten in our format; a lease
// table that does not decode is replaced, and no VM's connections count twice in the gauge.
import assert from "node:assert/strict";
import { test } from "node:test";
import { VMID, bump, conn, encodeLedger, finishReply, gauge, ledgerAt, leases, makeEnv, open, podTotal, reply, ok } from "./support.ts";

const NO_RATE = { rate_limit: null };

test("corrupt or foreign values in shared data: defined behaviour, no trap, corrupt_values_total counts", () => {
  const e = makeEnv({ concurrency: 2, config: { max_connections_per_pod: 3, max_connections_per_client: 5, client_buckets: 1, rate_limit: { requests: 100, window_seconds: 1 } } });
  try {
    const garbage: Uint8Array[] = [
      new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),                 // not ours
      new Uint8Array([0x57, 1]),                                    // truncated header
      new Uint8Array([0x57, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]),         // rate value where a ledger belongs
      encodeLedger("pod-a", [[7, 1]]).subarray(0, 20),              // truncated ledger
      Buffer.from("{\"count\": 3}"),                                // another program's JSON
      new Uint8Array([0x57, 9, 1, 0, 0]),                           // future version
    ];
    let step = 0;
    for (const g of garbage) {
      for (const k of e.proc.sharedData.keys(VMID)) {
        if (k.startsWith("wsg:pod:") || k.startsWith("wsg:rl:") || k.startsWith("wsg:cli:") || k === "wsg:vms") e.proc.sharedData.put(VMID, k, g);
      }
      const c0 = e.stat("corrupt_values_total");
      const o = open(e.h, step % 2, `10.6.0.${step}:1`);
      ok(!e.h.vmFailed(0) && !e.h.vmFailed(1), `trap on ${Buffer.from(g).toString("hex")}`);
      ok(o.admitted, `corrupt values are treated as empty: ${Buffer.from(g).toString("hex")}`);
      // rate, client and pod values counted (the rate-shaped value is a valid wsg:rl value: only 2 there)
      const want = step === 2 ? 2 : 3;
      ok(e.stat("corrupt_values_total") >= c0 + want, `corrupt_values_total +${e.stat("corrupt_values_total") - c0} < ${want}`);
      const slots = e.proc.sharedData.keys(VMID).filter((k) => k.startsWith("wsg:pod:")).map((k) => ledgerAt(e.proc, k));
      assert.equal(slots.filter((l) => l !== null && l.name === "pod-a" && l.total === 1).length, 1, "the slot was rewritten in our format");
      e.proc.advance(1000); // heartbeat over a corrupt lease table starts a fresh one
      ok(leases(e.proc).size >= 1);
      o.s.complete();
      for (const k of e.proc.sharedData.keys(VMID)) if (k.startsWith("wsg:pod:") && ledgerAt(e.proc, k) === null) e.proc.sharedData.put(VMID, k, new Uint8Array(0));
      assert.equal(podTotal(e.proc), 0);
      // a release over a corrupt value is an orphan, not a trap
      const o2 = open(e.h, 0, "10.6.1.1:1");
      ok(o2.admitted);
      for (const k of e.proc.sharedData.keys(VMID)) if (k.startsWith("wsg:pod:")) e.proc.sharedData.put(VMID, k, g);
      const orph = e.stat("orphan_releases_total");
      o2.s.complete();
      assert.equal(e.stat("orphan_releases_total"), orph + 1);
      step++;
    }
    // the metrics endpoint skips what it cannot decode
    for (const k of e.proc.sharedData.keys(VMID)) if (k.startsWith("wsg:pod:")) e.proc.sharedData.put(VMID, k, garbage[0]);
    const s = e.h.newStream(0, conn("127.0.0.1:1"));
    assert.equal(reply(s.decodeHeaders([[":method", "GET"], [":path", "/websocket/metrics"], [":authority", "a"]], true)).status, 200);
    finishReply(s);
    ok(!e.h.vmFailed(0));
  } finally {
    e.close();
  }
});

test("a corrupt lease table is replaced without counting any VM's connections twice in the gauge", () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 10, tick_ms: 1000, lease_ticks: 3 } });
  try {
    const held = [open(e.h, 0, "10.7.0.1:1"), open(e.h, 0, "10.7.0.2:1"), open(e.h, 1, "10.7.0.3:1")];
    for (const o of held) ok(o.admitted);
    e.proc.advance(1500); // every VM beat and published its share
    assert.equal(gauge(e), 3);
    for (const g of [new Uint8Array([1, 2, 3]), Buffer.from("{\"vms\": []}")]) {
      e.proc.sharedData.put(VMID, "wsg:vms", g); // something else wrote the lease table
      e.proc.advance(5000); // five beats each: the first VM to beat starts a fresh table, the others re-register
      assert.equal(gauge(e), 3, `after ${Buffer.from(g).toString("hex")}: the gauge counts each connection once`);
      assert.equal(leases(e.proc).size, 3, "both workers and the main VM are registered again");
      assert.equal(podTotal(e.proc), 3, "no share was reclaimed");
      assert.equal(e.stat("reclaimed_total"), 0);
    }
    ok(e.stat("corrupt_values_total") >= 2, "each fresh table counts the corrupt value it replaced");
    // after the resets, a VM that really was taken for dead (its lease writes kept failing) still gets its share
    // back into the gauge when it beats again: the reset count did not move, so it was a sweep
    e.proc.sharedData.beforeSet = (_v, key, vm) => { if (key === "wsg:vms" && vm === "worker-1") bump(e, key); };
    e.proc.advance(5000);
    e.proc.sharedData.beforeSet = undefined;
    assert.equal(e.stat("reclaimed_total"), 1, "worker 1's connection was reclaimed");
    e.proc.advance(1500);
    assert.equal(gauge(e), 3, "worker 1's connection is still open, and counted once");
    for (const o of held) o.s.complete();
    assert.equal(gauge(e), 0);
    assert.equal(podTotal(e.proc), 0);
    assert.equal(e.stat("orphan_releases_total"), 1, "worker 1's release found its share reclaimed");
  } finally {
    e.close();
  }
});
