// Fleet mode: racing upgrades across three emulated Envoy processes (2 workers each, the fleet module) sharing one
// real etcd. The global per-pod cap must never be exceeded: the test counts admitted-and-open connections over all
// processes after every decision and compares with the cap, and checks that etcd never grants more than the cap.
// Rounds use fresh key prefixes so that the grant race (not only local reuse) runs again and again; connections
// close at random so that slots are reused. Runs for RACE_MS (default 20 s) and prints the numbers.
//   node --import tsx --test --test-reporter=tap test/fleet/race.test.ts
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { etcdGate, type Etcd } from "../support/etcd.ts";
import { rng } from "../filter/support.ts";
import { useEtcd, closeReplica, traps, etcdSlots, fleetConfig, startReplica, sum, upgrade, delay, type Replica, type Upgrade } from "./support.ts";

const gate = etcdGate();
const RACE_MS = Number(process.env.RACE_MS ?? 20_000); // test/fleet/clients.test.ts races ≥ 10,000 real ws upgrades
const T = { skip: gate.skip, timeout: RACE_MS + 60_000 };
const CAP = 12;

describe("fleet mode, three processes racing [etcd]", () => {
  let etcd: Etcd | undefined;
  let port = 0;
  const replicas: Replica[] = [];
  useEtcd(gate, replicas, (e, p) => { etcd = e; port = p; });

  test(`racing upgrades: 0 over-admissions of the global per-pod cap (${CAP})`, T, async () => {
    assert.ok(etcd);
    const rand = rng(12);
    const t0 = Date.now();
    let upgrades = 0, admitted = 0, refused = 0, over = 0, maxOpen = 0, rounds = 0;
    const details = new Map<string, number>();
    const trapped: string[] = [];
    const calls: Record<string, number> = { fleet_calls_total: 0, fleet_call_failures_total: 0, fleet_waits_total: 0,
      fleet_unavailable_total: 0 };
    while (Date.now() - t0 < RACE_MS) {
      rounds++;
      const prefix = `/t-race/${rounds}/`;
      const block = 1 + Math.floor(rand() * 4);
      const round: Replica[] = ["a", "b", "c"].map((n) =>
        startReplica(`gw-${n}`, port, fleetConfig(prefix, { max_connections_per_pod: CAP, failure_mode: "closed" }, { block })));
      replicas.push(...round);
      const open = new Set<Upgrade>();
      const pending: Array<Promise<void>> = [];
      const check = () => {
        if (open.size > CAP) over++;
        if (open.size > maxOpen) maxOpen = open.size;
      };
      for (let burst = 0; burst < 12; burst++) {
        const n = 1 + Math.floor(rand() * 8);
        for (let i = 0; i < n; i++) {
          const rep = round[Math.floor(rand() * round.length)];
          const u = upgrade(rep, Math.floor(rand() * 2));
          upgrades++;
          pending.push(u.outcome.then((o) => {
            if (o.admitted) { admitted++; open.add(u); check(); }
            else { refused++; const d = o.reply?.details ?? "?"; details.set(d, (details.get(d) ?? 0) + 1); }
          }));
        }
        await delay(Math.floor(rand() * 30));
        for (const u of [...open]) { // some connections end
          if (rand() < 0.3) { u.s.complete(); open.delete(u); }
        }
      }
      await Promise.all(pending);
      check();
      const slots = sum(await etcdSlots(etcd.clientUrl, prefix));
      assert.ok(slots <= CAP, `etcd granted ${slots} > ${CAP} slots`);
      for (const u of open) u.s.complete();
      for (const r of round) {
        trapped.push(...traps(r));
        for (const k of Object.keys(calls)) calls[k] += r.stat(k);
      }
      for (const r of round) closeReplica(r);
    }
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`# fleet race: ${upgrades} upgrades in ${rounds} rounds (${seconds} s), ${admitted} admitted, ` +
      `${refused} refused ${JSON.stringify(Object.fromEntries(details))}, max open ${maxOpen} / cap ${CAP}, over-admissions ${over}; ` +
      `etcd ${JSON.stringify(calls)} (keepalives included)`);
    assert.deepEqual(trapped.slice(0, 5), [], "no trap");
    assert.equal(over, 0, "over-admissions of the global cap");
    assert.ok(upgrades > 300, `only ${upgrades} upgrades raced`);
    assert.ok(maxOpen === CAP, `the cap was reached (max open ${maxOpen})`);
    assert.ok((details.get("ws_governor_pod_full") ?? 0) > 0, "the fleet cap refused upgrades");
  });
});
