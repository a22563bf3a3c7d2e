// Fleet mode (fleet module only), the global rate limit's shared-data side (docs/fleet.md §3.4): the process's tick
// clock, its rate lease record (and this VM's grant of a new one), and the token pool per rate bucket. The records
// are pure (core/fleet_rate.ts); fleet_rate.ts runs the stage and the claim chains.
import { S } from "../core/stats";
import { ST_OK } from "../core/store";
import { leaseGrantRequest } from "../core/etcd";
import { rateLeaseKey, clockKey, ratePoolKey } from "../core/ledger";
import { RateLease, Clock, decodeRateLease, encodeRateLease, decodeClock, encodeClock, poolCount, poolCopy, poolBytes,
         rateLeaseTtl, elapsedMs, clockTick, poolSweep, poolTake, poolAdd, RL_NONE, RL_PENDING, RL_LIVE }
  from "../core/fleet_rate";
import { nowMs } from "../host/abi";
import { Root } from "./root";
import { post } from "./fleet_lease";

/** One VM's /v3/lease/grant for a new rate lease (0: none in flight). */
export class RateGrant {
  token: u32 = 0;
  sentMs: u64 = 0;
}

export function horizonMs(root: Root): u64 {
  const f = root.config.fleet;
  return f === null ? 0 : u64(f.rateHorizonSeconds) * 1000;
}

/** Tick: advances the process's tick clock (core/fleet_rate.ts clockTick). */
export function tickClock(root: Root): void {
  const tickMs = root.config.tickMs;
  for (let i = 0; i < 4; i++) { // the process's tick clock
    const store = root.store;
    let c: Clock | null = null;
    if (store.get(clockKey(root.config.keyPrefix)) == ST_OK) c = decodeClock(store.valuePtr, store.valueLen);
    const cas = store.cas;
    store.done();
    if (c === null) c = new Clock();
    if (!clockTick(c, nowMs(), tickMs)) break;
    if (store.set(clockKey(root.config.keyPrefix), encodeClock(c), cas) == ST_OK) break;
  }
}

export let lastCas: u32 = 0;

/** The process's tick count (core/fleet_rate.ts Clock). */
export function procTicks(root: Root): u64 {
  const store = root.store;
  let c: Clock | null = null;
  if (store.get(clockKey(root.config.keyPrefix)) == ST_OK) c = decodeClock(store.valuePtr, store.valueLen);
  lastCas = store.cas;
  store.done();
  return c === null ? 0 : c.ticks;
}

export function readLease(root: Root): RateLease {
  const store = root.store;
  let r: RateLease | null = null;
  if (store.get(rateLeaseKey(root.config.keyPrefix)) == ST_OK) r = decodeRateLease(store.valuePtr, store.valueLen);
  lastCas = store.cas;
  store.done();
  if (r === null) { root.metrics.inc(S.Corrupt); return new RateLease(); }
  return r;
}
export function writeLease(root: Root, r: RateLease, cas: u32): bool {
  return root.store.set(rateLeaseKey(root.config.keyPrefix), encodeRateLease(r), cas) == ST_OK;
}

export function readPool(root: Root, b: u32): ArrayBuffer {
  const store = root.store;
  let n = -1;
  if (store.get(ratePoolKey(root.config.keyPrefix, b)) == ST_OK) n = poolCount(store.valuePtr, store.valueLen);
  if (n < 0) root.metrics.inc(S.Corrupt); // malformed: empty, overwritten by the next change
  const pool = poolCopy(store.valuePtr, n);
  lastCas = store.cas;
  store.done();
  return pool;
}

/** Drops expired blocks and, with `take`, takes one token (CAS); with `k` > 0, adds instead a claim of k tokens etcd
 *  confirmed, sent at (wall, ticks). True when the token was taken or the claim added. */
export function changePool(root: Root, b: u32, take: bool, wall: u64, ticks0: u64, k: u32): bool {
  const tickMs = root.config.tickMs;
  const h = horizonMs(root);
  for (let i: u32 = 0; i < 2 * root.config.casMaxAttempts; i++) {
    const ticks = procTicks(root);
    const pool = readPool(root, b);
    const cas = lastCas;
    let expired = poolSweep(pool, nowMs(), ticks, tickMs, h);
    let done = false;
    if (k > 0) { expired += poolAdd(pool, wall, ticks0, k); done = true; }
    else if (take) done = poolTake(pool);
    if (expired == 0 && !done) return false;
    if (root.store.set(ratePoolKey(root.config.keyPrefix, b), poolBytes(pool), cas) == ST_OK) {
      if (expired > 0) root.metrics.inc(S.FleetRateExpired, i64(expired));
      return done;
    }
  }
  return false;
}

export const RL_OK: i32 = 1;
export const RL_WAIT: i32 = 0;
export const RL_FAILED: i32 = -1;
export let rlId: u64 = 0;

/** The process's rate lease usable for a claim sent now (granted by a call sent less than h ago): RL_OK (in rlId),
 *  RL_WAIT (a grant is in flight) or RL_FAILED. Claims the record and asks etcd for a new one when needed. */
export function rateLease(root: Root, rv: RateGrant): i32 {
  const f = root.config.fleet;
  if (f === null) return RL_FAILED;
  const tickMs = root.config.tickMs;
  const settle = u64(f.callTimeoutMs) + 2 * u64(tickMs); // a grant's answer is due by then
  for (let i = 0; i < 4; i++) {
    const ticks = procTicks(root);
    const r = readLease(root);
    const cas = lastCas;
    const now = nowMs();
    const age = elapsedMs(now, ticks, r.sendWall, r.sendTicks, tickMs);
    if (r.state == RL_LIVE && age < horizonMs(root)) { rlId = r.id; return RL_OK; }
    if (r.state == RL_PENDING && age < settle) return RL_WAIT;
    if (rv.token != 0) return RL_WAIT;
    const n = new RateLease();
    n.state = RL_PENDING;
    n.owner = root.vm;
    n.sendWall = now;
    n.sendTicks = ticks;
    if (!writeLease(root, n, cas)) continue;
    if (sendGrant(root, rv, now)) return RL_WAIT;
    settleLease(root, rv, 0);
    return RL_FAILED;
  }
  return RL_FAILED;
}

function sendGrant(root: Root, rv: RateGrant, now: u64): bool {
  const f = root.config.fleet;
  const rl = root.config.rateLimit;
  if (f === null || rl === null) return false;
  rv.sentMs = now;
  const ttl = u32(rateLeaseTtl(rl.windowMs, f.rateHorizonSeconds, f.callTimeoutMs));
  rv.token = post(root, "/v3/lease/grant", leaseGrantRequest(ttl));
  return rv.token != 0;
}

/** Ends this VM's rate lease grant: live with `id`, or back to none (id 0). */
export function settleLease(root: Root, rv: RateGrant, id: u64): void {
  for (let i = 0; i < 4; i++) {
    const r = readLease(root);
    if (r.owner != root.vm || r.state != RL_PENDING || r.sendWall != rv.sentMs) return;
    if (id == 0) r.state = RL_NONE;
    else { r.state = RL_LIVE; r.id = id; }
    if (writeLease(root, r, lastCas)) return;
  }
}
