// Fleet mode, the global rate limit (docs/fleet.md §3.4): the pure parts. Tokens are claimed from etcd in blocks, as
// keys <prefix>rate/<bucket>/<holder>/<seq> = k put under a short *rate lease*; a claimed block may be spent only for
// h seconds from the claim's send, counted as max(wall-clock difference, process ticks × tick_ms) (§5.6).
// Shared-data records of one Envoy process: its rate lease, its tick clock, and one token pool per rate bucket (keys
// in core/ledger.ts).
import { EtcdKv } from "./etcd";
import { slotsOf } from "./fleet";

const MAGIC: u8 = 0x57;
const KIND_RLEASE: u8 = 6;
const KIND_CLOCK: u8 = 7;
const KIND_POOL: u8 = 8;

/** TTL of a rate lease, seconds: ⌈W + 2h⌉ plus the call timeout (a claim sent within h of the lease's grant is
 *  created at most one call timeout later; every key must live W + h after its creation). */
export function rateLeaseTtl(windowMs: u64, horizonS: u32, callTimeoutMs: u32): u64 {
  return (windowMs + 2000 * u64(horizonS) + u64(callTimeoutMs) + 999) / 1000;
}

/** Time since a send at (wall, ticks): the larger of the wall-clock difference and ticks × tick_ms, so that neither
 *  a late tick nor a wall clock stepped back alone makes a token live longer. */
export function elapsedMs(nowWall: u64, nowTicks: u64, sendWall: u64, sendTicks: u64, tickMs: u32): u64 {
  const w = nowWall > sendWall ? nowWall - sendWall : 0;
  const t = nowTicks > sendTicks ? (nowTicks - sendTicks) * u64(tickMs) : 0;
  return w > t ? w : t;
}

// ---- the process's tick clock ---------------------------------------------------------------------------------

/** Ticks of the process (not of one VM): advanced by whichever VM ticks first once a whole tick passed on the wall
 *  clock since the last advance, or at once when the wall clock went back. */
export class Clock {
  ticks: u64 = 0;
  lastWall: u64 = 0;
}

/** A VM's tick: true when the clock advanced (to be written back). */
export function clockTick(c: Clock, wall: u64, tickMs: u32): bool {
  if (c.lastWall != 0 && wall >= c.lastWall && wall - c.lastWall < u64(tickMs)) return false;
  c.ticks++;
  c.lastWall = wall;
  return true;
}

function header(p: usize, kind: u8, b: u8): void {
  store<u8>(p, MAGIC); store<u8>(p, 1, 1); store<u8>(p, kind, 2); store<u8>(p, b, 3);
}
function isKind(p: usize, len: i32, want: i32, kind: u8): bool {
  return len == want && load<u8>(p) == MAGIC && load<u8>(p, 1) == 1 && load<u8>(p, 2) == kind;
}

/** Zero bytes (provisioned) read as a fresh clock; anything malformed returns null. */
export function decodeClock(p: usize, len: i32): Clock | null {
  const c = new Clock();
  if (len == 0) return c;
  if (!isKind(p, len, 24, KIND_CLOCK)) return null;
  c.ticks = load<u64>(p, 8);
  c.lastWall = load<u64>(p, 16);
  return c;
}

export function encodeClock(c: Clock): ArrayBuffer {
  const b = new ArrayBuffer(24);
  const p = changetype<usize>(b);
  header(p, KIND_CLOCK, 0);
  store<u64>(p, c.ticks, 8);
  store<u64>(p, c.lastWall, 16);
  return b;
}

// ---- the rate lease --------------------------------------------------------------------------------------------

export const RL_NONE: u8 = 0;
export const RL_PENDING: u8 = 1; // VM `owner` sent /v3/lease/grant at (sendWall, sendTicks)
export const RL_LIVE: u8 = 2;    // lease `id`, granted by a call sent at (sendWall, sendTicks)

/** The process's current rate lease (granted by VM `owner`). */
export class RateLease {
  state: u8 = RL_NONE;
  owner: u32 = 0;
  id: u64 = 0;
  sendWall: u64 = 0;
  sendTicks: u64 = 0;
}

const RLEASE_BYTES: i32 = 32;

export function decodeRateLease(p: usize, len: i32): RateLease | null {
  const r = new RateLease();
  if (len == 0) return r;
  if (!isKind(p, len, RLEASE_BYTES, KIND_RLEASE) || load<u8>(p, 3) > RL_LIVE) return null;
  r.state = load<u8>(p, 3);
  r.owner = load<u32>(p, 4);
  r.id = load<u64>(p, 8);
  r.sendWall = load<u64>(p, 16);
  r.sendTicks = load<u64>(p, 24);
  return r;
}

export function encodeRateLease(r: RateLease): ArrayBuffer {
  const b = new ArrayBuffer(RLEASE_BYTES);
  const p = changetype<usize>(b);
  header(p, KIND_RLEASE, r.state);
  store<u32>(p, r.owner, 4);
  store<u64>(p, r.id, 8);
  store<u64>(p, r.sendWall, 16);
  store<u64>(p, r.sendTicks, 24);
  return b;
}

// ---- a bucket's token pool ---------------------------------------------------------------------------------------

// A pool is raw bytes, worked on in place (no object per block: the fleet module has a size budget): an 8-byte header
// (magic, version, kind, block count n) and n blocks of 24 bytes, oldest first: the claim's send (wall ms u64, process
// ticks u64), k u32 tokens claimed, left u32 unspent. A block is one claim etcd confirmed, spendable until h after
// its send. Spent blocks stay until they expire: they measure the recent demand.

/** At most this many blocks are kept. */
export const MAX_BLOCKS: i32 = 16;
const BLOCK: i32 = 24;

/** Blocks in a pool value; 0 for zero bytes (provisioned), -1 when malformed. */
export function poolCount(p: usize, len: i32): i32 {
  if (len == 0) return 0;
  if (len < 8 || load<u8>(p) != MAGIC || load<u8>(p, 1) != 1 || load<u8>(p, 2) != KIND_POOL) return -1;
  const n = i32(load<u8>(p, 3));
  if (n > MAX_BLOCKS || len != 8 + BLOCK * n) return -1;
  for (let i = 0; i < n; i++) {
    const q = p + 8 + usize(BLOCK * i);
    if (load<u32>(q, 20) > load<u32>(q, 16)) return -1;
  }
  return n;
}

/** A pool to work on: a copy of `n` blocks at `p` (n ≤ 0: empty) with room for one more. */
export function poolCopy(p: usize, n: i32): ArrayBuffer {
  const b = new ArrayBuffer(8 + BLOCK * (MAX_BLOCKS + 1));
  const q = changetype<usize>(b);
  if (n > 0) memory.copy(q + 8, p + 8, usize(BLOCK * n));
  store<u8>(q, MAGIC); store<u8>(q, 1, 1); store<u8>(q, KIND_POOL, 2); store<u8>(q, u8(n > 0 ? n : 0), 3);
  return b;
}

/** The pool's value as stored (exactly its blocks). */
export function poolBytes(pool: ArrayBuffer): ArrayBuffer {
  const p = changetype<usize>(pool);
  const len = 8 + BLOCK * i32(load<u8>(p, 3));
  const b = new ArrayBuffer(len);
  memory.copy(changetype<usize>(b), p, usize(len));
  return b;
}

function blockAt(pool: ArrayBuffer, i: i32): usize { return changetype<usize>(pool) + 8 + usize(BLOCK * i); }
export function poolLength(pool: ArrayBuffer): i32 { return i32(load<u8>(changetype<usize>(pool), 3)); }

/** Drops the oldest `m` blocks. */
function dropFirst(pool: ArrayBuffer, m: i32): void {
  const n = poolLength(pool);
  memory.copy(blockAt(pool, 0), blockAt(pool, m), usize(BLOCK * (n - m)));
  store<u8>(changetype<usize>(pool), u8(n - m), 3);
}

/** Drops the blocks whose horizon passed (anywhere: answers of two VMs' claims may come in either order); returns
 *  their unspent tokens (expired unused). */
export function poolSweep(pool: ArrayBuffer, wall: u64, ticks: u64, tickMs: u32, horizonMs: u64): u32 {
  const n = poolLength(pool);
  let expired: u32 = 0;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const q = blockAt(pool, i);
    if (elapsedMs(wall, ticks, load<u64>(q), load<u64>(q, 8), tickMs) >= horizonMs) {
      expired += load<u32>(q, 20);
      continue;
    }
    if (j != i) memory.copy(blockAt(pool, j), q, usize(BLOCK));
    j++;
  }
  store<u8>(changetype<usize>(pool), u8(j), 3);
  return expired;
}

/** Takes one token from the oldest block that has one. */
export function poolTake(pool: ArrayBuffer): bool {
  const n = poolLength(pool);
  for (let i = 0; i < n; i++) {
    const q = blockAt(pool, i);
    const left = load<u32>(q, 20);
    if (left > 0) { store<u32>(q, left - 1, 20); return true; }
  }
  return false;
}

/** Tokens spent from the blocks still in their horizon: the process's demand over about the last h seconds. */
export function poolSpent(pool: ArrayBuffer): u32 {
  const n = poolLength(pool);
  let s: u32 = 0;
  for (let i = 0; i < n; i++) {
    const q = blockAt(pool, i);
    s += load<u32>(q, 16) - load<u32>(q, 20);
  }
  return s;
}

/** Unspent tokens of block i (tests and stats). */
export function poolLeft(pool: ArrayBuffer, i: i32): u32 { return load<u32>(blockAt(pool, i), 20); }

/** Adds a confirmed claim of k tokens sent at (wall, ticks). When the pool is full the oldest block goes (its unspent
 *  tokens are returned as expired). */
export function poolAdd(pool: ArrayBuffer, wall: u64, ticks: u64, k: u32): u32 {
  let expired: u32 = 0;
  if (poolLength(pool) >= MAX_BLOCKS) {
    expired = load<u32>(blockAt(pool, 0), 20);
    dropFirst(pool, 1);
  }
  const n = poolLength(pool);
  const q = blockAt(pool, n);
  store<u64>(q, wall);
  store<u64>(q, ticks, 8);
  store<u32>(q, k, 16);
  store<u32>(q, k, 20);
  store<u8>(changetype<usize>(pool), u8(n + 1), 3);
  return expired;
}

// ---- claims in etcd ----------------------------------------------------------------------------------------------

/** A bucket's range as read from etcd: the tokens claimed under live rate leases and the distinct holders. */
export class RateRange {
  sum: u64 = 0;
  holders: u32 = 0;   // distinct holders, this one included
  bad: u32 = 0;       // values that were not token counts: each counted as the whole limit
}

/** Keys are <prefix><holder hex16>/<seq>, in key order as etcd returns them. */
export function sumRateRange(kvs: Array<EtcdKv>, prefix: string, me: string, requests: u32, out: RateRange): void {
  out.sum = 0;
  out.holders = 0;
  out.bad = 0;
  let last = "";
  let mine = false;
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i];
    let n = slotsOf(kv.value);
    if (n < 0) { out.bad++; n = i64(requests); }
    out.sum += u64(n);
    let h = kv.key;
    if (h.length >= prefix.length + 16) h = h.substr(prefix.length, 16);
    if (h != last) { out.holders++; last = h; } // unsorted keys would count a holder twice: smaller blocks, still exact
    if (h == me) mine = true;
  }
  if (!mine) out.holders++;
}

/** Tokens to claim: the demand (tokens spent lately + upgrades waiting), at least 1, at most requests / (2 × holders)
 *  (so that one holder cannot take the whole window), cut to what is left (0 = the window is full). */
export function claimSize(demand: u32, holders: u32, requests: u32, sum: u64): u32 {
  if (sum >= u64(requests)) return 0;
  const room = u64(requests) - sum;
  let cap = requests / (2 * (holders > 0 ? holders : 1));
  if (cap < 1) cap = 1;
  let k: u32 = demand < 1 ? 1 : demand;
  if (k > cap) k = cap;
  return u64(k) > room ? u32(room) : k;
}

/** A decimal int64 (an etcd lease id); 0 when empty or malformed. */
export function parseU64(s: string): u64 {
  if (s.length == 0 || s.length > 19) return 0; // int64 at most: no overflow
  let n: u64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 0;
    n = n * 10 + u64(c - 0x30);
  }
  return n;
}
