// Fleet mode (fleet module only): the global rate limit across Envoy processes (docs/fleet.md §3.4, leased tokens).
// Each process spends tokens from a pool per rate bucket in shared data (core/fleet_rate.ts). An upgrade that finds
// no token waits while its VM's chain claims a block from etcd: range read of <prefix>rate/<bucket>/, then a txn
// that puts <holder>/<seq> = k under the process's current rate lease if the range did not change (sum + k ≤
// requests). A block may be spent for h seconds from the claim's send; its key lives at least W + h after its
// creation (the rate lease's TTL), so over any window W at most `requests` tokens are spent fleet-wide.
// A fresh snapshot without room refuses with 429 (Retry-After: h, when the next claim may find room).
// The per-process GCRA (stream.ts checkRate) still runs before this stage, for smoothing.
import { S, Reason } from "../core/stats";
import { FailureMode } from "../core/config";
import { bucketOf } from "../core/ledger";
import { EtcdReply, rangePrefixRequest, putIfUnchangedRequest } from "../core/etcd";
import { hex16 } from "../core/fleet";
import { RateRange, rateLeaseTtl, sumRateRange, claimSize, parseU64, poolSpent }
  from "../core/fleet_rate";
import { nowMs } from "../host/abi";
import { Root } from "./root";
import { streams, rate } from "./stream";
import { FleetStream } from "./fleet_stream";
import { keyValue } from "./keys";
import { PASS, WAIT, DONE, V_NONE, V_GRANTED, V_FULL, V_FAILED, ST_RATE, wake } from "./fleet_wait";
import { vmOf, post, liveLease, needLease, LEASE_OK, LEASE_FAILED, L_GRANT } from "./fleet_lease";
import { RateGrant, RL_OK, RL_WAIT, RL_FAILED, rlId, rateLease, settleLease, changePool, procTicks, readPool,
         tickClock } from "./fleet_rate_store";

const IDLE: i32 = 0;
const WAIT_LEASE: i32 = 1;  // waiting for the process's lease (its id names the holder)
const WAIT_RLEASE: i32 = 2; // waiting for a rate lease (this VM's grant or another VM's)
const RANGE: i32 = 3;
const TXN: i32 = 4;

/** One VM's claim chain for one rate bucket. */
class RateChain {
  bucket: u32;
  phase: i32 = IDLE;
  token: u32 = 0;
  attempts: u32 = 0;
  chainMs: u64 = 0;
  holder: u64 = 0;
  rlease: u64 = 0;
  k: u32 = 0;
  sendWall: u64 = 0;
  sendTicks: u64 = 0;
  fullUntil: u64 = 0;   // a refusal seen this recently refuses without a new read
  retryS: u64 = 1;
  waiting: Array<u32> = new Array<u32>(0);
  range: RateRange = new RateRange();
  constructor(bucket: u32) { this.bucket = bucket; }
}

/** One VM's rate state. */
class RateVm {
  grant: RateGrant = new RateGrant(); // this VM's /v3/lease/grant for a rate lease
  seq: u32 = 0;
  chains: Array<RateChain> = new Array<RateChain>(0); // the buckets this VM claimed for (few: searched in order)
}

/** This VM's rate state: created on first use, held by address in its FleetVm (fleet_lease.ts: a typed global or
 *  field would bring the class's visitor into the local module) and kept for the VM's life. */
function rvOf(root: Root): RateVm {
  const vm = vmOf(root);
  if (vm.rate == 0) vm.rate = __retain(changetype<usize>(new RateVm()));
  return changetype<RateVm>(vm.rate);
}
function chainOf(rv: RateVm, b: u32): RateChain {
  const cs = rv.chains;
  for (let i = 0; i < cs.length; i++) if (cs[i].bucket == b) return cs[i];
  const ch = new RateChain(b);
  cs.push(ch);
  return ch;
}

function etcdPrefix(root: Root, b: u32): string {
  const f = root.config.fleet;
  let p = "";
  if (f !== null) p = f.prefix;
  return p + "rate/" + b.toString() + "/";
}

// ---- the stage ---------------------------------------------------------------------------------------------------

/** The global rate stage of an upgrade: PASS, WAIT (queued; woken through fleet_wait.ts) or DONE (refused). */
export function rateStage(s: FleetStream): i32 {
  const root = s.root;
  const cfg = root.config;
  const rl = cfg.rateLimit;
  const f = cfg.fleet;
  if (rl === null || f === null) return PASS;
  const rv = rvOf(root);
  const v = s.fleetVerdict;
  s.fleetVerdict = V_NONE;
  // The bucket, from the request's key at the first pass, waits in the high half of fleetBucket (the client
  // bucket, < 65536, is in the low half; the high half is cleared when this stage ends).
  let b = s.fleetBucket >> 16;
  if (v == V_NONE) {
    b = root.rateBuckets > 1 ? bucketOf(keyValue(rl.key, root.rateMetaPath), root.rateBuckets) : 0;
    s.fleetBucket = (s.fleetBucket & 0xffff) | (b << 16);
  }
  if (v == V_FAILED) return failed(s);
  if (changePool(root, b, true, 0, 0, 0)) return leave(s, PASS);
  const ch = chainOf(rv, b);
  const now = nowMs();
  if (v == V_FULL || ch.fullUntil > now) return refuse(s, ch.retryS);
  if (s.fleetSince == 0) { s.fleetSince = now; root.metrics.inc(S.FleetWaits); }
  else if (now - s.fleetSince > 4 * u64(f.callTimeoutMs)) return failed(s); // bounded: others took the tokens
  ch.waiting.push(s.id);
  if (ch.phase != IDLE) return WAIT;
  ch.attempts = 0;
  ch.chainMs = now;
  if (proceed(root, rv, ch)) return WAIT;
  ch.waiting.pop(); // nothing was sent: decide now
  return failed(s);
}

/** The request's rate key (for the rejection line). */
function rateKeyOf(s: FleetStream): string {
  const rl = s.root.config.rateLimit;
  if (rl === null) return "";
  return keyValue(rl.key, s.root.rateMetaPath);
}

function leave(s: FleetStream, r: i32): i32 {
  s.fleetSince = 0;
  s.fleetBucket &= 0xffff;
  return r;
}

function refuse(s: FleetStream, retryS: u64): i32 {
  rate.retryAfterUs = retryS * 1000000;
  return leave(s, s.reject(Reason.Rate, rateKeyOf(s), "") ? DONE : PASS);
}

/** etcd could not help: failure_mode (open: admit, within the per-process GCRA that ran before; counted). */
function failed(s: FleetStream): i32 {
  const root = s.root;
  if (root.config.failureMode == FailureMode.Open) {
    root.metrics.inc(S.FleetOpenAdmits);
    return leave(s, PASS);
  }
  root.metrics.inc(S.FleetUnavailable);
  return leave(s, s.reject(Reason.Contention, rateKeyOf(s), "") ? DONE : PASS);
}

// ---- the chain ---------------------------------------------------------------------------------------------------

/** Next step of a chain (its start, or after a wait or a conflict): false when nothing could be sent. */
function proceed(root: Root, rv: RateVm, ch: RateChain): bool {
  const l = needLease(root, vmOf(root));
  if (l == LEASE_FAILED) { ch.phase = IDLE; return false; }
  if (l != LEASE_OK) { ch.phase = WAIT_LEASE; return true; }
  ch.holder = liveLease(root);
  const r = rateLease(root, rv.grant);
  if (ch.holder == 0 || r == RL_FAILED) { ch.phase = IDLE; return false; }
  if (r == RL_WAIT) { ch.phase = WAIT_RLEASE; return true; }
  ch.rlease = rlId;
  ch.token = post(root, "/v3/kv/range", rangePrefixRequest(etcdPrefix(root, ch.bucket)));
  ch.phase = ch.token == 0 ? IDLE : RANGE;
  return ch.token != 0;
}

/** Ends a chain: wakes the streams still waiting in the rate stage with `verdict`. */
function finish(root: Root, rv: RateVm, ch: RateChain, verdict: u8): void {
  ch.phase = IDLE;
  ch.token = 0;
  if (verdict == V_FULL) ch.fullUntil = nowMs() + 1000;
  const todo = ch.waiting;
  ch.waiting = new Array<u32>(0);
  for (let i = 0; i < todo.length; i++) {
    const id = todo[i];
    if (!streams.has(id)) continue; // ended while waiting
    const s = changetype<FleetStream>(streams.get(id)); // the fleet module's streams are FleetStreams (index.ts)
    if (s.fleetSince != 0 && s.fleetStage == ST_RATE) wake(s, verdict);
  }
}

/** A call answer for this VM's rate chains or rate lease grant. False: not one of its tokens. */
export function rateAnswer(root: Root, token: u32, status: u32, rep: EtcdReply): bool {
  if (root.config.rateLimit === null) return false;
  const rv = rvOf(root);
  const ok = status == 200 && rep.ok;
  if (token == rv.grant.token) {
    rv.grant.token = 0;
    const rl = root.config.rateLimit;
    const f = root.config.fleet;
    let id: u64 = 0;
    if (ok && rl !== null && f !== null &&
        rep.ttl >= i64(rateLeaseTtl(rl.windowMs, f.rateHorizonSeconds, f.callTimeoutMs))) id = parseU64(rep.leaseId);
    if (id == 0) root.metrics.inc(S.FleetFailures);
    settleLease(root, rv.grant, id);
    const cs = rv.chains;
    for (let i = 0; i < cs.length; i++) {
      const ch = cs[i];
      if (ch.phase != WAIT_RLEASE) continue;
      if (id == 0 || !proceed(root, rv, ch)) finish(root, rv, ch, V_FAILED);
    }
    return true;
  }
  const cs = rv.chains;
  for (let i = 0; i < cs.length; i++) {
    const ch = cs[i];
    if (ch.token != token || ch.phase < RANGE) continue;
    ch.token = 0;
    if (!ok) root.metrics.inc(S.FleetFailures);
    if (ch.phase == RANGE) {
      if (ok) onRange(root, rv, ch, rep);
      else finish(root, rv, ch, V_FAILED);
    } else if (!ok) finish(root, rv, ch, V_FAILED); // a 404 (the rate lease gone) too: nothing was applied
    else if (!rep.succeeded) { // the range changed since the snapshot: the answer carries it again (bounded)
      ch.attempts++;
      if (ch.attempts >= root.config.casMaxAttempts) finish(root, rv, ch, V_FAILED);
      else if (rep.ranged) onRange(root, rv, ch, rep);
      else if (!proceed(root, rv, ch)) finish(root, rv, ch, V_FAILED);
    }
    else {
      // etcd holds the claim: only now may the process spend it (from the claim's send on, for h)
      root.metrics.inc(S.FleetRateClaims);
      root.metrics.inc(S.FleetRateTokens, i64(ch.k));
      finish(root, rv, ch, changePool(root, ch.bucket, false, ch.sendWall, ch.sendTicks, ch.k) ? V_GRANTED : V_FAILED);
    }
    return true;
  }
  return false;
}

function onRange(root: Root, rv: RateVm, ch: RateChain, rep: EtcdReply): void {
  const rl = root.config.rateLimit;
  const f = root.config.fleet;
  if (rl === null || f === null) { finish(root, rv, ch, V_FAILED); return; }
  const prefix = etcdPrefix(root, ch.bucket);
  const me = hex16(ch.holder);
  const rr = ch.range;
  sumRateRange(rep.kvs, prefix, me, rl.requests, rr);
  if (rr.bad > 0) root.metrics.inc(S.Corrupt, i64(rr.bad));
  const demand = poolSpent(readPool(root, ch.bucket)) + u32(ch.waiting.length);
  const k = claimSize(demand, rr.holders, rl.requests, rr.sum);
  if (k == 0) { // a fresh snapshot without room: refuse (Retry-After h: the keys' expiry times are not known here)
    ch.retryS = u64(f.rateHorizonSeconds);
    finish(root, rv, ch, V_FULL);
    return;
  }
  // the claim must be sent while the rate lease is within its horizon (time passed during the read)
  const r = rateLease(root, rv.grant);
  if (r == RL_WAIT) { ch.phase = WAIT_RLEASE; return; }
  if (r == RL_FAILED) { finish(root, rv, ch, V_FAILED); return; }
  ch.rlease = rlId;
  ch.k = k;
  const now = nowMs();
  const key = prefix + me + "/" + root.vm.toString() + "." + now.toString() + "." + (rv.seq++).toString();
  ch.sendTicks = procTicks(root);
  ch.sendWall = now;
  // keys never repeat (the process's lease id, its VM id, the send ms, a counter), so a put never replaces a claim
  ch.token = post(root, "/v3/kv/txn", putIfUnchangedRequest(prefix, u64(rep.revision), key, k.toString(),
    ch.rlease.toString()));
  ch.phase = ch.token == 0 ? IDLE : TXN;
  if (ch.token == 0) finish(root, rv, ch, V_FAILED);
}

/** Tick: the process clock, the chains' watchdog and waits. */
export function rateTick(root: Root): void {
  const f = root.config.fleet;
  const rl = root.config.rateLimit;
  if (f === null || rl === null) return;
  const tickMs = root.config.tickMs;
  tickClock(root);
  const rv = rvOf(root);
  const now = nowMs();
  const g = rv.grant;
  if (g.token != 0 && now - g.sentMs > 2 * u64(f.callTimeoutMs) + u64(tickMs)) g.token = 0; // never answered
  const cs = rv.chains;
  for (let i = 0; i < cs.length; i++) {
    const ch = cs[i];
    if (ch.phase == IDLE) continue;
    const bound = u64(f.callTimeoutMs) * u64(2 * root.config.casMaxAttempts + 4);
    if (now - ch.chainMs > bound) finish(root, rv, ch, V_FAILED);
    else if (ch.phase == WAIT_LEASE || ch.phase == WAIT_RLEASE) {
      if (ch.phase == WAIT_LEASE && vmOf(root).phase == L_GRANT) continue; // this VM's lease grant is in flight
      if (!proceed(root, rv, ch)) finish(root, rv, ch, V_FAILED);
    }
  }
}
