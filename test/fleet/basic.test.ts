// Fleet mode basics against a real etcd: one Envoy process (2 workers) with the fleet module; the first upgrade
// waits for the lease and a grant, later ones are admitted from granted slots; the fleet cap answers 503 pod_full;
// a stream that waited and was refused gets exactly one local reply.
//   node --import tsx --test --test-reporter=tap test/fleet/basic.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";
import { useEtcd, closeReplica, traps, etcdSlots, fleetConfig, startReplica, sum, upgrade, statReaches, type Replica } from "./support.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 60_000 };

describe("fleet mode, one process [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test("a lease, grants in blocks, the fleet cap (503 pod_full), stats", T, async () => {
    assert.ok(etcd);
    const prefix = "/t-basic/";
    const r = startReplica("gw-a", port, fleetConfig(prefix, { max_connections_per_pod: 3 }, { block: 2 }));
    replicas.push(r);
    const ups = [];
    for (let i = 0; i < 5; i++) ups.push(upgrade(r, i % 2));
    const out = await Promise.all(ups.map((u) => u.outcome));
    const admitted = out.filter((o) => o.admitted).length;
    assert.equal(admitted, 3, JSON.stringify(out.map((o) => o.reply?.details ?? "ok")));
    for (const o of out.filter((x) => !x.admitted)) {
      assert.equal(o.reply?.status, 503);
      assert.equal(o.reply?.details, "ws_governor_pod_full");
    }
    const slots = await etcdSlots(etcd.clientUrl, prefix);
    assert.equal(slots.size, 1, "one holder key: the process's lease");
    assert.equal(sum(slots), 3, "etcd holds exactly the cap for this process");
    assert.ok(await statReaches(r, "fleet_calls_total", 3) >= 3, "lease grant, range, txn"); // (counted on the tick)
    assert.ok(await statReaches(r, "fleet_waits_total", 1) >= 1);
    assert.equal(r.stat("fleet_call_failures_total"), 0);
    // keepalives keep the lease (TTL 2 s) alive well past its TTL
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(sum(await etcdSlots(etcd.clientUrl, prefix)), 3, "the lease outlived its TTL: keepalives");
    // a connection that ends frees its slot for this process (no etcd call)
    ups.find((_, i) => out[i].admitted)!.s.complete();
    const calls = r.stat("fleet_calls_total");
    const again = await upgrade(r, 0).outcome;
    assert.ok(again.admitted, "admitted from the process's own slots");
    await waitFor(() => r.stat("fleet_calls_total") >= calls, { timeoutMs: 1000 });
    assert.deepEqual(traps(r), [], "no trap");
    closeReplica(r);
  });
});
