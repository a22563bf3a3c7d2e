// Behaviours 4 and 7: exact admission across racing worker VMs (interleavings forced with the emulator's shared-data
// hooks), contention and failure_mode, leases and reclaim of a trapped VM's shares (corrupt values: corrupt.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  H101, bump, conn, finishReply, gauge, isContinue, leases, makeEnv, open, podLedgers, podTotal, reply, rng, upgradeHeaders,
  ok,
} from "./support.ts";
import type { FilterStream } from "./support.ts";

const NO_RATE = { rate_limit: null };


// ------------------------------------------------------------------ B4 pod cap

test("B4 per-pod cap inbound: reserve at request headers, confirm at 101, release if not 101; 503 ws_governor_pod_full", () => {
  const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 2 } });
  try {
    const a = e.h.newStream(0, conn());
    ok(isContinue(a.decodeHeaders(upgradeHeaders(), false)));
    assert.equal(podTotal(e.proc, "pod-a"), 1, "reserved at request headers");
    assert.equal(gauge(e), 1, "the gauge follows pod slots: a reservation awaiting its 101 holds one");
    const b = e.h.newStream(1, conn());
    ok(isContinue(b.decodeHeaders(upgradeHeaders(), false)));
    const c = e.h.newStream(0, conn());
    const rep = reply(c.decodeHeaders(upgradeHeaders(), false));
    finishReply(c);
    assert.equal(rep.status, 503);
    assert.equal(rep.details, "ws_governor_pod_full");
    ok(isContinue(a.encodeHeaders(H101, false)));
    assert.equal(gauge(e), 2, "a confirmed at the 101, b still reserved");
    assert.equal(e.stat("accepted_total"), 1, "accepted counts the 101 only");
    ok(isContinue(b.encodeHeaders([[":status", "502"]], true)));
    assert.equal(gauge(e), 1, "b's slot given back at its non-101");
    assert.equal(podTotal(e.proc, "pod-a"), 1, "released at the non-101");
    const d = open(e.h, 1);
    ok(d.admitted, "the slot given back by the non-101 is reusable");
    b.complete();
    a.complete();
    d.s.complete();
    assert.equal(podTotal(e.proc), 0);
    assert.equal(gauge(e), 0);
    assert.equal(e.stat("rejected_total.reason.pod_full"), 1);
  } finally {
    e.close();
  }
});

test("B4 per-pod cap upstream mode: pod = upstream.address, reserved at the 101, full → 503 from on_response_headers", () => {
  const e = makeEnv({ config: { ...NO_RATE, mode: "upstream", max_connections_per_pod: 2, max_pods: 8 } });
  try {
    const up = (w: number, pod: string) => {
      const s = e.h.newStream(w, conn());
      ok(isContinue(s.decodeHeaders(upgradeHeaders([["x-pod", "evil"]]), false)));
      assert.equal(podTotal(e.proc), podTotal(e.proc), "");
      s.setUpstream({ address: pod, port: 8080, clusterName: "ws" });
      return { s, r: s.encodeHeaders(H101, false) };
    };
    const before = podTotal(e.proc);
    const s0 = e.h.newStream(0, conn());
    ok(isContinue(s0.decodeHeaders(upgradeHeaders(), false)));
    assert.equal(podTotal(e.proc), before, "nothing reserved at request headers in upstream mode");
    s0.reset("client");
    const a1 = up(0, "10.0.1.1"), a2 = up(1, "10.0.1.1"), b1 = up(0, "10.0.1.2");
    for (const x of [a1, a2, b1]) ok(isContinue(x.r));
    const a3 = up(1, "10.0.1.1");
    const rep = reply(a3.r);
    assert.equal(rep.status, 503, "the client gets the 503 instead of the 101 (§7.3)");
    assert.equal(rep.details, "ws_governor_pod_full");
    finishReply(a3.s);
    assert.equal(podTotal(e.proc, "10.0.1.1:8080"), 2);
    assert.equal(podTotal(e.proc, "10.0.1.2:8080"), 1);
    assert.equal(gauge(e), 3);
    for (const x of [a1, a2, b1]) x.s.complete();
    assert.equal(podTotal(e.proc), 0);
    assert.equal(gauge(e), 0);
    assert.equal(e.stat("orphan_releases_total"), 0);
  } finally {
    e.close();
  }
});

interface RaceResult { attempts: number; admitted: number; maxOpen: number; nested: number; bumps: number; contention: number }

/** Random opens/closes on 4 worker VMs. Inside every proxy_set_shared_data on a pod key, the hook either runs a whole
 *  operation of another worker first (a real interleaving between read and CAS write) or makes a foreign write (a
 *  pure conflict). After every top-level step: admitted-and-open ≤ cap, and ledger = open = gauge. */
function race(mode: "inbound" | "upstream", attempts: number, cap: number, seed: number): RaceResult {
  const workers = 4;
  const e = makeEnv({ concurrency: workers, config: { ...NO_RATE, mode, max_connections_per_pod: cap, ...(mode === "upstream" ? { max_pods: 4 } : {}) } });
  const rand = rng(seed);
  const openStreams: Array<{ s: FilterStream; worker: number }> = [];
  const out: RaceResult = { attempts: 0, admitted: 0, maxOpen: 0, nested: 0, bumps: 0, contention: 0 };
  const pod = mode === "upstream" ? "10.0.2.1:8080" : "pod-a";
  let depth = 0;

  const busy = new Set<number>(); // workers inside a VM call right now: never re-entered
  const countContention = (r: ReturnType<FilterStream["decodeHeaders"]>) => {
    if (reply(r).details === "ws_governor_contention") out.contention++;
  };
  const attempt = (worker: number) => {
    out.attempts++;
    const s = e.h.newStream(worker, conn(`10.8.${out.attempts & 255}.1:1`));
    const r = s.decodeHeaders(upgradeHeaders(), false);
    if (r.kind !== "continue") { countContention(r); finishReply(s); return; }
    if (mode === "upstream") s.setUpstream({ address: "10.0.2.1", port: 8080 });
    const r2 = s.encodeHeaders(H101, false);
    if (r2.kind !== "continue") { countContention(r2); finishReply(s); return; }
    out.admitted++;
    openStreams.push({ s, worker });
    out.maxOpen = Math.max(out.maxOpen, openStreams.length);
    ok(openStreams.length <= cap, `admitted ${openStreams.length} > cap ${cap}`);
  };
  const closeOne = () => {
    const i = openStreams.findIndex((x) => !busy.has(x.worker) && rand() < 0.5);
    if (i < 0) return;
    const [x] = openStreams.splice(i, 1);
    busy.add(x.worker);
    try {
      if (rand() < 0.5) x.s.complete();
      else x.s.reset("downstream_remote_disconnect");
    } finally { busy.delete(x.worker); }
  };
  const step = () => {
    const free = [0, 1, 2, 3].filter((w) => !busy.has(w));
    if (free.length === 0) return;
    const w = free[Math.floor(rand() * free.length)];
    if (rand() < 0.55) {
      busy.add(w);
      try { attempt(w); } finally { busy.delete(w); }
    } else closeOne();
  };

  e.proc.sharedData.beforeSet = (_vmId, key) => {
    if (!key.startsWith("wsg:pod:")) return;
    const x = rand();
    if (depth < 2 && x < 0.3) {
      depth++;
      out.nested++;
      try { step(); } finally { depth--; }
    } else if (x < 0.55) {
      out.bumps++;
      bump(e, key);
    }
  };
  try {
    while (out.attempts < attempts) {
      step();
      if (depth === 0 && rand() < 0.02) e.proc.advance(250); // ticks (heartbeats, pending releases) in between
      const total = podTotal(e.proc, pod);
      ok(total <= cap, `ledger ${total} > cap ${cap}`);
      assert.equal(total, openStreams.length, `ledger ${total} ≠ open ${openStreams.length} after ${out.attempts} attempts`);
      assert.equal(gauge(e), openStreams.length, "gauge = open");
    }
    e.proc.sharedData.beforeSet = undefined;
    for (const x of openStreams.splice(0)) x.s.complete();
    e.proc.advance(2000);
    assert.equal(podTotal(e.proc), 0, "final ledger exact");
    assert.equal(gauge(e), 0);
    assert.equal(e.stat("orphan_releases_total"), 0);
    assert.equal(e.stat("accepted_total"), out.admitted);
    ok(e.stat("cas_retries_total") > 0);
    assert.equal(e.stat("rejected_total.reason.contention"), out.contention);
    return out;
  } finally {
    e.close();
  }
}

test("B4 per-pod cap EXACT under racing VMs (inbound): 4 workers, forced CAS conflicts and interleavings, 10k attempts", () => {
  const r = race("inbound", 10_000, 25, 0xc0ffee);
  assert.equal(r.maxOpen, 25, `the cap was reached (${JSON.stringify(r)})`);
  ok(r.nested > 1000 && r.bumps > 1000, JSON.stringify(r));
});

test("B4 per-pod cap EXACT under racing VMs (upstream mode, reserved at the 101): 4 workers, 4k attempts", () => {
  const r = race("upstream", 4000, 10, 0xbadcab);
  assert.equal(r.maxOpen, 10, JSON.stringify(r));
  ok(r.nested > 300, JSON.stringify(r));
});

test("B4 contention exhaustion: failure_mode closed → 503 ws_governor_contention (deny); open → admitted (allow)", () => {
  for (const fm of ["closed", "open"] as const) {
    const e = makeEnv({ config: { ...NO_RATE, failure_mode: fm, cas_max_attempts: 3 } });
    try {
      let sets = 0;
      e.proc.sharedData.beforeSet = (_v, key) => { if (key.startsWith("wsg:pod:")) { sets++; bump(e, key); } };
      const o = open(e.h, 0);
      e.proc.sharedData.beforeSet = undefined;
      assert.equal(sets, 3, "exactly cas_max_attempts writes were tried");
      ok(e.stat("cas_retries_total") >= 2);
      if (fm === "closed") {
        assert.equal(o.admitted, false);
        const rep = reply(o.r);
        assert.equal(rep.status, 503);
        assert.equal(rep.details, "ws_governor_contention");
        finishReply(o.s);
        assert.equal(e.stat("contention_decisions_total.decision.deny"), 1);
        assert.equal(e.stat("contention_decisions_total.decision.allow"), 0);
        assert.equal(e.stat("rejected_total.reason.contention"), 1);
      } else {
        ok(o.admitted);
        assert.equal(e.stat("contention_decisions_total.decision.allow"), 1);
        assert.equal(e.stat("contention_decisions_total.decision.deny"), 0);
        o.s.complete();
      }
      assert.equal(podTotal(e.proc), 0, "nothing was written");
      assert.equal(gauge(e), 0);
      assert.equal(e.stat("orphan_releases_total"), 0);
    } finally {
      e.close();
    }
  }
});

test("B4 a release whose CAS attempts run out is retried on the next tick (no slot lost)", () => {
  const e = makeEnv({ config: { ...NO_RATE, max_connections_per_pod: 1, cas_max_attempts: 2 } });
  try {
    const o = open(e.h, 0);
    ok(o.admitted);
    e.proc.sharedData.beforeSet = (_v, key) => { if (key.startsWith("wsg:pod:")) bump(e, key); };
    o.s.complete();
    e.proc.sharedData.beforeSet = undefined;
    assert.equal(podTotal(e.proc), 1, "release could not be written yet");
    e.proc.advance(1000);
    assert.equal(podTotal(e.proc), 0, "released by the tick");
    ok(open(e.h, 1).admitted);
  } finally {
    e.close();
  }
});

// ------------------------------------------------------------------ B7 leases

test("B7 leases: a trapped worker's shares are reclaimed by another VM within (lease_ticks + 1)·tick_ms", () => {
  const e = makeEnv({ concurrency: 3, config: { ...NO_RATE, max_connections_per_pod: 10, tick_ms: 1000, lease_ticks: 3 } });
  try {
    e.proc.advance(400);
    const keep = [open(e.h, 0), open(e.h, 2)];
    const doomed = [open(e.h, 1), open(e.h, 1), open(e.h, 1)];
    for (const o of [...keep, ...doomed]) ok(o.admitted);
    doomed[0].s.decodeData(new Uint8Array([0x81, 0]), false);
    assert.equal(gauge(e), 5);
    assert.equal(podTotal(e.proc), 5);
    const vmIds = [...podLedgers(e.proc).values()].find((l) => l.name === "pod-a")!.shares;
    assert.equal(vmIds.size, 3);
    // trap worker 1 mid-traffic
    e.h.trapOnNextHostCall(1);
    const t = e.h.newStream(1, conn());
    const tr = t.decodeHeaders(upgradeHeaders(), false);
    ok(e.h.vmFailed(1), "worker 1 trapped");
    assert.equal(tr.kind, "localReply", "Envoy 1.36 answers 503 wasm_fail_stream");
    for (const d of doomed) d.s.reset("vm failed"); // the host makes no more calls into the failed VM
    const reclaimed0 = e.stat("reclaimed_total");
    // another VM saw the dead VM's lease value unchanged over lease_ticks of its own beats: within
    // (lease_ticks + 1) tick periods of the trap
    e.proc.advance(4000);
    assert.equal(podTotal(e.proc), 2, "the dead VM's 3 shares were removed");
    assert.equal(e.stat("reclaimed_total") - reclaimed0, 3);
    assert.equal(gauge(e), 2, "gauge corrected");
    ok(e.logs.some((l) => l.level === "warn" && /reclaimed 3 connection\(s\) from \d+ silent VM\(s\)/.test(l.message)));
    // later ticks do not reclaim again
    e.proc.advance(10_000);
    assert.equal(e.stat("reclaimed_total") - reclaimed0, 3);
    assert.equal(podTotal(e.proc), 2);
    for (const k of keep) k.s.complete();
    assert.equal(podTotal(e.proc), 0);
    assert.equal(gauge(e), 0);
    assert.equal(e.stat("orphan_releases_total"), 0);
  } finally {
    e.close();
  }
});

test("B7 leases: reclaiming a trapped worker's reservation (before its 101) keeps the gauge exact and never negative",
  () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 10 } });
  try {
    const confirmed = open(e.h, 1);
    const reserved = e.h.newStream(1, conn());
    ok(isContinue(reserved.decodeHeaders(upgradeHeaders(), false)));
    assert.equal(podTotal(e.proc), 2);
    assert.equal(gauge(e), 2, "confirmed and reserved slots are both held");
    e.h.trapOnNextHostCall(1);
    e.h.newStream(1, conn()).decodeHeaders(upgradeHeaders(), false);
    ok(e.h.vmFailed(1));
    confirmed.s.reset("vm failed");
    reserved.reset("vm failed");
    e.proc.advance(4000);
    assert.equal(podTotal(e.proc), 0, "confirmed and reserved shares of the dead VM removed");
    assert.equal(e.stat("reclaimed_total"), 2);
    assert.equal(gauge(e), 0, "only the confirmed connection was in the gauge");
  } finally {
    e.close();
  }
});

test("B7 leases: a VM declared dead that releases later is an orphan release, never a negative count", () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 10 } });
  try {
    const a = open(e.h, 1), b = open(e.h, 0);
    ok(a.admitted && b.admitted);
    // worker 1 stays alive but its heartbeats never land (every write to the lease table conflicts)
    e.proc.sharedData.beforeSet = (_v, key, vm) => { if (key === "wsg:vms" && vm === "worker-1") bump(e, key); };
    e.proc.advance(5000);
    e.proc.sharedData.beforeSet = undefined;
    assert.equal(e.stat("reclaimed_total"), 1, "worker 1's share was reclaimed");
    assert.equal(podTotal(e.proc), 1);
    a.s.complete(); // worker 1 releases a share that no longer exists
    assert.equal(e.stat("orphan_releases_total"), 1);
    assert.equal(podTotal(e.proc), 1, "b's share untouched, nothing negative");
    const l = [...podLedgers(e.proc).values()].find((x) => x.name === "pod-a")!;
    ok([...l.shares.values()].every((c) => c > 0 && c < 1000));
    e.proc.advance(1000);
    ok(leases(e.proc).size >= 3, "worker 1 re-registered its lease");
    b.s.complete();
    assert.equal(podTotal(e.proc), 0);
  } finally {
    e.close();
  }
});

test("B7 leases: gauge stays right when a VM declared dead later closes its connections", () => {
  const e = makeEnv({ concurrency: 2, config: { ...NO_RATE, max_connections_per_pod: 10 } });
  try {
    const a = open(e.h, 1), b = open(e.h, 0);
    e.proc.sharedData.beforeSet = (_v, key, vm) => { if (key === "wsg:vms" && vm === "worker-1") bump(e, key); };
    e.proc.advance(5000);
    e.proc.sharedData.beforeSet = undefined;
    a.s.complete();
    assert.equal(gauge(e), 1);
    b.s.complete();
    assert.equal(gauge(e), 0);
  } finally {
    e.close();
  }
});
