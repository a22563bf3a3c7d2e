// Fleet mode (fleet module only): global caps per pod (both modes) and per client bucket (docs/fleet.md §2–§3.5).
// Each limit has, per Envoy process, a grant in shared data (core/fleet.ts Grant: slots etcd holds for the process
// under its live lease) and, in etcd, the key <prefix><pod|client>/<name>/<lease hex>. Admission is the local ledger
// with the grant as its cap; an upgrade that finds no free slot waits while its VM's chain asks etcd for a block
// (range read, then a txn comparing the range's mod revision). Slots nobody uses go back to etcd on the tick.
//
// Local view ≤ etcd (§3.2): a grant is added locally only after etcd confirmed it; a return is taken off locally
// (and checked against the ledger's count, undone if an admission raced it) before etcd is asked. An admission
// checks the grant again after its ledger CAS and undoes itself when a return lowered the grant meanwhile.
import { S, Reason } from "../core/stats";
import { Outcome, acquirePod, acquireCounter, release, podKey, clientKey } from "../core/ledger";
import { rangePrefixRequest, putIfUnchangedRequest, setOwnIfUnchangedRequest, createIfAbsentRequest, EtcdReply } from "../core/etcd";
import { hex16, sumRange, grantSize, returnSize } from "../core/fleet";
import { FailureMode } from "../core/config";
import { nowMs } from "../host/abi";
import { Root } from "./root";
import { streams } from "./stream";
import { FleetStream } from "./fleet_stream";
import { PASS, WAIT, DONE, V_NONE, V_GRANTED, V_FULL, V_FAILED, wake } from "./fleet_wait";
import { FleetVm, vmOf, post, liveLease, needLease, leaseLost, LEASE_OK, LEASE_FAILED, L_GRANT } from "./fleet_lease";
import { POD, CLIENT, IDLE, WAIT_LEASE, RANGE, TXN, V_PENDING, Chain, chainsOf, chainOf, podId, podName, etcdPrefix,
         capOf, blockOf, readGrant, grantedNow, changeGrant, usedOf } from "./fleet_grant";


/** The ledger admission with the process's grant (+ `extra`) as the cap, checked again after the CAS. */
function admitLocal(s: FleetStream, kind: u8, extra: u32): Outcome {
  const root = s.root;
  const cfg = root.config;
  const b = kind == POD ? s.fleetPod : s.fleetBucket & 0xffff;
  const pod = podName(s.fleetPod);
  const cap = grantedNow(root, kind, b) + extra;
  if (cap == 0 && cfg.enforce) return Outcome.OverLimit;
  const res = root.res;
  res.reset();
  let key = clientKey(cfg.keyPrefix, b);
  if (kind == POD) {
    acquirePod(root.store, cfg.keyPrefix, cfg.maxPods, pod, pod == root.pod ? root.podSlot : -1, root.vm, cap,
               !cfg.enforce, cfg.casMaxAttempts, res);
    if (res.slot >= 0 && pod == root.pod) root.podSlot = res.slot;
    key = podKey(cfg.keyPrefix, res.slot);
  } else acquireCounter(root.store, key, root.vm, cap, !cfg.enforce, cfg.casMaxAttempts, res);
  if (res.retries > 0) root.metrics.inc(S.CasRetries, i64(res.retries));
  if (res.outcome != Outcome.Admitted) return res.outcome;
  // A return may have lowered the grant between our read and our CAS: then this admission does not count.
  if (cfg.enforce && res.total > u64(grantedNow(root, kind, b) + extra)) {
    const name = kind == POD ? pod : "";
    res.reset();
    release(root.store, key, name, root.vm, cfg.casMaxAttempts * 4, res);
    if (res.outcome != Outcome.Admitted && res.outcome != Outcome.Orphan) root.addPending(key, name);
    return Outcome.OverLimit;
  }
  if (kind == POD) {
    s.podHeld = i16(res.slot);
    s.pod = pod;
    root.metrics.inc(S.Active, 1);
  } else s.clientHeld = i32(b);
  return Outcome.Admitted;
}

function refuse(s: FleetStream, kind: u8, reason: Reason): i32 {
  s.fleetSince = 0;
  return s.reject(reason, s.fleetKey, kind == POD ? podName(s.fleetPod) : "") ? DONE : PASS;
}

function contention(s: FleetStream, kind: u8): i32 {
  s.fleetSince = 0;
  return s.contention(s.fleetKey, kind == POD ? podName(s.fleetPod) : "") ? PASS : DONE;
}

/** etcd could not help: failure_mode (open: within the grant + the local extra cap). */
function failedStage(s: FleetStream, kind: u8): i32 {
  const root = s.root;
  const f = root.config.fleet;
  s.fleetSince = 0;
  if (root.config.failureMode == FailureMode.Open && f !== null) {
    const extra = kind == POD ? f.localCapPerPod : f.localCapPerClient;
    if (extra > 0 && admitLocal(s, kind, extra) == Outcome.Admitted) {
      root.metrics.inc(S.FleetOpenAdmits);
      return PASS;
    }
  }
  root.metrics.inc(S.FleetUnavailable);
  return refuse(s, kind, Reason.Contention);
}

/** The client or pod stage of an upgrade (first pass or after a wake). */
export function limitStage(s: FleetStream, kind: u8): i32 {
  const root = s.root;
  const f = root.config.fleet;
  if (f === null) return PASS;
  const v = s.fleetVerdict;
  s.fleetVerdict = V_NONE;
  if (!root.ensureLease()) return contention(s, kind);
  if (v == V_FAILED) return failedStage(s, kind);
  const o = admitLocal(s, kind, 0);
  if (o == Outcome.Admitted) { s.fleetSince = 0; return PASS; }
  if (o != Outcome.OverLimit) return contention(s, kind);
  if (v == V_FULL) return refuse(s, kind, kind == POD ? Reason.PodFull : Reason.ClientFull);
  const now = nowMs();
  if (s.fleetSince == 0) { s.fleetSince = now; root.metrics.inc(S.FleetWaits); }
  else if (now - s.fleetSince > 4 * u64(f.callTimeoutMs)) return contention(s, kind); // bounded wait
  const ch = chainOf(root, kind, kind == POD ? s.fleetPod : s.fleetBucket & 0xffff);
  ch.waiting.push(s.id);
  if (ch.phase != IDLE) return WAIT;
  if (startGrant(root, ch)) return WAIT;
  ch.waiting.pop(); // nothing was sent: decide now
  return failedStage(s, kind);
}

function startGrant(root: Root, ch: Chain): bool {
  ch.ret = false;
  ch.attempts = 0;
  ch.chainMs = nowMs();
  const l = needLease(root, vmOf(root));
  if (l == LEASE_FAILED) { ch.phase = IDLE; return false; }
  if (l != LEASE_OK) { ch.phase = WAIT_LEASE; return true; }
  return fromSnapshot(root, ch) || sendRange(root, ch);
}

/** A grant straight from the range the previous grant txn returned (one round trip instead of two). Only when that
 *  snapshot is recent, shows room and nothing unconfirmed of ours; otherwise (false) a fresh range is read, because
 *  a refusal must come from a snapshot read during the wait (§3.3). A stale snapshot cannot over-grant: the txn
 *  compares the range's mod revision. */
function fromSnapshot(root: Root, ch: Chain): bool {
  const c = ch.snap;
  ch.snap = null;
  const f = root.config.fleet;
  if (c === null || f === null || nowMs() - ch.snapMs > u64(f.rebalanceMs)) return false;
  ch.lease = liveLease(root);
  if (ch.lease == 0) return false;
  const cap = capOf(root, ch.kind);
  const myKey = etcdPrefix(root, ch) + hex16(ch.lease);
  const pr = ch.range;
  sumRange(c.kvs, myKey, cap, pr);
  if (pr.mineBad || u64(grantedNow(root, ch.kind, ch.bucket)) < pr.mine) return false;
  const d = grantSize(cap, pr.sum, ch.scarce ? 1 : blockOf(root, ch.kind));
  return d > 0 && sendGrant(root, ch, c, myKey, d);
}

function sendGrant(root: Root, ch: Chain, rep: EtcdReply, myKey: string, d: u32): bool {
  const f = root.config.fleet;
  const busy = nowMs() + (f === null ? 0 : u64(f.callTimeoutMs)) + 2 * u64(root.config.tickMs);
  if (!changeGrant(root, ch.kind, ch.bucket, ch.lease, 0, busy)) return false;
  ch.delta = d;
  ch.token = post(root, "/v3/kv/txn", putIfUnchangedRequest(etcdPrefix(root, ch), u64(rep.revision), myKey,
    (u32(ch.range.mine) + d).toString(), ch.lease.toString()));
  ch.phase = ch.token == 0 ? IDLE : TXN;
  return ch.token != 0;
}

function sendRange(root: Root, ch: Chain): bool {
  ch.lease = liveLease(root);
  if (ch.lease == 0) { ch.phase = IDLE; return false; }
  ch.token = post(root, "/v3/kv/range", rangePrefixRequest(etcdPrefix(root, ch)));
  ch.phase = ch.token == 0 ? IDLE : RANGE;
  return ch.token != 0;
}

/** Ends a chain: wakes its waiters with `verdict` (V_PENDING keeps them queued for the next tick). */
function finish(root: Root, ch: Chain, verdict: u8): void {
  if (ch.phase == TXN && verdict == V_FAILED) ch.dirty = true; // a txn with an unknown outcome
  ch.phase = IDLE;
  ch.token = 0;
  ch.reg = false;
  ch.probe = false;
  if (ch.ret) { ch.ret = false; return; }
  if (verdict == V_PENDING) return;
  const todo = ch.waiting;
  ch.waiting = new Array<u32>(0);
  for (let i = 0; i < todo.length; i++) {
    const id = todo[i];
    if (!streams.has(id)) continue; // ended while waiting
    const s = changetype<FleetStream>(streams.get(id)); // the fleet module's streams are FleetStreams (index.ts)
    if (s.fleetSince != 0) wake(s, verdict);
  }
}

/** The process's lease became live (LEASE_OK) or could not be had (LEASE_FAILED): chains waiting for it go on. */
export function leaseSettled(root: Root, how: i32): void {
  const m = chainsOf(root);
  const ks = m.keys();
  for (let i = 0; i < ks.length; i++) {
    const ch = m.get(ks[i]);
    if (ch.phase != WAIT_LEASE) continue;
    if (how != LEASE_OK || !sendRange(root, ch)) finish(root, ch, V_FAILED);
  }
}

/** A call answer for one of this VM's limit chains. False: the token is not one of them. */
export function limitAnswer(root: Root, token: u32, status: u32, rep: EtcdReply): bool {
  const m = chainsOf(root);
  const ks = m.keys();
  for (let i = 0; i < ks.length; i++) {
    const ch = m.get(ks[i]);
    if (ch.token != token || ch.phase < RANGE) continue;
    ch.token = 0;
    const ok = status == 200 && rep.ok;
    if (!ok) root.metrics.inc(S.FleetFailures);
    if (ch.phase == RANGE) {
      if (!ok) finish(root, ch, V_FAILED);
      else if (ch.ret) onReturnRange(root, ch, rep);
      else onGrantRange(root, ch, rep);
    } else if (status == 404) { // the lease is gone: nothing was applied
      leaseLost(root, ch.lease);
      ch.phase = IDLE;
      finish(root, ch, V_FAILED);
    } else if (!ok) finish(root, ch, V_FAILED);
    else if (!rep.succeeded && !ch.reg) { // the range (or our key) changed since the snapshot: again (bounded)
      // Every failed compare means another holder's grant or return got through (progress), and the answer is the
      // next snapshot: a racing fleet may need several rounds, bounded by 4 × cas_max_attempts (and the watchdog).
      ch.attempts++;
      if (ch.attempts >= 4 * root.config.casMaxAttempts) finish(root, ch, V_FAILED);
      else if (!ch.ret && rep.ranged) { ch.phase = RANGE; onGrantRange(root, ch, rep); } // the answer is a fresh range
      else if (!sendRange(root, ch)) finish(root, ch, V_FAILED);
    } else if (ch.ret) {
      finish(root, ch, V_GRANTED);
    } else if (ch.reg) {
      ch.reg = false;
      if (rep.succeeded) {
        root.metrics.inc(S.FleetRegistered, i64(ch.delta));
        changeGrant(root, ch.kind, ch.bucket, ch.lease, i64(ch.delta), 0);
      } // else: the key exists already (another VM registered or granted first): nothing to do
      ch.phase = IDLE;
      finish(root, ch, V_GRANTED);
    } else {
      // etcd applied the grant: only now may the process use it
      const done = changeGrant(root, ch.kind, ch.bucket, ch.lease, i64(ch.delta), 0);
      if (rep.ranged) { ch.snap = rep; ch.snapMs = nowMs(); }
      ch.phase = IDLE;
      finish(root, ch, done ? V_GRANTED : V_FAILED);
    }
    return true;
  }
  return false;
}

function onGrantRange(root: Root, ch: Chain, rep: EtcdReply): void {
  const cap = capOf(root, ch.kind);
  const myKey = etcdPrefix(root, ch) + hex16(ch.lease);
  const pr = ch.range;
  sumRange(rep.kvs, myKey, cap, pr);
  if (pr.bad > 0) root.metrics.inc(S.Corrupt, i64(pr.bad));
  if (pr.mineBad) { finish(root, ch, V_FAILED); return; } // our own value is unreadable: never write below it
  const g = readGrant(root, ch.kind, ch.bucket);
  const local = g.lease == ch.lease ? g.granted : 0;
  const now = nowMs();
  // etcd may hold more for us than we may use: a sibling VM's grant whose answer is on its way, or one whose answer
  // was lost (given back by the tick's reconcile). The sum counts it, so growing on top of it stays exact.
  const sibling = u64(local) < pr.mine && g.busyUntilMs > now;
  if (u64(local) < pr.mine && !sibling) ch.dirty = true;
  // Near the cap, idle blocks held by one process would refuse another: blocks shrink to 1 and free slots go back
  // (scarce mode). It ends when a snapshot shows room for two blocks per holder.
  const block = blockOf(root, ch.kind);
  const room = u64(cap) > pr.sum ? u64(cap) - pr.sum : 0;
  ch.far = room >= 2 * u64(block) * u64(rep.kvs.length + 1);
  if (room < u64(block)) ch.scarce = true;
  else if (ch.far) ch.scarce = false;
  const d = grantSize(cap, pr.sum, ch.scarce ? 1 : block);
  if (d == 0) { finish(root, ch, sibling ? V_PENDING : V_FULL); return; } // no room: wait for the sibling's grant
  if (!sendGrant(root, ch, rep, myKey, d)) finish(root, ch, V_FAILED);
}

function onReturnRange(root: Root, ch: Chain, rep: EtcdReply): void {
  const myKey = etcdPrefix(root, ch) + hex16(ch.lease);
  const pr = ch.range;
  const cap = capOf(root, ch.kind);
  sumRange(rep.kvs, myKey, cap, pr);
  ch.far = u64(cap) > pr.sum && u64(cap) - pr.sum >= 2 * u64(blockOf(root, ch.kind)) * u64(rep.kvs.length + 1);
  if (pr.mineBad || pr.mineRev == 0) { ch.dirty = false; finish(root, ch, V_GRANTED); return; } // nothing of ours
  if (ch.probe) { // free slots held while the limit is near its cap: give every one of them back (scarce mode)
    ch.probe = false;
    const block = blockOf(root, ch.kind);
    if (pr.sum + u64(block) <= u64(cap)) { finish(root, ch, V_GRANTED); return; }
    ch.scarce = true;
    const r = returnSize(grantedNow(root, ch.kind, ch.bucket), usedOf(root, ch), 0);
    if (r == 0 || !lowerLocal(root, ch, ch.lease, r)) { finish(root, ch, V_GRANTED); return; }
    ch.delta = r;
  }
  const g = readGrant(root, ch.kind, ch.bucket);
  const local = g.lease == ch.lease ? g.granted : 0;
  // No grant in flight: etcd may be set to exactly what the process holds. Otherwise take off only our slots.
  let v: u64 = g.busyUntilMs <= nowMs() ? u64(local) : (pr.mine > u64(ch.delta) ? pr.mine - u64(ch.delta) : 0);
  if (v < u64(local)) v = u64(local);
  if (g.busyUntilMs <= nowMs()) ch.dirty = false;
  if (v >= pr.mine) { finish(root, ch, V_GRANTED); return; }
  root.metrics.inc(S.FleetReturned, i64(pr.mine - v));
  ch.token = post(root, "/v3/kv/txn", setOwnIfUnchangedRequest(myKey, pr.mineRev, v.toString(), ch.lease.toString()));
  ch.phase = ch.token == 0 ? IDLE : TXN;
  if (ch.token == 0) { ch.dirty = true; finish(root, ch, V_FAILED); }
}

/** Takes `r` slots off the grant locally, then makes sure no admission raced past the lowered grant (undone if so).
 *  Only after this may etcd be asked to lower its value (§3.2). */
function lowerLocal(root: Root, ch: Chain, lease: u64, r: u32): bool {
  if (!changeGrant(root, ch.kind, ch.bucket, lease, -i64(r), 0)) return false;
  if (usedOf(root, ch) > u64(grantedNow(root, ch.kind, ch.bucket))) {
    changeGrant(root, ch.kind, ch.bucket, lease, i64(r), 0);
    return false;
  }
  return true;
}

/** Connections still open from before the process's current lease (a partition outlived the old one, §5.3) are
 *  written to etcd under the new lease without the cap check, so that etcd's sum tells the truth again (other
 *  processes are refused until they close). Create-if-absent: a key already there means another VM did it or a
 *  grant came first (which covered them). True when a call was sent. */
function register(root: Root, ch: Chain, lease: u64, now: u64): bool {
  const g = readGrant(root, ch.kind, ch.bucket);
  if (g.lease == lease) return false;
  const used = usedOf(root, ch);
  if (used == 0) return false;
  const f = root.config.fleet;
  const busy = now + (f === null ? 0 : u64(f.callTimeoutMs)) + 2 * u64(root.config.tickMs);
  if (!changeGrant(root, ch.kind, ch.bucket, lease, 0, busy)) return false; // now under this lease: registers once
  ch.reg = true;
  ch.ret = false;
  ch.lease = lease;
  ch.delta = u32(used);
  ch.attempts = 0;
  ch.chainMs = now;
  ch.token = post(root, "/v3/kv/txn", createIfAbsentRequest(etcdPrefix(root, ch) + hex16(lease), used.toString(),
    lease.toString()));
  ch.phase = ch.token == 0 ? IDLE : TXN;
  if (ch.token == 0) ch.reg = false;
  return true;
}

/** Tick: the watchdog, waits left pending, and returns of slots nobody used for a whole rebalance period. */
export function limitsTick(root: Root, vm: FleetVm): void {
  const f = root.config.fleet;
  if (f === null) return;
  const now = nowMs();
  if (root.config.maxPerPod > 0 && root.pod.length > 0) chainOf(root, POD, podId(root.pod)); // registers after a partition
  const m = chainsOf(root);
  const ks = m.keys();
  for (let i = 0; i < ks.length; i++) {
    const ch = m.get(ks[i]);
    if (ch.phase != IDLE) {
      // a chain whose answer never came (bounded wait)
      if (now - ch.chainMs > u64(f.callTimeoutMs) * u64(2 * root.config.casMaxAttempts + 4)) finish(root, ch, V_FAILED);
      else if (ch.phase == WAIT_LEASE && vm.phase != L_GRANT) { // the other VM's lease grant ended: look again
        const l = needLease(root, vm);
        if (l == LEASE_OK) { if (!sendRange(root, ch)) finish(root, ch, V_FAILED); }
        else if (l == LEASE_FAILED) finish(root, ch, V_FAILED);
      }
      continue;
    }
    if (ch.waiting.length > 0) { // waiters left pending (V_PENDING): ask again
      if (!startGrant(root, ch)) finish(root, ch, V_FAILED);
      continue;
    }
    const lease = liveLease(root);
    if (lease == 0) { ch.freeSince = 0; ch.dirty = false; continue; }
    if (register(root, ch, lease, now)) continue;
    const local = grantedNow(root, ch.kind, ch.bucket);
    const used = usedOf(root, ch);
    const r = returnSize(local, used, ch.scarce ? 0 : blockOf(root, ch.kind));
    // nothing to return, nothing to reconcile, and either no free slot or (far from the cap) no need to look
    if (r == 0 && !ch.dirty && (u64(local) <= used || ch.far)) { ch.freeSince = 0; continue; }
    if (ch.freeSince == 0) { ch.freeSince = now; continue; }
    if (now - ch.freeSince < u64(f.rebalanceMs)) continue;
    ch.freeSince = 0;
    if (r > 0 && !lowerLocal(root, ch, lease, r)) continue;
    ch.ret = true;
    ch.probe = r == 0 && !ch.dirty; // a few free slots kept: look once per period whether others need them
    ch.delta = r;
    ch.attempts = 0;
    ch.chainMs = now;
    if (!sendRange(root, ch)) { ch.ret = false; ch.dirty = true; }
  }
}
