// Fleet mode: a process that has not had a single upgrade holds no slots in etcd (docs/fleet.md §0: grants are asked
// for by waiting upgrades). Regression test: before the fleet increment 2 merge, every process with 2
// worker VMs took a block at start-up (the VM left in WAIT_LEASE ran startChain at its next tick, which, the lease
// then live, sent the pod range and a grant txn with no upgrade waiting); found by test/fleet/clients.test.ts, it made
// failures.test.ts flaky on a loaded machine ("granted 6 + 0", "A takes the whole cap … 3 !== 6").
//   node --import tsx --test --test-reporter=tap test/fleet/idle.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";
import { useEtcd, closeReplica, delay, etcdSlots, fleetConfig, startReplica, traps, type Replica } from "./support.ts";

const gate = etcdGate();

describe("fleet mode, an idle process [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test("a process with no upgrade takes a lease but no slots", { skip: gate.skip, timeout: 30_000 }, async () => {
    assert.ok(etcd);
    const prefix = "/t-idle/";
    const a = startReplica("gw-a", port, fleetConfig(prefix, { max_connections_per_pod: 8 }, { block: 3, lease_ttl_seconds: 3 }));
    replicas.push(a);
    // the lease is taken at the first ticks (both VMs): wait until a keepalive went out, then a few ticks more
    await waitFor(() => a.stat("fleet_calls_total") >= 2, { timeoutMs: 10_000, what: "the lease and a keepalive" });
    await delay(1000);
    const slots = await etcdSlots(etcd.clientUrl, prefix);
    assert.equal(a.stat("fleet_waits_total"), 0, "no upgrade waited");
    assert.deepEqual(traps(a), []);
    closeReplica(a);
    assert.deepEqual(Object.fromEntries(slots), {}, "no slots granted to a process that had no upgrade");
  });
});
