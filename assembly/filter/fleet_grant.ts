// Fleet mode (fleet module only): the state of one limit (a pod, a client bucket) in this process — its grant in
// shared data, its connections in the ledger, its etcd key range — and each VM's chain of etcd calls for it. Used by
// fleet_limit.ts (admission, grants, returns). Grant values: core/fleet.ts Grant; exactness: docs/fleet.md §3.2.
import { S } from "../core/stats";
import { ST_OK } from "../core/store";
import { podKey, clientKey, fleetGrantKey } from "../core/ledger";
import { decodeLedger } from "../core/codec";
import { EtcdReply } from "../core/etcd";
import { Grant, decodeGrant, encodeGrant, PodRange } from "../core/fleet";
import { Root } from "./root";
import { liveLease } from "./fleet_lease";

export const POD: u8 = 0;
export const CLIENT: u8 = 1;

export const IDLE: i32 = 0;
export const WAIT_LEASE: i32 = 1; // waiting for the process's lease
export const RANGE: i32 = 2;      // /v3/kv/range of the limit sent
export const TXN: i32 = 3;        // the grant (or return) txn sent
export const V_PENDING: u8 = 4;   // chain end: another VM's grant is in flight; waiters stay queued, the tick looks again

/** One VM's chain of etcd calls for one limit. */
export class Chain {
  kind: u8;
  bucket: u32;
  phase: i32 = IDLE;
  token: u32 = 0;
  attempts: u32 = 0;
  chainMs: u64 = 0;
  lease: u64 = 0;
  delta: u32 = 0;           // grant: slots asked for; return: slots taken off locally
  ret: bool = false;        // this chain returns slots (background) instead of granting
  reg: bool = false;        // this chain registers connections opened under an older lease (§5.3)
  dirty: bool = false;      // etcd may hold more for this process than its grant says: reconcile on the tick
  scarce: bool = false;     // near the cap (§3.3): grants of 1, and every free slot goes back after rebalance_ms
  probe: bool = false;      // this return chain only looks whether the limit is near its cap (then returns)
  far: bool = false;        // the last snapshot showed room for two blocks per holder: no probes needed
  snap: EtcdReply | null = null; // the range as the last grant txn left it (the next grant may start from it)
  snapMs: u64 = 0;
  freeSince: u64 = 0;       // since when slots were returnable (0 = not)
  waiting: Array<u32> = new Array<u32>(0);
  range: PodRange = new PodRange();
  constructor(kind: u8, bucket: u32) { this.kind = kind; this.bucket = bucket; }
}

let chainTablePtr: usize = 0; // held by address, as fleet_lease.ts's table
export function chainsOf(root: Root): Map<u32, Chain> {
  if (chainTablePtr == 0) chainTablePtr = __retain(changetype<usize>(new Map<u32, Map<u32, Chain>>()));
  const t = changetype<Map<u32, Map<u32, Chain>>>(chainTablePtr);
  if (!t.has(root.id)) t.set(root.id, new Map<u32, Chain>());
  return t.get(root.id);
}
export function chainOf(root: Root, kind: u8, bucket: u32): Chain {
  const m = chainsOf(root);
  const k = kind == POD ? 0x80000000 | bucket : bucket;
  if (!m.has(k)) m.set(k, new Chain(kind, bucket));
  return m.get(k);
}

// Pods by a VM-local number (a limit's `bucket` for kind POD): inbound, the sidecar's pod; upstream, every
// upstream.address seen at a 101. Held by address (see fleet_lease.ts).
let podNamesPtr: usize = 0;
export function podNames(): Array<string> {
  if (podNamesPtr == 0) podNamesPtr = __retain(changetype<usize>(new Array<string>(0)));
  return changetype<Array<string>>(podNamesPtr);
}
export function podId(name: string): u32 {
  const a = podNames();
  for (let i = 0; i < a.length; i++) if (a[i] == name) return u32(i);
  a.push(name);
  return u32(a.length - 1);
}
export function podName(id: u32): string {
  const a = podNames();
  return id < u32(a.length) ? a[id] : "";
}

/** The shared-data grant of a limit. The inbound pod's key is created at configure; an upstream pod's on its first
 *  grant (Envoy ignores the cas of a set on a missing key: two first grants racing may keep one of the two values,
 *  which only leaves etcd holding more than the process uses until the next return reconciles it). */
export function grantKey(root: Root, kind: u8, bucket: u32): string {
  if (kind == POD) {
    const pod = podName(bucket);
    if (pod != root.pod) return root.config.keyPrefix + ":fgp:" + pod;
  }
  return fleetGrantKey(root.config.keyPrefix, kind == POD, bucket);
}
export function etcdPrefix(root: Root, ch: Chain): string {
  const f = root.config.fleet;
  const p = f === null ? "" : f.prefix;
  return ch.kind == POD ? p + "pod/" + podName(ch.bucket) + "/" : p + "client/" + ch.bucket.toString() + "/";
}
export function capOf(root: Root, kind: u8): u32 { return kind == POD ? root.config.maxPerPod : root.config.maxPerClient; }
export function blockOf(root: Root, kind: u8): u32 {
  const f = root.config.fleet;
  return kind == CLIENT || f === null ? 1 : f.block;
}

let grantCas: u32 = 0;
export function readGrant(root: Root, kind: u8, bucket: u32): Grant {
  const store = root.store;
  let g: Grant | null = null;
  if (store.get(grantKey(root, kind, bucket)) == ST_OK) g = decodeGrant(store.valuePtr, store.valueLen);
  grantCas = store.cas;
  store.done();
  if (g === null) { root.metrics.inc(S.Corrupt); return new Grant(); } // malformed: nothing granted
  return g;
}
export function writeGrant(root: Root, kind: u8, bucket: u32, g: Grant, cas: u32): bool {
  return root.store.set(grantKey(root, kind, bucket), encodeGrant(g), cas) == ST_OK;
}

/** Slots the process may use for this limit now (0 without a live lease or under an older lease). */
export function grantedNow(root: Root, kind: u8, bucket: u32): u32 {
  const lease = liveLease(root);
  if (lease == 0) return 0;
  const g = readGrant(root, kind, bucket);
  return g.lease == lease ? g.granted : 0;
}

/** Changes the grant by `delta` under lease `lease` (CAS; a grant under an older lease counts as 0). With `floor`
 *  (a return): refused when the result would be below it. False when the lease is not live or the CAS kept failing. */
export function changeGrant(root: Root, kind: u8, bucket: u32, lease: u64, delta: i64, busyUntil: u64): bool {
  for (let i = 0; i < 16; i++) {
    if (liveLease(root) != lease) return false;
    const g = readGrant(root, kind, bucket);
    const cas = grantCas;
    if (g.lease != lease) { g.lease = lease; g.granted = 0; g.busyUntilMs = 0; }
    const v = i64(g.granted) + delta;
    if (v < 0) return false;
    g.granted = u32(v);
    if (busyUntil > g.busyUntilMs) g.busyUntilMs = busyUntil;
    if (writeGrant(root, kind, bucket, g, cas)) return true;
  }
  return false;
}

/** Connections the process holds for this limit (its ledger's count over every VM). */
export function usedOf(root: Root, ch: Chain): u64 {
  const cfg = root.config;
  const store = root.store;
  let n: u64 = 0;
  if (ch.kind == CLIENT) {
    if (store.get(clientKey(cfg.keyPrefix, ch.bucket)) == ST_OK) {
      const l = decodeLedger(store.valuePtr, store.valueLen);
      if (l !== null) n = l.total();
    }
    store.done();
    return n;
  }
  for (let i: u32 = 0; i < cfg.maxPods; i++) {
    if (store.get(podKey(cfg.keyPrefix, i32(i))) == ST_OK) {
      const l = decodeLedger(store.valuePtr, store.valueLen);
      if (l !== null && l.name == podName(ch.bucket)) n += l.total();
    }
    store.done();
  }
  return n;
}
