// Exact admission over Envoy shared data: bounded compare-and-swap loops on per-VM ledgers. Pure.
// Every count is a set of per-VM shares (the slot-ledger format of codec.ts scanLedger), so the share of a VM that died can be removed by another.
// Outcomes are explicit; the caller maps Contention to the configured failure mode and counts `retries`.
import { SharedStore, ST_OK, ST_NOT_FOUND, ST_CAS_MISMATCH } from "./store";
import { Leases, decodeLeases, encodeLeases, fnv1a, removeAt, beatGauge, scanLedger, foundAt, foundTotal, MAGIC, VERSION, KIND_SLOT } from "./codec";
import { utf8Encode, utf8Is } from "./utf8";

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
export function slotKey(prefix: string, tag: string, n: u32): string { return prefix + tag + u64(n).toString(); }
// The last pod key built: admission and release of one pod reuse one string (and HostStore its UTF-8 bytes). The
// prefix is compared by identity (a root passes its config's string every time): no string compare per call.
let podKeyPrefix = "";
let podKeySlot: i32 = -1;
let podKeyLast = "";
export function podKey(prefix: string, slot: i32): string {
  if (slot != podKeySlot || changetype<usize>(prefix) != changetype<usize>(podKeyPrefix)) {
    podKeyLast = slotKey(prefix, POD_TAG, u32(slot));
    podKeyPrefix = prefix;
    podKeySlot = slot;
  }
  return podKeyLast;
}
export function clientKey(prefix: string, bucket: u32): string { return slotKey(prefix, CLIENT_TAG, bucket); }
export function rateKey(prefix: string, bucket: u32): string { return slotKey(prefix, RATE_TAG, bucket); }
export function leaseKey(prefix: string): string { return prefix + ":vms"; }
/** How many times a VM found the lease table corrupt and started a fresh one (u32, CAS-incremented like seqKey). */
export function resetKey(prefix: string): string { return prefix + ":vms_resets"; }
export function seqKey(prefix: string): string { return prefix + ":seq"; }
export function drainKey(prefix: string): string { return prefix + ":drain"; }
export function fleetKey(prefix: string): string { return prefix + ":fleet"; }
/** fleet module: the slots etcd granted this process for its pod (inbound) or for a client bucket */
export function fleetGrantKey(prefix: string, pod: bool, bucket: u32): string {
  if (pod) return prefix + ":fgp"; // if/else, not `?:` around an allocation in a concatenation (a leak on AS 0.17)
  return prefix + ":fgc" + u64(bucket).toString();
}  // fleet module: the process's etcd lease
/** fleet module, the global rate limit (core/fleet_rate.ts): the process's rate lease, its tick clock, a bucket's tokens */
export function rateLeaseKey(prefix: string): string { return prefix + ":frl"; }
export function clockKey(prefix: string): string { return prefix + ":fclk"; }
export function ratePoolKey(prefix: string, bucket: u32): string { return prefix + ":frt" + u64(bucket).toString(); }
export function bucketOf(key: string, buckets: u32): u32 { return fnv1a(key) % buckets; }

const TAKEN: i32 = -2;

// Slot ledgers are changed where they lie: the bytes the store read are validated (codec.ts scanLedger), one count
// (or the rejected counter) is changed in them and they are written back under the cas read. Nothing is decoded or
// allocated on that path. A new value is built only to add an entry, to claim a slot and to drop entries.

/** A new slot ledger: `name`, nothing rejected, one entry (vm, 1). */
function freshLedger(name: string, vm: u32): ArrayBuffer {
  const nb = utf8Encode(name);
  const nl = nb.byteLength;
  const buf = new ArrayBuffer(23 + nl);
  const p = changetype<usize>(buf); // a new ArrayBuffer is zeroed: rejected = 0
  store<u8>(p, MAGIC); store<u8>(p, VERSION, 1); store<u8>(p, KIND_SLOT, 2);
  store<u16>(p, u16(nl), 3);
  memory.copy(p + 5, changetype<usize>(nb), nl);
  store<u16>(p + 13 + nl, 1);
  store<u32>(p + 15 + nl, vm);
  store<u32>(p + 15 + nl, 1, 4);
  return buf;
}

/** A copy of the valid ledger at p without its entries of count 0, and (vm, 1) added at the end. */
function appended(p: usize, len: i32, vm: u32): ArrayBuffer {
  const e0 = p + 15 + usize(load<u16>(p, 3));
  const end = p + len;
  let n = 1;
  for (let e = e0; e < end; e += 8) if (load<u32>(e, 4) != 0) n++;
  const head = i32(e0 - p);
  const buf = new ArrayBuffer(head + n * 8);
  let o = changetype<usize>(buf);
  memory.copy(o, p, head);
  o += head;
  store<u16>(o - 2, u16(n));
  for (let e = e0; e < end; e += 8) {
    if (load<u32>(e, 4) == 0) continue;
    store<u64>(o, load<u64>(e));
    o += 8;
  }
  store<u32>(o, vm);
  store<u32>(o, 1, 4);
  return buf;
}

/** One slot: adds vm's share unless `cap` (0 = none) is reached; `force` (shadow mode) adds anyway.
 *  With `name` non-empty the slot belongs to that pod and may be claimed when free (a malformed value counts as
 *  corrupt and as free). Returns TAKEN when the slot belongs to another pod that still holds connections. */
function acquireOn(db: SharedStore, key: string, name: string, vm: u32, cap: u32, force: bool,
                   countReject: bool, attempts: u32, res: Result): i32 {
  for (let a: u32 = 0; a < attempts; a++) {
    if (a > 0) res.retries++;
    if (db.get(key) != ST_OK) { res.outcome = Outcome.Error; return 0; }
    const p = db.valuePtr;
    const len = db.valueLen;
    const cas = db.cas;
    let fresh = !scanLedger(p, len, vm);
    if (fresh) res.corrupt++;
    const nl = fresh || len == 0 ? 0 : i32(load<u16>(p, 3));
    let total = fresh ? 0 : foundTotal;
    if (name.length > 0 && (fresh || !utf8Is(p + 5, nl, name))) {
      if (nl > 0 && total > 0) { db.done(); return TAKEN; }
      fresh = true; // claim a free (or drained) slot
      total = 0;
    }
    let w: u32;
    if (cap > 0 && total >= u64(cap) && !force) { // (never fresh: its total is 0)
      res.total = total;
      if (!countReject) { db.done(); res.outcome = Outcome.OverLimit; return 0; }
      store<u64>(p + 5 + nl, load<u64>(p + 5 + nl) + 1); // rejected
      w = db.setValue(key, cas);
      db.done();
      if (w == ST_OK) { res.outcome = Outcome.OverLimit; return 0; }
    } else {
      // if/else, not `?:` (a borrowed string chosen by a conditional expression is released twice on AS 0.17)
      if (fresh) w = db.set(key, freshLedger(name, vm), cas);
      else if (len == 0) w = db.set(key, freshLedger("", vm), cas);
      else if (foundAt != 0) {
        store<u32>(foundAt, load<u32>(foundAt, 4) + 1, 4);
        w = db.setValue(key, cas);
      } else w = db.set(key, appended(p, len, vm), cas);
      db.done();
      if (w == ST_OK) { res.outcome = Outcome.Admitted; res.total = total + 1; return 0; }
    }
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
export function release(db: SharedStore, key: string, name: string, vm: u32, attempts: u32, res: Result): void {
  for (let a: u32 = 0; a < attempts; a++) {
    if (a > 0) res.retries++;
    const st = db.get(key);
    if (st != ST_OK) { res.outcome = st == ST_NOT_FOUND ? Outcome.Orphan : Outcome.Error; return; }
    const p = db.valuePtr;
    const len = db.valueLen;
    res.outcome = Outcome.Orphan;
    if (!scanLedger(p, len, vm)) res.corrupt++;
    else if (foundAt != 0 && load<u32>(foundAt, 4) > 0 &&
             (name.length == 0 || utf8Is(p + 5, i32(load<u16>(p, 3)), name))) {
      store<u32>(foundAt, load<u32>(foundAt, 4) - 1, 4); // a share back at 0 stays in place
      const w = db.setValue(key, db.cas);
      if (w == ST_CAS_MISMATCH) { db.done(); continue; }
      res.outcome = w == ST_OK ? Outcome.Admitted : Outcome.Error;
      res.total = foundTotal - 1;
    }
    db.done();
    return;
  }
  res.outcome = Outcome.Contention;
}

/** Sets the shares of every VM not in `live` to 0 (the next new entry drops them). Returns the number of connections
 *  removed, or -1 when the CAS attempts ran out (the next sweep tries again). */
export function reclaim(db: SharedStore, key: string, live: Leases, attempts: u32, res: Result): i64 {
  for (let a: u32 = 0; a < attempts; a++) {
    if (db.get(key) != ST_OK) return 0;
    const p = db.valuePtr;
    const len = db.valueLen;
    let removed: i64 = 0;
    if (!scanLedger(p, len, 0)) res.corrupt++;
    else if (len > 0) {
      for (let e = p + 15 + usize(load<u16>(p, 3)); e < p + len; e += 8) {
        if (live.has(load<u32>(e))) continue;
        removed += i64(load<u32>(e, 4));
        store<u32>(e, 0, 4);
      }
    }
    let w: u32 = ST_OK;
    if (removed > 0) w = db.setValue(key, db.cas);
    db.done();
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
  resets: u32 = 0;              // this beat found the table corrupt: the reset count after its increment (else 0)
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
                          attempts: u32, gauge: i64, out: Beat, resets: string): void {
  out.ok = false;
  out.dead = new Array<u32>(0);
  out.deadGauge = 0;
  out.resets = 0;
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
    if (l === null) {
      // Missing or corrupt: start a fresh table (live VMs re-register next beat). A corrupt one is counted first, so
      // that a VM missing from the fresh table tells this reset from a sweep (readCount) and keeps its gauge share.
      if (st == ST_OK && out.resets == 0) out.resets = nextVmId(store, resets, attempts);
      l = new Leases();
    }
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

/** The value of a CAS-incremented sequence (nextVmId); 0 when missing or unreadable. */
export function readCount(db: SharedStore, key: string): u32 {
  let v: u32 = 0;
  if (db.get(key) == ST_OK && db.valueLen == 4) v = load<u32>(db.valuePtr);
  db.done();
  return v;
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
