// Fleet mode (fleet module only): the process's etcd lease (docs/fleet.md §4.1), shared by its worker VMs through a
// record in shared data, and the per-VM state of every fleet chain. One lease per Envoy process: the first VM that
// needs it claims the record with a fresh id, then asks etcd for exactly that id; every VM renews it every TTL/3.
import { S } from "../core/stats";
import { ST_OK } from "../core/store";
import { fleetKey } from "../core/ledger";
import { leaseKeepaliveRequest, EtcdReply } from "../core/etcd";
import { FleetRecord, decodeFleet, encodeFleet, LEASE_PENDING, LEASE_LIVE } from "../core/fleet";
import { nowMs, log, propertyString } from "../host/abi";
import { fnv1a } from "../core/codec";
import { utf8Encode } from "../core/utf8";
import { httpPost } from "../host/http";
import { Root, LOG_WARN } from "./root";

export const L_IDLE: i32 = 0;    // no lease call of this VM in flight
export const L_GRANT: i32 = 1;   // /v3/lease/grant sent
export const L_OTHER: i32 = 2;   // another VM of the process is granting the lease: look again at the next tick

/** Lease state for callers. */
export const LEASE_FAILED: i32 = -1;
export const LEASE_WAIT: i32 = 0;
export const LEASE_OK: i32 = 1;

/** One VM's fleet state (per root context). Holds no managed reference to a Root or Stream (no cycles). */
export class FleetVm {
  phase: i32 = L_IDLE;
  token: u32 = 0;
  attempts: u32 = 0;
  sentMs: u64 = 0;
  leaseId: u64 = 0;        // the id this VM asked etcd for
  kaToken: u32 = 0;
  kaMs: u64 = 0;
  kaId: u64 = 0;
  kaSent: u64 = 0;         // send time of the keepalive in flight
  seq: u64 = 0;
  node: u64 = 0;           // hash of xds.node.id: lease ids of processes started in the same millisecond differ
  rate: usize = 0;         // this VM's rate-limit state (fleet_rate.ts RateVm), held by address like the tables
}

// Module-level state is created on first use and held by address: a global of a class type would make the local
// module (which imports this file, its calls folded away) carry the class's GC visitor and everything it reaches.
let vmTablePtr: usize = 0;

function vmTable(): Map<u32, FleetVm> {
  if (vmTablePtr == 0) {
    const t = new Map<u32, FleetVm>();
    vmTablePtr = __retain(changetype<usize>(t)); // kept for the life of the VM
  }
  return changetype<Map<u32, FleetVm>>(vmTablePtr);
}

export function vmOf(root: Root): FleetVm {
  const t = vmTable();
  if (!t.has(root.id)) t.set(root.id, new FleetVm());
  return t.get(root.id);
}

export let lastCas: u32 = 0;

export function readRecord(root: Root): FleetRecord {
  const store = root.store;
  let r: FleetRecord | null = null;
  if (store.get(fleetKey(root.config.keyPrefix)) == ST_OK) r = decodeFleet(store.valuePtr, store.valueLen);
  lastCas = store.cas;
  store.done();
  if (r === null) { root.metrics.inc(S.Corrupt); return new FleetRecord(); } // rewritten by the next claim
  return r;
}

export function writeRecord(root: Root, r: FleetRecord, cas: u32): bool {
  return root.store.set(fleetKey(root.config.keyPrefix), encodeFleet(r), cas) == ST_OK;
}

/** The local deadline D (docs/fleet.md §5.3): a lease is used only until TTL − margin after the send of the last
 *  grant or keepalive that etcd answered with a TTL. A process cut off from etcd then stops using its grants before
 *  etcd can expire them and give them to others. */
function expired(root: Root, r: FleetRecord, now: u64): bool {
  const f = root.config.fleet;
  if (f === null) return true;
  const ttl = u64(f.leaseTtlSeconds) * 1000;
  let margin = u64(f.callTimeoutMs) + u64(root.config.tickMs);
  if (margin > ttl / 3) margin = ttl / 3;
  return now > r.sinceMs && now - r.sinceMs > ttl - margin;
}

/** The process's live etcd lease id, 0 when there is none (or it is past its local deadline). */
export function liveLease(root: Root): u64 {
  const r = readRecord(root);
  return r.state == LEASE_LIVE && !expired(root, r, nowMs()) ? r.id : 0;
}

/** Every etcd call goes through here (from the root context): counted; 0 = Envoy refused the call. */
export function post(root: Root, path: string, body: string): u32 {
  const f = root.config.fleet;
  if (f === null) return 0;
  root.metrics.inc(S.FleetCalls);
  const t = httpPost(f.cluster, path, body, f.callTimeoutMs);
  if (t == 0) root.metrics.inc(S.FleetFailures);
  return t;
}

/** LEASE_OK (live), LEASE_WAIT (a grant of this or another VM is in flight: the caller waits for leaseAnswer or the
 *  next tick) or LEASE_FAILED (nothing could be sent). */
export function needLease(root: Root, vm: FleetVm): i32 {
  const f = root.config.fleet;
  if (f === null) return LEASE_FAILED;
  if (vm.phase == L_GRANT) return LEASE_WAIT;
  for (let i = 0; i < 4; i++) {
    const r = readRecord(root);
    const cas = lastCas;
    const now = nowMs();
    if (r.state == LEASE_LIVE && !expired(root, r, now)) { vm.phase = L_IDLE; return LEASE_OK; }
    if (r.state == LEASE_PENDING && now - r.sinceMs < u64(f.callTimeoutMs) + 2 * u64(root.config.tickMs)) {
      vm.phase = L_OTHER;
      return LEASE_WAIT;
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
    vm.sentMs = now;
    vm.token = post(root, "/v3/lease/grant", "{\"TTL\":\"" + f.leaseTtlSeconds.toString() + "\",\"ID\":\"" + r.id.toString() + "\"}");
    if (vm.token == 0) { dropLease(root, r.id, LEASE_PENDING); vm.phase = L_IDLE; return LEASE_FAILED; }
    vm.phase = L_GRANT;
    return LEASE_WAIT;
  }
  vm.phase = L_IDLE;
  return LEASE_FAILED;
}

/** The answer to this VM's lease grant: LEASE_OK, LEASE_WAIT (a new id was asked for) or LEASE_FAILED. */
export function leaseAnswer(root: Root, vm: FleetVm, status: u32, rep: EtcdReply): i32 {
  vm.token = 0;
  vm.phase = L_IDLE;
  if (status == 200 && rep.ok && rep.ttl > 0) {
    for (let i = 0; i < 4; i++) {
      const r = readRecord(root);
      if (r.id != vm.leaseId || r.state != LEASE_PENDING) break;
      r.state = LEASE_LIVE;
      r.sinceMs = vm.sentMs; // the local deadline counts from the grant's send
      if (writeRecord(root, r, lastCas)) break;
    }
    return liveLease(root) != 0 ? LEASE_OK : LEASE_FAILED;
  }
  root.metrics.inc(S.FleetFailures);
  dropLease(root, vm.leaseId, LEASE_PENDING);
  // 412: another process holds this id (etcd's "lease already exists"): draw a new one at once (bounded)
  if (status == 412 && vm.attempts + 1 < root.config.casMaxAttempts) {
    vm.attempts++;
    const r = needLease(root, vm);
    if (r != LEASE_FAILED) return r;
  }
  vm.attempts = 0;
  log(LOG_WARN, "ws_governor: fleet: lease grant failed, status " + status.toString());
  return LEASE_FAILED;
}

/** Sets the record to "no lease" if it still holds lease `id` in state `st` (a lost or refused lease). */
export function dropLease(root: Root, id: u64, st: u8): void {
  for (let i = 0; i < 4; i++) {
    const r = readRecord(root);
    if (r.id != id || r.state != st) return;
    const fresh = new FleetRecord();
    fresh.sinceMs = nowMs();
    if (writeRecord(root, fresh, lastCas)) return;
  }
}

/** etcd no longer has lease `id`: every grant under it is void (grant values name their lease). */
export function leaseLost(root: Root, id: u64): void {
  root.metrics.inc(S.FleetLeaseLost);
  log(LOG_WARN, "ws_governor: fleet: etcd lease " + id.toString() + " lost; granted slots dropped");
  dropLease(root, id, LEASE_LIVE);
}

/** Tick: a keepalive every TTL/3 (any VM may send it; several VMs renewing one lease is harmless). */
export function keepalive(root: Root, vm: FleetVm): void {
  const f = root.config.fleet;
  if (f === null) return;
  const now = nowMs();
  // a keepalive whose answer never came (Envoy always answers, with a 504 after the timeout): send the next one
  if (vm.kaToken != 0 && now - vm.kaMs > 2 * u64(f.callTimeoutMs) + u64(root.config.tickMs)) vm.kaToken = 0;
  if (vm.phase == L_GRANT && now - vm.sentMs > 2 * u64(f.callTimeoutMs) + u64(root.config.tickMs)) vm.phase = L_IDLE;
  const id = liveLease(root);
  if (id != 0 && vm.kaToken == 0 && now - vm.kaMs >= u64(f.leaseTtlSeconds) * 1000 / 3) {
    vm.kaMs = now;
    vm.kaSent = now;
    vm.kaId = id;
    vm.kaToken = post(root, "/v3/lease/keepalive", leaseKeepaliveRequest(id.toString()));
  }
}

export function keepaliveAnswer(root: Root, vm: FleetVm, status: u32, rep: EtcdReply): void {
  vm.kaToken = 0;
  if (status != 200 || !rep.ok) { root.metrics.inc(S.FleetFailures); return; }
  if (rep.ttl <= 0) { leaseLost(root, vm.kaId); return; } // 200 without TTL: etcd no longer has the lease
  for (let i = 0; i < 4; i++) { // renewed: the local deadline moves to this keepalive's send + TTL − margin
    const r = readRecord(root);
    if (r.id != vm.kaId || r.state != LEASE_LIVE || r.sinceMs >= vm.kaSent) return;
    r.sinceMs = vm.kaSent;
    if (writeRecord(root, r, lastCas)) return;
  }
}
