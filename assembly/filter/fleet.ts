// Fleet mode, increment 1 (docs/fleet.md): a global per-pod cap across Envoy processes through etcd. Fleet module only
// (every entry point is reached through `if (FLEET)`). One etcd lease per process (record in shared data), the pod's
// slots granted to the process as the etcd key <prefix>pod/<pod>/<lease hex> under that lease, grown by a txn that
// compares the pod range's mod revision. Admission is local (the pod ledger, cap = granted slots); an upgrade that
// finds no free slot waits (StopIteration) while this VM's root asks etcd, then continues or gets its reply.
import { FailureMode } from "../core/config";
import { S, Reason } from "../core/stats";
import { ST_OK } from "../core/store";
import { Outcome, acquirePod, podKey, fleetKey } from "../core/ledger";
import { rangePrefixRequest, putIfUnchangedRequest, leaseKeepaliveRequest, parseReply, EtcdReply } from "../core/etcd";
import { FleetRecord, decodeFleet, encodeFleet, hex16, sumRange, grantSize, PodRange,
         LEASE_NONE, LEASE_PENDING, LEASE_LIVE } from "../core/fleet";
import { nowMs, setEffectiveContext, log, propertyString } from "../host/abi";
import { fnv1a } from "../core/codec";
import { utf8Encode } from "../core/utf8";
import { httpPost, callStatus, callBody, continueRequest } from "../host/http";
import { Root, roots, LOG_WARN } from "./root";
import { Stream, streams } from "./stream";

const IDLE: i32 = 0;       // no call of this VM's chain in flight
const LEASE: i32 = 1;      // /v3/lease/grant sent
const RANGE: i32 = 2;      // /v3/kv/range of the pod sent
const TXN: i32 = 3;        // the grant txn sent
const WAIT_LEASE: i32 = 4; // another VM of the process is granting the lease: look again at the next tick

const FULL: i32 = 0;       // etcd: no room under the cap
const GRANTED: i32 = 1;    // etcd granted slots to this process
const FAILED: i32 = 2;     // etcd could not help (call failed, timed out, unreadable answer, lease lost)

/** One VM's fleet state (per root context). Holds no managed reference to a Root or Stream (no cycles, AS900). */
class FleetVm {
  phase: i32 = IDLE;
  token: u32 = 0;
  attempts: u32 = 0;
  chainMs: u64 = 0;
  leaseId: u64 = 0;
  target: u32 = 0;          // the value the grant txn in flight writes for this process
  g0: u32 = 0;              // the process's granted slots when this chain started
  kaToken: u32 = 0;
  kaMs: u64 = 0;
  kaId: u64 = 0;
  seq: u64 = 0;
  node: u64 = 0;            // hash of xds.node.id: lease ids of processes started in the same millisecond differ
  waiting: Array<u32> = new Array<u32>(0);
  range: PodRange = new PodRange();
}

// Module-level state is created on first use: this file is imported by the local module too (its calls fold away
// there), and a top-level initializer would run, and take bytes, in every module.
let vmTable: Map<u32, FleetVm> | null = null;
function table(): Map<u32, FleetVm> {
  let t = vmTable;
  if (t === null) { t = new Map<u32, FleetVm>(); vmTable = t; }
  return t;
}

function vmOf(root: Root): FleetVm {
  const vms = table();
  if (!vms.has(root.id)) vms.set(root.id, new FleetVm());
  return vms.get(root.id);
}


function readRecord(root: Root): FleetRecord {
  const store = root.store;
  let r: FleetRecord | null = null;
  if (store.get(fleetKey(root.config.keyPrefix)) == ST_OK) r = decodeFleet(store.valuePtr, store.valueLen);
  lastCas = store.cas;
  store.done();
  if (r === null) { root.metrics.inc(S.Corrupt); return new FleetRecord(); } // rewritten by the next claim
  return r;
}
let lastCas: u32 = 0;

function writeRecord(root: Root, r: FleetRecord, cas: u32): bool {
  return root.store.set(fleetKey(root.config.keyPrefix), encodeFleet(r), cas) == ST_OK;
}

function podPrefix(root: Root): string {
  const f = root.config.fleet;
  let p = "";
  if (f !== null) p = f.prefix;
  return p + "pod/" + root.pod + "/";
}

function post(root: Root, path: string, body: string): u32 {
  const f = root.config.fleet;
  if (f === null) return 0;
  root.metrics.inc(S.FleetCalls);
  const t = httpPost(f.cluster, path, body, f.callTimeoutMs);
  if (t == 0) root.metrics.inc(S.FleetFailures);
  return t;
}

/** The ledger admission with the process's granted slots as the cap (the global cap bounds what etcd grants). */
function admitLocal(s: Stream, cap: u32): Outcome {
  const root = s.root;
  const cfg = root.config;
  if (cap == 0 && cfg.enforce) return Outcome.OverLimit;
  const res = root.res;
  res.reset();
  acquirePod(root.store, cfg.keyPrefix, cfg.maxPods, root.pod, root.podSlot, root.vm, cap, !cfg.enforce,
             cfg.casMaxAttempts, res);
  if (res.retries > 0) root.metrics.inc(S.CasRetries, i64(res.retries));
  if (res.slot >= 0) root.podSlot = res.slot;
  if (res.outcome == Outcome.Admitted) {
    s.podKey = podKey(cfg.keyPrefix, res.slot);
    s.pod = root.pod;
    root.metrics.inc(S.Active, 1);
  }
  return res.outcome;
}

function granted(root: Root): u32 {
  const r = readRecord(root);
  return r.state == LEASE_LIVE ? r.granted : 0;
}

/** Stream side, inbound pod slot at request headers. True: admitted now. False: rejected (local reply sent) or
 *  waiting for etcd (s.fleetSince != 0; the caller returns StopIteration either way). */
export function fleetAcquire(s: Stream): bool {
  const root = s.root;
  if (!root.ensureLease()) return s.contention("", root.pod);
  const o = admitLocal(s, granted(root));
  if (o == Outcome.Admitted) return true;
  if (o != Outcome.OverLimit) return s.contention("", root.pod);
  const vm = vmOf(root);
  s.fleetSince = nowMs();
  vm.waiting.push(s.id);
  root.metrics.inc(S.FleetWaits);
  if (vm.phase != IDLE) return false;
  if (startChain(root, vm)) return false;
  vm.waiting.pop(); // nothing was sent: decide now, inside this callback
  s.fleetSince = 0;
  return failed(s);
}

/** etcd could not help this upgrade: failure_mode (open: within granted + local_cap_per_pod). True = admitted. */
function failed(s: Stream): bool {
  const root = s.root;
  const f = root.config.fleet;
  if (root.config.failureMode == FailureMode.Open && f !== null) {
    if (f.localCapPerPod > 0 && admitLocal(s, granted(root) + f.localCapPerPod) == Outcome.Admitted) {
      root.metrics.inc(S.FleetOpenAdmits);
      return true;
    }
  }
  root.metrics.inc(S.FleetUnavailable);
  return !s.reject(Reason.Contention, "", root.pod);
}

/** Starts (or continues) this VM's chain toward a grant. False when nothing could be sent. */
function startChain(root: Root, vm: FleetVm, fresh: bool = true): bool {
  const f = root.config.fleet;
  if (f === null) return false;
  if (fresh) {
    vm.attempts = 0;
    vm.chainMs = nowMs();
    vm.g0 = granted(root);
  }
  for (let i = 0; i < 4; i++) {
    const r = readRecord(root);
    const cas = lastCas;
    if (r.state == LEASE_LIVE) { vm.leaseId = r.id; return sendRange(root, vm); }
    const now = nowMs();
    if (r.state == LEASE_PENDING && now - r.sinceMs < u64(f.callTimeoutMs) + 2 * u64(root.config.tickMs)) {
      vm.phase = WAIT_LEASE;
      return true;
    }
    // No lease (or its grant's VM went silent): claim the record with a new id, then ask etcd for exactly that id.
    vm.seq++;
    if (vm.node == 0) {
      let n = propertyString(utf8Encode("xds\0node\0id"));
      if (n === null) n = "";
      vm.node = (u64(fnv1a(n)) << 20) | 1;
    }
    const id = ((now * 1000003) ^ (u64(root.vm) << 52) ^ (vm.node << 22) ^ (u64(root.id) << 12) ^ vm.seq) & 0x3fffffffffffffff;
    r.state = LEASE_PENDING;
    r.id = id == 0 ? 1 : id;
    r.granted = 0;
    r.sinceMs = now;
    if (!writeRecord(root, r, cas)) continue;
    vm.leaseId = r.id;
    vm.token = post(root, "/v3/lease/grant", "{\"TTL\":\"" + f.leaseTtlSeconds.toString() + "\",\"ID\":\"" + r.id.toString() + "\"}");
    if (vm.token == 0) { dropLease(root, r.id, LEASE_PENDING); vm.phase = IDLE; return false; }
    vm.phase = LEASE;
    return true;
  }
  vm.phase = IDLE;
  return false;
}

function sendRange(root: Root, vm: FleetVm): bool {
  vm.token = post(root, "/v3/kv/range", rangePrefixRequest(podPrefix(root)));
  vm.phase = vm.token == 0 ? IDLE : RANGE;
  return vm.token != 0;
}

/** Sets the record to "no lease" if it still holds lease `id` in state `st` (a lost or refused lease). */
function dropLease(root: Root, id: u64, st: u8): void {
  for (let i = 0; i < 4; i++) {
    const r = readRecord(root);
    if (r.id != id || r.state != st) return;
    const fresh = new FleetRecord();
    fresh.sinceMs = nowMs();
    if (writeRecord(root, fresh, lastCas)) return;
  }
}

export function onHttpCallResponse(rootId: u32, token: u32, headers: u32, bodySize: u32): void {
  if (!roots.has(rootId)) return;
  const root = roots.get(rootId);
  const f = root.config.fleet;
  const vms = table();
  if (f === null || !vms.has(rootId)) return;
  const vm = vms.get(rootId);
  const status = callStatus();
  const body = callBody(bodySize, 1 << 20);
  if (token == vm.kaToken && token != 0) {
    vm.kaToken = 0;
    const ka = parseReply(body);
    if (status != 200 || !ka.ok) { root.metrics.inc(S.FleetFailures); return; }
    if (ka.ttl <= 0) leaseLost(root, vm.kaId); // 200 without TTL: etcd no longer has the lease
    return;
  }
  if (token != vm.token || token == 0) return;
  vm.token = 0;
  const rep = parseReply(body);
  const ok = status == 200 && rep.ok;
  if (!ok) root.metrics.inc(S.FleetFailures);
  if (vm.phase == LEASE) {
    if (ok && rep.ttl > 0) {
      for (let i = 0; i < 4; i++) {
        const r = readRecord(root);
        if (r.id != vm.leaseId || r.state != LEASE_PENDING) break;
        r.state = LEASE_LIVE;
        r.sinceMs = nowMs();
        if (writeRecord(root, r, lastCas)) break;
      }
      if (vm.waiting.length > 0 && sendRange(root, vm)) return;
      resolve(root, vm, vm.waiting.length > 0 ? FAILED : GRANTED);
      return;
    }
    dropLease(root, vm.leaseId, LEASE_PENDING);
    // 412: another process holds this id (etcd's "lease already exists"): draw a new one at once (bounded)
    if (status == 412 && vm.attempts + 1 < root.config.casMaxAttempts) {
      vm.attempts++;
      if (startChain(root, vm, false)) return;
    }
    log(LOG_WARN, "ws_governor: fleet: lease grant failed, status " + status.toString());
    resolve(root, vm, FAILED);
    return;
  }
  if (vm.phase == RANGE) {
    if (!ok) { resolve(root, vm, FAILED); return; }
    onRange(root, vm, rep);
    return;
  }
  if (vm.phase == TXN) {
    if (status == 404) { leaseLost(root, vm.leaseId); resolve(root, vm, FAILED); return; } // the lease is gone
    if (!ok) { resolve(root, vm, FAILED); return; }
    if (!rep.succeeded) { // the pod range changed since the snapshot: read it again (bounded)
      vm.attempts++;
      if (vm.attempts < root.config.casMaxAttempts && sendRange(root, vm)) return;
      resolve(root, vm, FAILED);
      return;
    }
    raiseGranted(root, vm.leaseId, vm.target);
    resolve(root, vm, GRANTED);
  }
}

function onRange(root: Root, vm: FleetVm, rep: EtcdReply): void {
  const f = root.config.fleet;
  if (f === null) return;
  const cap = root.config.maxPerPod;
  const myKey = podPrefix(root) + hex16(vm.leaseId);
  const pr = vm.range;
  sumRange(rep.kvs, myKey, cap, pr);
  if (pr.bad > 0) root.metrics.inc(S.Corrupt, i64(pr.bad));
  if (pr.mineBad) { resolve(root, vm, FAILED); return; } // our own value is unreadable: never write below it
  // etcd's value for this process only grows while its lease lives (nothing is returned in this increment), so what
  // the snapshot shows is ours: a grant of a sibling VM whose answer is still on its way, or one whose answer was lost
  raiseGranted(root, vm.leaseId, u32(pr.mine));
  // Another VM of this process was granted slots meanwhile: try those before asking etcd for more.
  if (granted(root) > vm.g0) { resolve(root, vm, GRANTED); return; }
  const d = grantSize(cap, pr.sum, f.block);
  if (d == 0) { resolve(root, vm, FULL); return; }
  vm.target = u32(pr.mine) + d;
  vm.token = post(root, "/v3/kv/txn",
    putIfUnchangedRequest(podPrefix(root), u64(rep.revision), myKey, vm.target.toString(), vm.leaseId.toString()));
  vm.phase = vm.token == 0 ? IDLE : TXN;
  if (vm.token == 0) resolve(root, vm, FAILED);
}

/** etcd holds `value` slots for lease `id` (a txn of ours succeeded, or a fresh snapshot shows it): the process may
 *  use that many. A maximum, not a sum: etcd's value only grows while the lease lives, so the largest value seen is
 *  never above etcd's, whatever order the VMs' answers arrive in (never before etcd said so). */
function raiseGranted(root: Root, id: u64, value: u32): void {
  for (let i: u32 = 0; i < 16; i++) {
    const r = readRecord(root);
    if (r.id != id || r.state != LEASE_LIVE) return; // lost meanwhile: the slots died with the lease
    if (r.granted >= value) return;
    r.granted = value;
    if (writeRecord(root, r, lastCas)) return;
  }
}

function leaseLost(root: Root, id: u64): void {
  root.metrics.inc(S.FleetLeaseLost);
  log(LOG_WARN, "ws_governor: fleet: etcd lease " + id.toString() + " lost; granted slots dropped");
  dropLease(root, id, LEASE_LIVE);
}

/** Decides every waiting upgrade after a chain ended (GRANTED, FULL or FAILED), each under its own context. */
function resolve(root: Root, vm: FleetVm, how: i32): void {
  vm.phase = IDLE;
  vm.token = 0;
  const todo = vm.waiting;
  vm.waiting = new Array<u32>(0);
  const f = root.config.fleet;
  const limit = f === null ? 0 : u64(f.callTimeoutMs) * 4;
  const now = nowMs();
  for (let i = 0; i < todo.length; i++) {
    const id = todo[i];
    if (!streams.has(id)) continue; // ended while waiting
    const s = streams.get(id);
    if (s.finished || s.fleetSince == 0) continue;
    if (setEffectiveContext(id) != 0) continue;
    if (how != FAILED) {
      const o = admitLocal(s, granted(root));
      if (o == Outcome.Admitted) { s.fleetSince = 0; continueRequest(); continue; }
      if (o == Outcome.OverLimit && how == GRANTED && now - s.fleetSince < limit) { vm.waiting.push(id); continue; }
      s.fleetSince = 0;
      if (o == Outcome.OverLimit && how == FULL) {
        if (!s.reject(Reason.PodFull, "", root.pod)) continueRequest();
      } else if (!s.contention("", root.pod)) continueRequest();
      continue;
    }
    s.fleetSince = 0;
    if (failed(s)) continueRequest();
  }
  setEffectiveContext(root.id);
  if (vm.waiting.length > 0 && !startChain(root, vm)) resolve(root, vm, FAILED);
}

/** Root tick: keepalive every TTL/3, a lease for an idle process, retries for upgrades left waiting, a watchdog. */
export function fleetTick(root: Root): void {
  const f = root.config.fleet;
  if (f === null) return;
  const vm = vmOf(root);
  const now = nowMs();
  if (vm.phase != IDLE && now - vm.chainMs > u64(f.callTimeoutMs) * u64(2 * root.config.casMaxAttempts + 4)) {
    resolve(root, vm, FAILED); // a chain whose answer never came (bounded wait)
  }
  // a keepalive whose answer never came (Envoy always answers, with a 504 after the timeout): send the next one
  if (vm.kaToken != 0 && now - vm.kaMs > 2 * u64(f.callTimeoutMs) + u64(root.config.tickMs)) vm.kaToken = 0;
  const r = readRecord(root);
  if (r.state == LEASE_LIVE && vm.kaToken == 0 && now - vm.kaMs >= u64(f.leaseTtlSeconds) * 1000 / 3) {
    vm.kaMs = now;
    vm.kaId = r.id;
    vm.kaToken = post(root, "/v3/lease/keepalive", leaseKeepaliveRequest(r.id.toString()));
  }
  if (vm.phase == WAIT_LEASE || (vm.phase == IDLE && (vm.waiting.length > 0 || r.state != LEASE_LIVE))) {
    if (!startChain(root, vm)) resolve(root, vm, FAILED);
  }
}
