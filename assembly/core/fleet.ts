// Fleet mode arithmetic and the process-wide fleet record in shared data (docs/fleet.md; increment 1: one global
// per-pod cap). Pure: no host calls.
//
// The record (one shared-data key per process): state, the process's etcd lease id, the slots of the pod granted by
// etcd to this process, and when the state last changed (for a lease grant whose VM died). `granted` only grows
// while the lease lives (this increment returns nothing to etcd before the lease ends), so a VM that admits against
// a granted value it read a moment ago never admits past what etcd holds for the process.
import { EtcdKv } from "./etcd";

export const LEASE_NONE: u8 = 0;    // no lease: the next VM that needs one claims the record and grants it
export const LEASE_PENDING: u8 = 1; // a VM asked etcd for lease `id` and waits for the answer
export const LEASE_LIVE: u8 = 2;    // etcd granted lease `id`

const RECORD_BYTES: i32 = 24;
const MAGIC: u8 = 0x57;
const KIND_FLEET: u8 = 4;

export class FleetRecord {
  state: u8 = LEASE_NONE;
  id: u64 = 0;
  granted: u32 = 0;
  sinceMs: u64 = 0;
}

/** Zero bytes (provisioned, empty) read as no lease; anything malformed returns null. */
export function decodeFleet(p: usize, len: i32): FleetRecord | null {
  const r = new FleetRecord();
  if (len == 0) return r;
  if (len != RECORD_BYTES || load<u8>(p) != MAGIC || load<u8>(p, 1) != 1 || load<u8>(p, 2) != KIND_FLEET) return null;
  const st = load<u8>(p, 3);
  if (st > LEASE_LIVE) return null;
  r.state = st;
  r.granted = load<u32>(p, 4);
  r.id = load<u64>(p, 8);
  r.sinceMs = load<u64>(p, 16);
  return r;
}

export function encodeFleet(r: FleetRecord): ArrayBuffer {
  const b = new ArrayBuffer(RECORD_BYTES);
  const p = changetype<usize>(b);
  store<u8>(p, MAGIC); store<u8>(p, 1, 1); store<u8>(p, KIND_FLEET, 2); store<u8>(p, r.state, 3);
  store<u32>(p, r.granted, 4);
  store<u64>(p, r.id, 8);
  store<u64>(p, r.sinceMs, 16);
  return b;
}

/** A lease id as this process's key suffix: 16 lower-case hex digits (keys of one holder sort together). */
export function hex16(v: u64): string {
  let s = "";
  for (let i = 15; i >= 0; i--) {
    const d = i32((v >> (u64(i) * 4)) & 0xf);
    s += String.fromCharCode(d < 10 ? 0x30 + d : 0x57 + d);
  }
  return s;
}

/** A decimal slot count as stored in etcd; -1 for anything else (empty, signs, > 9 digits). */
export function slotsOf(v: string): i64 {
  if (v.length == 0 || v.length > 9) return -1;
  let n: i64 = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + i64(c - 0x30);
  }
  return n;
}

/** A pod range read from etcd: the sum of every holder's slots and this holder's own. */
export class PodRange {
  sum: u64 = 0;
  mine: u64 = 0;
  bad: u32 = 0;        // values that were not slot counts: each counted as the whole cap (never over-admit)
  mineBad: bool = false; // this holder's own value was one of them (then `mine` is 0 and must not be used)
  mineRev: i64 = 0;    // mod_revision of this holder's key (0 = absent)
}

export function sumRange(kvs: Array<EtcdKv>, myKey: string, cap: u32, out: PodRange): void {
  out.sum = 0;
  out.mine = 0;
  out.bad = 0;
  out.mineBad = false;
  out.mineRev = 0;
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i];
    let n = slotsOf(kv.value);
    const mine = kv.key == myKey;
    if (mine) out.mineRev = kv.modRevision;
    if (n < 0) {
      out.bad++;
      n = i64(cap);
      if (mine) out.mineBad = true;
    } else if (mine) out.mine = u64(n);
    out.sum += u64(n);
  }
}

/** Slots to ask for: a block, cut to what the cap leaves (0 = the fleet is full). */
export function grantSize(cap: u32, sum: u64, block: u32): u32 {
  if (sum >= u64(cap)) return 0;
  const room = u64(cap) - sum;
  return room < u64(block) ? u32(room) : block;
}

/** The slots a process holds for one limit (a pod, a client bucket): one shared-data value per limit, valid only
 *  while `lease` is the process's live etcd lease (a lost lease voids every grant at once). `busyUntilMs`: a grant of
 *  some VM may be in flight until then; etcd may then hold more than `granted` for a moment, and no VM may set etcd's
 *  value down to `granted` (reconcile) before it passes. */
export class Grant {
  lease: u64 = 0;
  granted: u32 = 0;
  busyUntilMs: u64 = 0;
}

const GRANT_BYTES: i32 = 24;
const KIND_GRANT: u8 = 5;

/** Zero bytes (provisioned, empty) read as nothing granted; anything malformed returns null. */
export function decodeGrant(p: usize, len: i32): Grant | null {
  const g = new Grant();
  if (len == 0) return g;
  if (len != GRANT_BYTES || load<u8>(p) != MAGIC || load<u8>(p, 1) != 1 || load<u8>(p, 2) != KIND_GRANT) return null;
  g.granted = load<u32>(p, 4);
  g.lease = load<u64>(p, 8);
  g.busyUntilMs = load<u64>(p, 16);
  return g;
}

export function encodeGrant(g: Grant): ArrayBuffer {
  const b = new ArrayBuffer(GRANT_BYTES);
  const p = changetype<usize>(b);
  store<u8>(p, MAGIC); store<u8>(p, 1, 1); store<u8>(p, KIND_GRANT, 2);
  store<u32>(p, g.granted, 4);
  store<u64>(p, g.lease, 8);
  store<u64>(p, g.busyUntilMs, 16);
  return b;
}

/** Slots a holder gives back (docs/fleet.md §2): all of them when none is used, the surplus above one block when
 *  more than two blocks are free; otherwise none. Block 0 (scarce mode, §3.3): every free slot. The caller returns
 *  only after this held for a whole period. */
export function returnSize(granted: u32, used: u64, block: u32): u32 {
  if (u64(granted) <= used) return 0;
  if (used == 0) return granted;
  const free = u64(granted) - used;
  return free > 2 * u64(block) ? u32(free - u64(block)) : 0;
}
