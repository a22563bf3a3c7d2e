// Byte codecs for everything ws-governor keeps in Envoy shared data. Pure.
// Every value starts with the magic 0x57 ('W'), format version 1 and a kind byte; decoders validate lengths
// exactly and return null for anything else (corrupt, truncated, another program's value), so callers can apply a
// defined policy instead of trapping. A zero-length value is the "provisioned, empty" state written at configure.
import { utf8Encode, utf8Decode } from "./utf8";

export const MAGIC: u8 = 0x57;
export const VERSION: u8 = 1;
export const KIND_SLOT: u8 = 1;   // concurrency ledger: pod slot or client bucket
export const KIND_RATE: u8 = 2;   // GCRA state
export const KIND_LEASES: u8 = 3; // VM heartbeats
export const MAX_ENTRIES: i32 = 4096;

/** Per-VM shares of one count. `name` is the pod for pod slots, "" for client buckets. */
export class Ledger {
  name: string = "";
  rejected: u64 = 0;
  vms: Array<u32> = new Array<u32>(0);
  counts: Array<u32> = new Array<u32>(0);

  total(): u64 {
    let t: u64 = 0;
    for (let i = 0; i < this.counts.length; i++) t += u64(this.counts[i]);
    return t;
  }

  countOf(vm: u32): u32 {
    const i = this.vms.indexOf(vm);
    return i < 0 ? 0 : this.counts[i];
  }

  add(vm: u32, delta: u32): void {
    const i = this.vms.indexOf(vm);
    if (i < 0) { this.vms.push(vm); this.counts.push(delta); }
    else this.counts[i] = this.counts[i] + delta;
  }
}

function header(p: usize, len: i32, kind: u8): bool {
  return len >= 3 && load<u8>(p) == MAGIC && load<u8>(p, 1) == VERSION && load<u8>(p, 2) == kind;
}

export function encodeLedger(l: Ledger): ArrayBuffer {
  const name = utf8Encode(l.name);
  const nameLen = name.byteLength;
  const n = l.vms.length;
  const size = 3 + 2 + nameLen + 8 + 2 + n * 8;
  const buf = new ArrayBuffer(size);
  const p = changetype<usize>(buf);
  store<u8>(p, MAGIC); store<u8>(p, VERSION, 1); store<u8>(p, KIND_SLOT, 2);
  store<u16>(p + 3, u16(nameLen));
  memory.copy(p + 5, changetype<usize>(name), nameLen);
  let o = p + 5 + nameLen;
  store<u64>(o, l.rejected); o += 8;
  store<u16>(o, u16(n)); o += 2;
  for (let i = 0; i < n; i++) {
    store<u32>(o, l.vms[i]);
    store<u32>(o, l.counts[i], 4);
    o += 8;
  }
  return buf;
}

// What scanLedger() found (module-level, so the admission path allocates nothing).
export let foundAt: usize = 0;  // the entry of the VM asked for (0: none)
export let foundTotal: u64 = 0; // the sum of all counts

/** Validates a slot ledger of `len` bytes at `p`: W 1 1 | u16 nameLen ≤ 1024 | name | u64 rejected | u16 n ≤ 4096 |
 *  n × (u32 vm, u32 count), VM ids non-zero and distinct, nothing after. Zero bytes: the empty ledger. A count may
 *  be 0 (a share that went back to 0 stays in place; readers skip it). Notes vm's entry and the total. */
export function scanLedger(p: usize, len: i32, vm: u32): bool {
  foundAt = 0;
  foundTotal = 0;
  if (len == 0) return true;
  if (!header(p, len, KIND_SLOT) || len < 15) return false;
  const nl = i32(load<u16>(p, 3));
  const e0 = p + 15 + usize(nl);
  if (nl > 1024 || len < 15 + nl || i32(load<u16>(e0 - 2)) > MAX_ENTRIES || len != 15 + nl + i32(load<u16>(e0 - 2)) * 8) return false;
  for (let e = e0; e < p + len; e += 8) {
    const x = load<u32>(e);
    if (x == 0) return false;
    for (let k = e0; k < e; k += 8) if (load<u32>(k) == x) return false;
    if (x == vm) foundAt = e;
    foundTotal += u64(load<u32>(e, 4));
  }
  return true;
}

/** Decodes `len` bytes at `p` (scanLedger's rules; zero counts are left out). Zero bytes decode as an empty ledger.
 *  Returns null for anything malformed. */
export function decodeLedger(p: usize, len: i32): Ledger | null {
  const l = new Ledger();
  if (!scanLedger(p, len, 0)) return null;
  if (len == 0) return l;
  const nl = i32(load<u16>(p, 3));
  l.name = utf8Decode(p + 5, nl);
  l.rejected = load<u64>(p + 5 + nl);
  for (let e = p + 15 + nl; e < p + len; e += 8) {
    const c = load<u32>(e, 4);
    if (c == 0) continue;
    l.vms.push(load<u32>(e));
    l.counts.push(c);
  }
  return l;
}

export function encodeRate(tat: u64): ArrayBuffer {
  const buf = new ArrayBuffer(11);
  const p = changetype<usize>(buf);
  store<u8>(p, MAGIC); store<u8>(p, VERSION, 1); store<u8>(p, KIND_RATE, 2);
  store<u64>(p + 3, tat);
  return buf;
}

/** Returns the stored TAT, 0 for an empty value, or -1 (as i64) when malformed. */
export function decodeRate(p: usize, len: i32): i64 {
  if (len == 0) return 0;
  if (!header(p, len, KIND_RATE) || len != 11) return -1;
  const t = load<u64>(p + 3);
  return t > u64(i64.MAX_VALUE) ? -1 : i64(t);
}

/** Heartbeats: each VM's beat value, whose low 32 bits change on every beat (the VM's own beat count). Liveness is
 *  judged by whether they change, not by any time (ledger.ts Watch), so a wall-clock step (envoy-host.md §13.4) cannot
 *  make a live VM look silent. Bit 63 set: bits 32–62 hold what the VM has added to the active_connections gauge (so
 *  whoever sweeps it when it dies can take that back, filter/root.ts); clear (an older module's entry, which held
 *  ms since the epoch): none. */
export const BEAT_GAUGE: u64 = 1 << 63;

export function beatGauge(v: u64): i64 {
  return (v & BEAT_GAUGE) != 0 ? i64((v >> 32) & 0x7fffffff) : -1;
}

export class Leases {
  vms: Array<u32> = new Array<u32>(0);
  beats: Array<u64> = new Array<u64>(0);

  /** Records vm's beat number `n` publishing `gauge` (clamped to 0…2^31−1); false when vm was not in the table. */
  beat(vm: u32, n: u32, gauge: i64): bool {
    const v = BEAT_GAUGE | u64(max<i64>(0, min<i64>(gauge, 0x7fffffff))) << 32 | u64(n);
    const i = this.vms.indexOf(vm);
    if (i < 0) { this.vms.push(vm); this.beats.push(v); return false; }
    unchecked(this.beats[i] = v);
    return true;
  }

  has(vm: u32): bool { return this.vms.indexOf(vm) >= 0; }
}

export function encodeLeases(l: Leases): ArrayBuffer {
  const n = l.vms.length;
  const buf = new ArrayBuffer(5 + n * 12);
  const p = changetype<usize>(buf);
  store<u8>(p, MAGIC); store<u8>(p, VERSION, 1); store<u8>(p, KIND_LEASES, 2);
  store<u16>(p + 3, u16(n));
  let o = p + 5;
  for (let i = 0; i < n; i++) {
    store<u32>(o, l.vms[i]);
    store<u64>(o, l.beats[i], 4);
    o += 12;
  }
  return buf;
}

export function decodeLeases(p: usize, len: i32): Leases | null {
  const l = new Leases();
  if (len == 0) return l;
  if (!header(p, len, KIND_LEASES) || len < 5) return null;
  const n = i32(load<u16>(p + 3));
  if (n > MAX_ENTRIES || len != 5 + n * 12) return null;
  // Sized once, with room for the beater's own entry: no reallocation while the table is read or beaten.
  l.vms = new Array<u32>(n + 1);
  l.beats = new Array<u64>(n + 1);
  let o = p + 5;
  for (let i = 0; i < n; i++) {
    const vm = load<u32>(o);
    const b = load<u64>(o, 4);
    o += 12;
    if (vm == 0 || l.vms.indexOf(vm) >= 0) return null; // slots not filled yet hold 0
    unchecked(l.vms[i] = vm);
    unchecked(l.beats[i] = b);
  }
  l.vms.length = n;
  l.beats.length = n;
  return l;
}

/** Removes a[i], keeping the order (Array#splice would also allocate the removed part as a new array). */
export function removeAt<T>(a: Array<T>, i: i32): void {
  const n = a.length - 1;
  for (let k = i; k < n; k++) unchecked(a[k] = a[k + 1]);
  a.length = n;
}

/** FNV-1a, 32 bit: spreads client keys over a fixed number of buckets. */
export function fnv1a(s: string): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h ^= u32(c & 0xff);
    h *= 0x01000193;
    h ^= u32(c >> 8);
    h *= 0x01000193;
  }
  return h;
}
