// Fleet mode (issue 12) with real `ws` clients: THREE loopback proxies (test/emulator/proxy: each its own emulated
// Envoy process with 2 worker VMs, envoy/envoy.yaml plus an `etcd` cluster, the fleet module, one fleet prefix) in
// front of one ws pod, sharing one real etcd. Clients connect through the three at random.
//   1. the race: ≥ 10,000 upgrades, the cap hit all the time; 0 over-admissions at the pod (see clients_support.ts
//      for why the pod's count is the ground truth), etcd's granted sum ≤ cap;
//   2. a proxy killed mid-run (RunningProxy.crash: no on_done, no release): the others get its slots once etcd
//      expires its lease (docs/fleet.md §0, §2: "Die and your slots come back");
//   3. etcd stopped mid-run: failure_mode closed → 503 contention for what needs etcd, granted slots still admit;
//      failure_mode open → at most local_cap_per_pod beyond the granted slots; no trap; exact to the cap afterwards.
// Each prints one "# fleet clients …" line. FLEET_CLIENTS_MS bounds the race (default 180 s; it ends at 10,200 upgrades).
//   node --import tsx --test --test-reporter=tap test/fleet/clients.test.ts
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type WebSocket from "ws";
import type { RunningProxy } from "../emulator/proxy/index.ts";
import { rng } from "../filter/support.ts";
import { etcdGate, startEtcd, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";
import { connectWs } from "../support/ws-client.ts";
import { delay, etcdSlots, sum } from "./support.ts";
import {
  addStats, statsAfterTick, byeAll, fillFleet, proxyTraps, startCountingPod, startFleetProxy, startLoad, stopWorker,
  type CountingPod, type FleetProxyOptions, type LoadCounts,
} from "./clients_support.ts";

const gate = etcdGate();
const CAP = 16;
const MIN_UPGRADES = 10_000;
// the race ends after MIN_UPGRADES (+ a margin) upgrades, ≈ 35 s on an idle 2-core machine; RACE_MS only bounds it
// on a loaded one (the test fails if 10,000 upgrades did not fit)
const RACE_MS = Number(process.env.FLEET_CLIENTS_MS ?? 180_000);
const ROUND_MS = 4000;
const CLIENTS = 48;
const TTL = 2;
const T = { skip: gate.skip, timeout: RACE_MS + 60_000 };

describe("fleet mode, real ws clients through three loopback proxies [etcd]", () => {
  let etcd: Etcd | undefined;
  let etcdPort = 0;
  let pod: CountingPod | undefined;
  const running = new Set<RunningProxy>();
  before(async () => {
    if (gate.skip) return;
    if (gate.failReason) throw new Error(gate.failReason);
    etcd = await startEtcd();
    etcdPort = Number(new URL(etcd.clientUrl).port);
    pod = await startCountingPod(CAP);
  });
  after(async () => {
    for (const p of running) await p.close().catch(() => {});
    await stopWorker();
    await pod?.close();
    await etcd?.stop();
  });

  async function one(i: number, prefix: string, o: Partial<FleetProxyOptions> = {}): Promise<RunningProxy> {
    assert.ok(pod);
    const p = await startFleetProxy({ name: `gw-${"abc"[i]}`, etcdPort, podPort: pod.port, prefix, cap: CAP, ...o });
    running.add(p);
    return p;
  }

  async function three(prefix: string, o: Partial<FleetProxyOptions> | Array<Partial<FleetProxyOptions>> = {}): Promise<RunningProxy[]> {
    const out: RunningProxy[] = [];
    for (let i = 0; i < 3; i++) out.push(await one(i, prefix, Array.isArray(o) ? o[i] : o));
    return out;
  }

  async function closeAll(ps: RunningProxy[]): Promise<void> {
    for (const p of ps) {
      running.delete(p);
      await p.close();
    }
    await waitFor(() => pod!.open() === 0, { timeoutMs: 5000, what: "the pod to see every socket closed" });
  }

  async function openOne(p: RunningProxy): Promise<WebSocket> {
    const o = await connectWs(p.wsUrl("/ws"), { timeoutMs: 8000 });
    if (o.kind !== "open") assert.fail(`an upgrade through a proxy with free slots: ${JSON.stringify(o).slice(0, 200)}`);
    return o.ws;
  }

  function traps(ps: RunningProxy[]): string[] {
    return ps.flatMap((p, i) => proxyTraps(p, `gw-${"abc"[i]}`));
  }

  function add(into: LoadCounts | undefined, c: LoadCounts): LoadCounts {
    if (!into) return { ...c, refused: { ...c.refused }, errorSamples: [...c.errorSamples] };
    into.attempts += c.attempts;
    into.admitted += c.admitted;
    into.errors += c.errors;
    into.errorSamples.push(...c.errorSamples);
    into.clientMax = Math.max(into.clientMax, c.clientMax);
    for (const [k, v] of Object.entries(c.refused)) into.refused[k] = (into.refused[k] ?? 0) + v;
    return into;
  }

  test(`the race: ≥ ${MIN_UPGRADES} upgrades through three proxies, 0 over-admissions of the global cap (${CAP})`, T, async () => {
    assert.ok(etcd && pod);
    const rand = rng(2026);
    const t0 = Date.now();
    let rounds = 0, maxOpen = 0, over = 0, maxEtcd = 0, capRounds = 0;
    let total: LoadCounts | undefined;
    const stats: Record<string, number> = {};
    const trapped: string[] = [];
    while ((total?.attempts ?? 0) < MIN_UPGRADES + 200 && Date.now() - t0 < RACE_MS) {
      rounds++;
      const prefix = `/t-clients/race/${rounds}/`; // fresh: the grant race runs again each round
      const ps = await three(prefix, { fleet: { block: 1 + Math.floor(rand() * 4) } });
      pod.reset(CAP);
      const hold = 20 + Math.floor(rand() * 100);
      const load = startLoad({ targets: ps, clients: CLIENTS, seed: rounds, holdMin: 0, holdMax: 2 * hold });
      const until = Date.now() + ROUND_MS;
      for (let i = 0; i < 100 && Date.now() < until; i++) { // etcd's granted sum, sampled while the race runs
        maxEtcd = Math.max(maxEtcd, sum(await etcdSlots(etcd.clientUrl, prefix)));
        await delay(100);
      }
      const c = await load.stop();
      total = add(total, c);
      const slots = sum(await etcdSlots(etcd.clientUrl, prefix));
      maxEtcd = Math.max(maxEtcd, slots);
      assert.ok(slots <= CAP, `round ${rounds}: etcd granted ${slots} > ${CAP}`);
      maxOpen = Math.max(maxOpen, pod.seen.max);
      over += pod.seen.over;
      if (pod.seen.max === CAP) capRounds++;
      await statsAfterTick(); // the round's counts are in Envoy's stats
      for (const p of ps) await addStats(stats, p);
      trapped.push(...traps(ps));
      await closeAll(ps);
    }
    assert.ok(total);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const refused = Object.values(total.refused).reduce((a, b) => a + b, 0);
    const details = Object.fromEntries(Object.entries(stats).filter(([k]) => k.startsWith("ws_governor_")));
    const accepted = stats.accepted_total ?? 0;
    const calls = Object.fromEntries(Object.entries(stats).filter(([k]) => k.startsWith("fleet_")));
    console.log(`# fleet clients race: ${total.attempts} upgrades in ${rounds} rounds (${secs} s, ${CLIENTS} clients, ` +
      `3 proxies × 2 workers), ${total.admitted} admitted, ${refused} refused ${JSON.stringify(total.refused)} by detail ` +
      `${JSON.stringify(details)}, ${total.errors} errors; max open at the pod ${maxOpen} / cap ${CAP} (reached in ` +
      `${capRounds}/${rounds} rounds; clients saw at most ${total.clientMax}), over-admissions ${over}; max etcd granted ` +
      `${maxEtcd}; etcd ${JSON.stringify(calls)}`);
    assert.deepEqual(trapped.slice(0, 5), [], "no trap");
    assert.equal(over, 0, "over-admissions of the global cap (sockets open at the pod above the cap)");
    assert.ok(maxOpen <= CAP && maxEtcd <= CAP);
    assert.ok(total.attempts >= MIN_UPGRADES, `only ${total.attempts} upgrades raced in ${secs} s`);
    assert.equal(total.errors, 0, `client errors: ${total.errorSamples.join("; ")}`);
    assert.equal(maxOpen, CAP, "the cap was reached");
    assert.ok((stats.ws_governor_pod_full ?? 0) > 0, "the fleet cap refused upgrades");
    assert.equal(refused, Object.values(details).reduce((a, b) => a + b, 0), "every 503 is a counted refusal");
    assert.equal(accepted, total.admitted, "every admission the filters counted reached a client (and no other)");
  });

  test(`a proxy killed mid-run (no release): the others get its slots once etcd expires its lease (TTL ${TTL} s)`, T, async () => {
    assert.ok(etcd && pod);
    const prefix = "/t-clients/kill/";
    const o = { fleet: { lease_ttl_seconds: TTL, block: 2 } };
    // the victim's holder key (its lease): the key that appears when it starts and takes an upgrade after the others
    const ps = [await one(0, prefix, o), await one(1, prefix, o)];
    for (const p of ps) await byeAll([await openOne(p)]);
    const others = new Set((await etcdSlots(etcd.clientUrl, prefix)).keys());
    ps.push(await one(2, prefix, o));
    await byeAll([await openOne(ps[2])]);
    const url = etcd.clientUrl;
    const victimKey = await waitFor(async () =>
      [...(await etcdSlots(url, prefix)).keys()].find((k) => !others.has(k)), { timeoutMs: 5000, what: "the victim's key" });
    const alive = [...ps];
    pod.reset(CAP);
    const load = startLoad({ targets: alive, clients: CLIENTS, seed: 7, holdMin: 100, holdMax: 500 });
    await waitFor(() => pod!.open() === CAP, { timeoutMs: 10_000, what: "the fleet to fill the cap" });
    await delay(500);
    const victim = ps[2];
    const killedAt = Date.now();
    alive.splice(2, 1);
    load.setTargets(alive);
    await victim.crash(); // the process dies: no on_done, no release, no revoke
    running.delete(victim);
    const slots = await etcdSlots(etcd.clientUrl, prefix); // the victim's value can no longer change
    const gV = slots.get(victimKey) ?? 0;
    const limit = CAP - gV; // what the survivors can hold while the victim's lease lives
    assert.ok(gV > 0 && sum(slots) <= CAP, `the victim held ${gV} of ${sum(slots)} granted slots`);
    // the survivors' sockets at the pod (not a late upgrade the victim had admitted before it died): more than
    // `limit` means the victim's slots are in use
    const survivors = () => pod!.openThrough(alive);
    let reclaimedAt = 0;
    pod.onOpen = () => { if (!reclaimedAt && survivors() > limit) reclaimedAt = Date.now(); };
    let keyGoneAt = 0;
    let presentAt = 0; // the latest read (its start) that still found the victim's key
    for (let i = 0; i < 400 && (!keyGoneAt || !reclaimedAt) && Date.now() - killedAt < TTL * 1000 + 8000; i++) {
      const sent = Date.now();
      if (keyGoneAt) await delay(25);
      else if ((await etcdSlots(etcd.clientUrl, prefix)).has(victimKey)) presentAt = sent;
      else keyGoneAt = Date.now();
      await delay(25);
    }
    pod.onOpen = undefined;
    const c = await load.stop();
    const after = await etcdSlots(etcd.clientUrl, prefix);
    const trapped = traps(ps);
    const back = reclaimedAt ? reclaimedAt - killedAt : -1;
    const gone = keyGoneAt ? keyGoneAt - killedAt : -1;
    console.log(`# fleet clients kill: victim held ${gV} of cap ${CAP}; its etcd key gone ${gone} ms and its slots in use ` +
      `through the others ${back} ms after the kill (lease TTL ${TTL} s); ${c.attempts} upgrades, ${c.admitted} admitted, ` +
      `refused ${JSON.stringify(c.refused)}, ${c.errors} client errors (the victim's sockets), max open ${pod.seen.max}, ` +
      `over-admissions ${pod.seen.over}; etcd afterwards ${JSON.stringify(Object.fromEntries(after))}`);
    assert.deepEqual(trapped, [], "no trap");
    assert.equal(pod.seen.over, 0, "over-admissions of the global cap");
    assert.ok(keyGoneAt > 0, "the victim's key never left etcd");
    assert.ok(back >= 0, "the victim's slots were never used by the others");
    assert.ok(presentAt <= reclaimedAt, `slots reused ${back} ms after the kill while etcd still held the victim's key ` +
      `(read at ${presentAt - killedAt} ms)`);
    // docs/fleet.md §0: a dead process's slots come back only when etcd expires its lease: at most TTL after its last
    // keepalive (sent every TTL/3), found by etcd's expiry check (every 500 ms); then the next wait of a survivor
    // grants them (one chain, ≤ 2 × call_timeout_ms). 3 s covers the checks and the chain on a loaded machine.
    assert.ok(back <= TTL * 1000 + 3000, `slots back only after ${back} ms (TTL ${TTL} s + 3 s)`);
    assert.ok(!after.has(victimKey) && sum(after) <= CAP, "the victim holds nothing; the sum is within the cap");
    await closeAll(alive);
  });

  test("etcd stopped mid-run: closed → 503 contention beyond the granted slots, which still admit; open → within " +
    "local_cap_per_pod; no trap; exact to the cap after etcd returns", T, async () => {
    assert.ok(etcd && pod);
    const prefix = "/t-clients/down/";
    const fleet = { lease_ttl_seconds: 10, call_timeout_ms: 300, block: 2 };
    const ps = await three(prefix, [
      { plugin: { failure_mode: "closed" }, fleet },
      { plugin: { failure_mode: "closed" }, fleet },
      { plugin: { failure_mode: "open" }, fleet: { ...fleet, local_cap_per_pod: 1 } },
    ]);
    pod.reset(CAP);
    const held: WebSocket[] = []; // one socket per proxy first, kept through the drill: every proxy holds granted slots
    for (const p of ps) held.push(await openOne(p));
    const load = startLoad({ targets: ps, clients: CLIENTS, seed: 11, holdMin: 50, holdMax: 300, backoffMs: 10 });
    await waitFor(() => pod!.open() === CAP, { timeoutMs: 10_000, what: "the fleet to fill the cap" });
    await delay(500);
    const granted = await etcdSlots(etcd.clientUrl, prefix);
    const before: Record<string, number>[] = [];
    for (const p of ps) { const s: Record<string, number> = {}; await addStats(s, p); before.push(s); }
    pod.reset(CAP + 1); // while etcd is down: the "open" proxy may admit 1 beyond its granted slots (local_cap_per_pod)
    const acceptedBefore = pod.seen.accepted;
    await etcd.halt();
    const downAt = Date.now();
    let downFor = 0;
    let acceptedDown = 0, maxDown = 0, overDown = 0;
    const duringDown: Record<string, number>[] = [];
    try {
      await delay(2500);
      acceptedDown = pod.seen.accepted - acceptedBefore; // read while etcd is still down
      maxDown = pod.seen.max;
      overDown = pod.seen.over;
      for (const p of ps) { const s: Record<string, number> = {}; await addStats(s, p); duringDown.push(s); }
    } finally {
      downFor = Date.now() - downAt;
      await etcd.restart();
    }
    const d = (i: number, k: string) => (duringDown[i][k] ?? 0) - (before[i][k] ?? 0);
    const admitsDown = [0, 1, 2].map((i) => d(i, "accepted_total"));
    const c = await load.stop();
    await byeAll(held);
    await waitFor(() => pod!.open() === 0, { timeoutMs: 5000, what: "every socket closed" });
    // etcd is back (the leases survived): one socket at a time, round robin, until every proxy refuses twice in a row
    pod.reset(CAP);
    const fill = await fillFleet(ps, 2);
    const atCap = pod.open();
    const rest = await fillFleet(ps, 2); // full: each proxy refuses twice more, nothing opens
    const slots = sum(await etcdSlots(etcd.clientUrl, prefix));
    await byeAll([...fill.open, ...rest.open]);
    const trapped = traps(ps);
    console.log(`# fleet clients etcd down ${downFor} ms: admitted meanwhile ${acceptedDown} (per proxy ${admitsDown.join("/")}; ` +
      `granted ${[...granted.values()].join("/")}), contention ${[0, 1, 2].map((i) => d(i, "ws_governor_contention")).join("/")}, ` +
      `fleet_unavailable ${[0, 1, 2].map((i) => d(i, "fleet_unavailable_total")).join("/")}, open admits ` +
      `${d(2, "fleet_open_admits_total")}, max open ${maxDown} (≤ cap + 1), over ${overDown}; ${c.attempts} upgrades in all; ` +
      `after: ${fill.open.length} open / cap ${CAP}, refusals ${JSON.stringify(fill.details)} in ${fill.attempts} attempts, then ${JSON.stringify(rest.details)}, ` +
      `etcd granted ${slots}`);
    assert.deepEqual(trapped, [], "no trap");
    assert.equal(overDown, 0, "no more than cap + local_cap_per_pod of the open proxy while etcd was down");
    assert.ok(admitsDown[0] + admitsDown[1] > 0, "the closed proxies still admit within their granted slots");
    for (const i of [0, 1]) {
      assert.ok(d(i, "ws_governor_contention") > 0, `closed proxy ${i}: 503 contention while etcd is down`);
      assert.ok(d(i, "fleet_unavailable_total") > 0 && d(i, "ws_governor_contention") >= d(i, "fleet_unavailable_total"),
        "counted in fleet_unavailable_total");
      assert.equal(d(i, "fleet_open_admits_total"), 0);
    }
    assert.ok(d(2, "fleet_open_admits_total") > 0, "the open proxy admitted beyond its granted slots");
    assert.equal(fill.open.length, CAP, "exactly the cap admitted across the fleet after etcd returned");
    assert.equal(atCap, CAP, "the pod sees exactly the cap");
    assert.deepEqual(Object.keys(fill.details).filter((k) => k !== "503 ws_governor_contention"), ["503 ws_governor_pod_full"],
      "the fill was refused for the cap (contention, retried, only while etcd calls recover)");
    assert.equal(rest.open.length, 0, "nothing beyond the cap");
    assert.deepEqual(rest.details, { "503 ws_governor_pod_full": 6 }, "the rest refused pod_full");
    assert.ok(slots <= CAP && slots >= CAP, `etcd granted ${slots}`);
    await closeAll(ps);
  });
});
