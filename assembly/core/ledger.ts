// Exact admission over Envoy shared data: bounded compare-and-swap loops on per-VM ledgers. Pure.
// Every count is a set of per-VM shares (codec.ts Ledger), so the share of a VM that died can be removed by another.
// Outcomes are explicit; the caller maps Contention to the configured failure mode and counts `retries`.
import { SharedStore, ST_OK, ST_NOT_FOUND, ST_CAS_MISMATCH } from "./store";
import { Ledger, Leases, decodeLedger, encodeLedger, decodeLeases, encodeLeases, fnv1a, removeAt, beatGauge } from "./codec";

export const enum Outcome {
  Admitted = 0,   // share added (acquire) / share removed (release)
  OverLimit = 1,  // cap reached, nothing changed except the slot's rejected counter
  Contention = 2, // CAS attempts exhausted
  Error = 3,      // key missing (not provisioned) or a host error
  Orphan = 4,     // release found no share of this VM (already reclaimed): nothing to do, never negative
  NoSlot = 5,     // pod table full of other pods' live counts
}

export class Result {
  outcome: Outcome = Outcome.Error;
  retries: u32 = 0;
  slot: i32 = -1;      // pod slot used
  total: u64 = 0;      // count seen at decision time (after the change when admitted)
  corrupt: u32 = 0;    // values that did not decode and were treated as empty
  reset(): void { this.outcome = Outcome.Error; this.retries = 0; this.slot = -1; this.total = 0; this.corrupt = 0; }
}

/** Numbered keys: prefix + tag + n (the pod table, client buckets, rate buckets). */
export const POD_TAG = ":pod:";
export const CLIENT_TAG = ":cli:";
export const RATE_TAG = ":rl:";
export function slotKey(prefix: string, tag: string, n: u32): string { return prefix + tag + n.toString(); }
export function podKey(prefix: string, slot: i32): string { return slotKey(prefix, POD_TAG, u32(slot)); }
export function clientKey(prefix: string, bucket: u32): string { return slotKey(prefix, CLIENT_TAG, bucket); }
export function rateKey(prefix: string, bucket: u32): string { return slotKey(prefix, RATE_TAG, bucket); }
export function leaseKey(prefix: string): string { return prefix + ":vms"; }
export function seqKey(prefix: string): string { return prefix + ":seq"; }
export function drainKey(prefix: string): string { return prefix + ":drain"; }
export function fleetKey(prefix: string): string { return prefix + ":fleet"; }
/** fleet module: the slots etcd granted this process for its pod (inbound) or for a client bucket */
export function fleetGrantKey(prefix: string, pod: bool, bucket: u32): string {
  return prefix + (pod ? ":fgp" : ":fgc" + bucket.toString());
}  // fleet module: the process's etcd lease
/** fleet module, the global rate limit (core/fleet_rate.ts): the process's rate lease, its tick clock, a bucket's tokens */
export function rateLeaseKey(prefix: string): string { return prefix + ":frl"; }
export function clockKey(prefix: string): string { return prefix + ":fclk"; }
export function ratePoolKey(prefix: string, bucket: u32): string { return prefix + ":frt" + bucket.toString(); }
export function bucketOf(key: string, buckets: u32): u32 { return fnv1a(key) % buckets; }

const TAKEN: i32 = -2;

/** One slot: adds vm's share unless `cap` (0 = none) is reached; `force` (shadow mode) adds anyway.
 *  With `name` non-empty the slot belongs to that pod and may be claimed when free. Returns TAKEN when the slot
 *  belongs to another pod that still holds connections. */
function acquireOn(store: SharedStore, key: string, name: string, vm: u32, cap: u32, force: bool,
                   countReject: bool, attempts: u32, res: Result): i32 {
  for (let a: u32 = 0; a < attempts; a++) {
    if (a > 0) res.retries++;
    const st = store.get(key);
    if (st != ST_OK) { res.outcome = Outcome.Error; return 0; }
    let l = decodeLedger(store.valuePtr, store.valueLen);
    const cas = store.cas;
    store.done();
    if (l === null) { res.corrupt++; l = new Ledger(); }
    if (name.length > 0 && l.name != name) {
      if (l.name.length > 0 && l.total() > 0) return TAKEN;
      l.name = name;            // claim a free (or drained) slot
      l.rejected = 0;
      l.vms.length = 0;
      l.counts.length = 0;
    }
    const total = l.total();
    if (cap > 0 && total >= u64(cap) && !force) {
      res.total = total;
      if (!countReject) { res.outcome = Outcome.OverLimit; return 0; }
      l.rejected++;
      const w = store.set(key, encodeLedger(l), cas);
      if (w == ST_OK) { res.outcome = Outcome.OverLimit; return 0; }
      if (w == ST_CAS_MISMATCH) continue;
      res.outcome = Outcome.Error;
      return 0;
    }
    l.add(vm, 1);
    const w = store.set(key, encodeLedger(l), cas);
    if (w == ST_OK) { res.outcome = Outcome.Admitted; res.total = total + 1; return 0; }
    if (w != ST_CAS_MISMATCH) { res.outcome = Outcome.Error; return 0; }
  }
  res.outcome = Outcome.Contention;
  return 0;
}

/** Acquires one connection in a client bucket (or any unnamed counter key). */
export function acquireCounter(store: SharedStore, key: string, vm: u32, cap: u32, force: bool, attempts: u32, res: Result): void {
  acquireOn(store, key, "", vm, cap, force, false, attempts, res);
}

/** Acquires one connection for `pod` in the pod table (open addressing over `maxPods` slots). `hint` is a slot
 *  this VM saw the pod in before (or -1). Rejections are counted in the pod's slot for the metrics endpoint. */
export function acquirePod(store: SharedStore, prefix: string, maxPods: u32, pod: string, hint: i32, vm: u32, cap: u32,
                           force: bool, attempts: u32, res: Result): void {
  let start = hint >= 0 ? u32(hint) : fnv1a(pod) % maxPods;
  for (let probe: u32 = 0; probe < maxPods; probe++) {
    const slot = i32((start + probe) % maxPods);
    const r = acquireOn(store, podKey(prefix, slot), pod, vm, cap, force, true, attempts, res);
    if (r == TAKEN) continue;
    res.slot = slot;
    return;
  }
  res.outcome = Outcome.NoSlot;
}

/** Removes one share of `vm` (exactly what acquire added). `name` guards pod slots against reuse. */
export function release(store: SharedStore, key: string, name: string, vm: u32, attempts: u32, res: Result): void {
  for (let a: u32 = 0; a < attempts; a++) {
    if (a > 0) res.retries++;
    const st = store.get(key);
    if (st != ST_OK) { res.outcome = st == ST_NOT_FOUND ? Outcome.Orphan : Outcome.Error; return; }
    const l = decodeLedger(store.valuePtr, store.valueLen);
    const cas = store.cas;
    store.done();
    if (l === null) { res.corrupt++; res.outcome = Outcome.Orphan; return; }
    if (name.length > 0 && l.name != name) { res.outcome = Outcome.Orphan; return; }
    if (l.sub(vm, 1) == 0) { res.outcome = Outcome.Orphan; return; }
    const w = store.set(key, encodeLedger(l), cas);
    if (w == ST_OK) { res.outcome = Outcome.Admitted; res.total = l.total(); return; }
    if (w != ST_CAS_MISMATCH) { res.outcome = Outcome.Error; return; }
  }
  res.outcome = Outcome.Contention;
}

/** Removes the shares of every VM not in `live`. Returns the number of connections removed, or -1 when the CAS
 *  attempts ran out (the next sweep tries again). */
export function reclaim(store: SharedStore, key: string, live: Leases, attempts: u32, res: Result): i64 {
  for (let a: u32 = 0; a < attempts; a++) {
    const st = store.get(key);
    if (st != ST_OK) return 0;
    const l = decodeLedger(store.valuePtr, store.valueLen);
    const cas = store.cas;
    store.done();
    if (l === null) { res.corrupt++; return 0; }
    let removed: i64 = 0;
    let i = 0;
    while (i < l.vms.length) {
      if (!live.has(l.vms[i])) {
        removed += i64(l.counts[i]);
        removeAt(l.vms, i);
        removeAt(l.counts, i);
      } else i++;
    }
    if (removed == 0) return 0;
    const w = store.set(key, encodeLedger(l), cas);
    if (w == ST_OK) return removed;
    if (w != ST_CAS_MISMATCH) return 0;
    res.retries++;
  }
  return -1;
}

export class Beat {
  ok: bool = false;
  wasPresent: bool = false;     // false: first beat, or this VM had been declared dead
  dead: Array<u32> = new Array<u32>(0);
  deadGauge: i64 = 0;           // what the dead VMs had published as their gauge share (beatGauge; none: 0), summed
  live: Leases = new Leases();
}

/** What one VM saw of the other VMs' lease values at its own beats: a VM whose value stayed the same across
 *  `leaseTicks` beats of the watcher is silent. Only the watcher's own ticks (monotonic timers) measure the silence;
 *  no timestamps are compared, so wall-clock steps (envoy-host.md §13.4) expire no live VM. */
export class Watch {
  beats: u32 = 0;                            // the watcher's beats so far
  vms: Array<u32> = new Array<u32>(0);
  vals: Array<u32> = new Array<u32>(0);      // the value last seen (low 32 bits: consecutive values always differ there)
  since: Array<u32> = new Array<u32>(0);     // the watcher's beat at which it was first seen
}

/** Records vm's heartbeat and expires every VM whose value `watch` saw unchanged for `leaseTicks` beats. Exactly one
 *  VM sees a given dead VM in `dead` (the one whose CAS removed it), so exactly one sweeps its shares. */
export function heartbeat(store: SharedStore, key: string, vm: u32, leaseTicks: u32, watch: Watch,
                          attempts: u32, gauge: i64, out: Beat): void {
  out.ok = false;
  out.dead = new Array<u32>(0);
  out.deadGauge = 0;
  const beat = ++watch.beats; // retries below see the same beat number, so they judge alike
  for (let a: u32 = 0; a < attempts; a++) {
    const st = store.get(key);
    if (st != ST_OK && st != ST_NOT_FOUND) return;
    let l: Leases | null = null;
    let cas: u32 = 0;
    if (st == ST_OK) {
      l = decodeLeases(store.valuePtr, store.valueLen);
      cas = store.cas;
      store.done();
    }
    if (l === null) l = new Leases(); // missing or corrupt: start a fresh table (live VMs re-register next beat)
    const dead = new Array<u32>(0);
    let deadGauge: i64 = 0;
    let i = 0;
    while (i < l.vms.length) {
      const x = l.vms[i];
      const v = u32(l.beats[i]);
      let k = watch.vms.indexOf(x);
      if (k < 0) {
        k = watch.vms.length;
        watch.vms.push(x);
        watch.vals.push(v);
        watch.since.push(beat);
      } else if (watch.vals[k] != v) {
        watch.vals[k] = v;
        watch.since[k] = beat;
      }
      if (x != vm && beat - watch.since[k] >= leaseTicks) {
        dead.push(x);
        deadGauge += max<i64>(0, beatGauge(unchecked(l.beats[i])));
        removeAt(l.vms, i);
        removeAt(l.beats, i);
        removeAt(watch.vms, k);
        removeAt(watch.vals, k);
        removeAt(watch.since, k);
        continue;
      }
      i++;
    }
    out.wasPresent = l.beat(vm, beat, gauge);
    const w = store.set(key, encodeLeases(l), cas);
    if (w == ST_OK) {
      out.ok = true; out.dead = dead; out.live = l; out.deadGauge = deadGauge;
      return;
    }
    if (w != ST_CAS_MISMATCH) return;
  }
}

/** A process-unique VM id from a CAS-incremented sequence (0 is never used). */
export function nextVmId(db: SharedStore, key: string, attempts: u32): u32 {
  for (let a: u32 = 0; a < attempts; a++) {
    const st = db.get(key);
    let cur: u32 = 0;
    let cas: u32 = 0;
    if (st == ST_OK) {
      if (db.valueLen == 4) cur = load<u32>(db.valuePtr);
      cas = db.cas;
      db.done();
    } else if (st != ST_NOT_FOUND) return 0;
    let next = cur + 1;
    if (next == 0) next = 1;
    const buf = new ArrayBuffer(4);
    store<u32>(changetype<usize>(buf), next);
    const w = db.set(key, buf, cas);
    if (w == ST_OK) return next;
    if (w != ST_CAS_MISMATCH) return 0;
  }
  return 0;
}
