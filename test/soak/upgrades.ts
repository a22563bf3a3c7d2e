// Soak part 1 (issue 13): upgrade attempts on 4 racing worker VMs of the release module, with random closes, stream
// resets, upstream failures (non-101, router 503, resets before the response), forced CAS conflicts (the emulator's
// shared-data beforeSet hook rewrites the value in flight so its cas changes) and trapped VMs (FAIL_RELOAD brings a
// fresh VM; the dead VM's shares come back through the lease reclaim) and lease tables overwritten with garbage (the
// first VM to beat starts a fresh one, the others register again). Invariants, counted, never skipped:
//   * at every decision: admitted-and-open ≤ cap per pod and per client (over-admissions);
//   * at checkpoints: the active_connections gauge = pod ledger total = the model's open slots, client ledger total =
//     the model's client slots (drift);
//   * at the end, after every stream closed: gauge, pod and client ledgers all 0, no orphan release, no host defect.
import {
  H101, VMID, clientTotal, conn, finishReply, isContinue, makeEnv, podTotal, rng, upgradeHeaders,
  type Env, type FilterStream, type StepResult,
} from "../filter/support.ts";

export interface UpgradeSummary {
  mode: "inbound" | "upstream";
  attempts: number;
  admitted: number;       // passed the request headers
  rejected: number;       // local reply at the request headers (pod/client full, contention, failed VM)
  upgraded: number;       // 101 reached the client
  refusedAt101: number;   // upstream mode: pod full at the 101
  upstreamFailures: number;
  closes: number;
  resets: number;
  forcedConflicts: number;
  casRetries: number;
  traps: number;
  leaseResets: number;    // times the lease table was overwritten with garbage
  reclaimed: number;
  maxOpenPerPod: number;
  maxOpenPerClient: number;
  decisions: number;      // admission decisions checked against the caps
  checkpoints: number;
  overAdmissions: number;
  drift: number;
  leftover: number;       // non-zero counts after the final drain
  ms: number;
  violations: string[];   // first few messages
}

interface Live { s: FilterStream; worker: number; client: string; pod: string; upgraded: boolean }

const WORKERS = 4;
const CLIENTS = 8;
const TICK_MS = 1000;
const LEASE_TICKS = 3;

/** `attempts` upgrade attempts in one emulated Envoy process; deterministic for a seed. */
export function soakUpgrades(mode: "inbound" | "upstream", attempts: number, seed: number, traps = 2): UpgradeSummary {
  const podCap = mode === "inbound" ? 24 : 8;
  const clientCap = 6;
  const pods = mode === "inbound" ? ["pod-a"] : ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"];
  const rand = rng(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const e: Env = makeEnv({
    concurrency: WORKERS,
    failurePolicy: "FAIL_RELOAD",
    process: { random: rand, defects: "record" },
    config: {
      mode, rate_limit: null, max_connections_per_pod: podCap, max_connections_per_client: clientCap, client_buckets: 64,
      cas_max_attempts: 16, tick_ms: TICK_MS, lease_ticks: LEASE_TICKS, ...(mode === "upstream" ? { max_pods: 16 } : {}),
    },
  });
  const out: UpgradeSummary = {
    mode, attempts: 0, admitted: 0, rejected: 0, upgraded: 0, refusedAt101: 0, upstreamFailures: 0, closes: 0, resets: 0,
    forcedConflicts: 0, casRetries: 0, traps: 0, leaseResets: 0, reclaimed: 0, maxOpenPerPod: 0, maxOpenPerClient: 0, decisions: 0,
    checkpoints: 0, overAdmissions: 0, drift: 0, leftover: 0, ms: 0, violations: [],
  };
  const violation = (kind: "overAdmissions" | "drift" | "leftover", msg: string) => {
    out[kind]++;
    if (out.violations.length < 10) out.violations.push(`${mode} attempt ${out.attempts}: ${msg}`);
  };
  // Forced conflicts: before a quarter of the ledger writes, another writer rewrites the same bytes (only the cas
  // changes), so the write in flight gets CasMismatch and the filter must re-read and decide again.
  let inHook = false;
  e.proc.sharedData.beforeSet = (vmId, key) => {
    if (inHook || vmId !== VMID || !(key.startsWith("wsg:pod:") || key.startsWith("wsg:cli:"))) return;
    if (rand() < 0.25) {
      inHook = true;
      const cur = e.proc.sharedData.get(vmId, key);
      if (cur) { e.proc.sharedData.put(vmId, key, cur.value); out.forcedConflicts++; }
      inHook = false;
    }
  };

  // the model: what the filter must hold right now
  const live: Live[] = [];
  const podHeld = new Map<string, number>();     // pod → slots held (inbound: from the request headers; upstream: from the 101)
  const clientHeld = new Map<string, number>();  // client IP → slots held (from the request headers)
  let zombiesPod = 0, zombiesClient = 0;         // slots of a trapped VM, held until the lease reclaim
  const inc = (m: Map<string, number>, k: string, d: number) => m.set(k, (m.get(k) ?? 0) + d);
  const podSum = () => { let t = 0; for (const v of podHeld.values()) t += v; return t; };
  const checkCaps = (pod: string | null, client: string) => {
    out.decisions++;
    if (pod !== null) {
      const n = podHeld.get(pod) ?? 0;
      out.maxOpenPerPod = Math.max(out.maxOpenPerPod, n);
      if (n > podCap) violation("overAdmissions", `pod ${pod}: ${n} open > cap ${podCap}`);
    }
    const c = clientHeld.get(client) ?? 0;
    out.maxOpenPerClient = Math.max(out.maxOpenPerClient, c);
    if (c > clientCap) violation("overAdmissions", `client ${client}: ${c} open > cap ${clientCap}`);
  };
  const drop = (i: number): Live => {
    const l = live[i];
    live[i] = live[live.length - 1];
    live.pop();
    inc(clientHeld, l.client, -1);
    if (mode === "inbound" || l.upgraded) inc(podHeld, l.pod, -1);
    return l;
  };
  const checkpoint = (where: string) => {
    out.checkpoints++;
    const pt = podTotal(e.proc), ct = clientTotal(e.proc), g = e.stat("active_connections");
    const want = podSum() + zombiesPod;
    if (pt !== want) violation("drift", `${where}: pod ledgers ${pt} ≠ open ${want}`);
    if (g !== pt) violation("drift", `${where}: gauge ${g} ≠ pod ledgers ${pt}`);
    if (ct !== live.length + zombiesClient) violation("drift", `${where}: client ledgers ${ct} ≠ open ${live.length + zombiesClient}`);
  };

  const attempt = () => {
    out.attempts++;
    const w = pick(WORKERS);
    const ip = `10.0.${pick(CLIENTS)}.1`;
    const s = e.h.newStream(w, conn(`${ip}:${1024 + pick(60000)}`));
    const r = s.decodeHeaders(upgradeHeaders(), false);
    if (!isContinue(r)) { out.rejected++; finish(s, r); return; }
    out.admitted++;
    const pod = mode === "inbound" ? "pod-a" : pods[pick(pods.length)];
    live.push({ s, worker: w, client: ip, pod, upgraded: false });
    inc(clientHeld, ip, 1);
    if (mode === "inbound") inc(podHeld, pod, 1);
    checkCaps(mode === "inbound" ? pod : null, ip);
  };
  const upgrade = (l: Live, i: number) => {
    if (mode === "upstream") l.s.setUpstream({ address: l.pod, port: 8080, clusterName: "ws" });
    const r = l.s.encodeHeaders(H101, false);
    if (!isContinue(r)) { // upstream mode, pod full: the client gets a 503 instead of the 101
      out.refusedAt101++;
      drop(i);
      finish(l.s, r);
      return;
    }
    l.upgraded = true;
    out.upgraded++;
    if (mode === "upstream") inc(podHeld, l.pod, 1);
    checkCaps(l.pod, l.client);
  };
  const end = (i: number) => {
    const l = drop(i);
    const how = rand();
    if (!l.upgraded) {
      out.upstreamFailures++;
      if (how < 0.3) { l.s.encodeHeaders([[":status", "502"]], true); l.s.complete(); }          // non-101
      else if (how < 0.6) {                                                                       // router 503
        l.s.encodeHeaders([[":status", "503"], ["content-length", "0"]], true,
          "upstream_reset_before_response_started{remote_connection_failure}");
        l.s.complete();
      } else if (how < 0.8) l.s.reset("upstream_reset_before_response_started{connection_termination}");
      else l.s.reset("downstream_remote_disconnect");                                             // client gave up
      return;
    }
    if (how < 0.5) { l.s.complete(); out.closes++; }
    else if (how < 0.8) { l.s.reset("downstream_remote_disconnect"); out.resets++; }
    else { l.s.encodeData(new Uint8Array([0x81, 0]), false); l.s.reset("upstream_reset"); out.resets++; }
  };
  const finish = (s: FilterStream, r: StepResult) => {
    if (r.kind === "localReply") finishReply(s);
    else if (!s.ended) s.reset("downstream_remote_disconnect");
  };
  /** Trap one worker VM mid-traffic; its streams die with it (no more calls into it), its slots stay in the ledgers
   *  until another VM reclaims them within (lease_ticks + 1) ticks; FAIL_RELOAD loads a fresh VM after the backoff. */
  const trap = () => {
    out.traps++;
    const w = pick(WORKERS);
    const before = e.stat("reclaimed_total");
    e.h.trapOnNextHostCall(w);
    const s = e.h.newStream(w, conn("10.9.9.9:1"));
    const r = s.decodeHeaders(upgradeHeaders(), false);
    if (!e.h.vmFailed(w)) violation("drift", `worker ${w} did not trap`);
    finish(s, r);
    let zp = 0;
    for (let i = live.length - 1; i >= 0; i--) {
      if (live[i].worker !== w) continue;
      const l = live[i];
      if (mode === "inbound" || l.upgraded) zp++;
      drop(i);
      zombiesClient++;
      l.s.reset("vm failed");
    }
    zombiesPod = zp;
    checkpoint("after the trap");
    e.proc.advance((LEASE_TICKS + 2) * TICK_MS);
    const got = e.stat("reclaimed_total") - before;
    if (got !== zp) violation("drift", `reclaimed ${got} ≠ the dead VM's ${zp} pod shares`);
    out.reclaimed += got;
    zombiesPod = 0;
    zombiesClient = 0;
    checkpoint("after the reclaim");
  };

  /** Something else overwrites the lease table: the VMs must neither reclaim live shares nor count them twice. */
  const corruptLeases = () => {
    out.leaseResets++;
    const before = e.stat("reclaimed_total");
    e.proc.sharedData.put(VMID, "wsg:vms", Uint8Array.of(0x57, 0xff, pick(256), pick(256)));
    e.proc.advance(2 * TICK_MS); // every VM beats twice: one fresh table, everyone registered again
    if (e.stat("reclaimed_total") !== before) violation("drift", "a lease-table reset reclaimed live shares");
    checkpoint("after a lease-table reset");
  };

  const t0 = performance.now();
  const trapEvery = traps > 0 ? Math.floor(attempts / (traps + 1)) : Infinity;
  let nextTrap = trapEvery;
  let nextReset = Math.floor(trapEvery / 2); // as many lease-table resets as traps, between them
  try {
    for (let n = 0; out.attempts < attempts && n < 4 * attempts; n++) {
      const r = rand();
      if (r < 0.5 || live.length === 0) attempt();
      else if (r < 0.75) {
        const i = pick(live.length);
        if (!live[i].upgraded) upgrade(live[i], i);
      } else end(pick(live.length));
      if (n % 1000 === 999) checkpoint(`step ${n}`);
      if (rand() < 0.002) e.proc.advance(250); // ticks: heartbeats, pending releases
      if (out.traps < traps && out.attempts >= nextTrap) { nextTrap += trapEvery; trap(); }
      if (out.leaseResets < traps && out.attempts >= nextReset) { nextReset += trapEvery; corruptLeases(); }
    }
    checkpoint("before the drain");
    while (live.length > 0) end(live.length - 1);
    e.proc.advance(2 * TICK_MS);
    const left: Array<[string, number]> = [
      ["pod ledgers", podTotal(e.proc)], ["client ledgers", clientTotal(e.proc)],
      ["active_connections", e.stat("active_connections")], ["orphan_releases_total", e.stat("orphan_releases_total")],
      ["host defects", e.proc.defects?.length ?? 0],
    ];
    for (const [k, v] of left) if (v !== 0) violation("leftover", `${k} = ${v} after the drain`);
    if (e.stat("accepted_total") !== out.upgraded) violation("drift", `accepted_total ${e.stat("accepted_total")} ≠ ${out.upgraded}`);
    out.casRetries = e.stat("cas_retries_total");
  } finally {
    out.ms = performance.now() - t0;
    e.close();
  }
  return out;
}
