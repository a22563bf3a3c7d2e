// Fleet mode, the fleet's view on /websocket/metrics (docs/fleet.md §6). Pure: no host calls.
//
// Each holder (an Envoy process, named by its etcd lease id) puts `<prefix>stats/<holder hex16>` under its lease every
// fleet.stats_period_ms: one line "<used> <pod>\n" per pod (statsLine). A scrape reads the `pod/` and `stats/` ranges
// in one txn (scrapeRequest, parseRanges), sums them (summarize) and appends the fleet's series to the local page
// (renderFleet). Which VM of a process publishes in a period is elected through a 16-byte shared-data record
// (publishDue, publishRecord). Kept small: the fleet module has a budget too. No module-level state.
import { EtcdKv, prefixEndB64 } from "./etcd";
import { slotsOf, hex16 } from "./fleet";
import { base64Encode, base64Decode } from "./base64";
import { utf8Encode, utf8Decode } from "./utf8";
import { parseJson, jsonAt, jsonFree, JType, JValue } from "./json";
import { podSample } from "./prom";

/** One line of a holder's stats value; "" for a pod name with a newline (it would end the line; inbound pod names
 *  come from node metadata and have none). */
export function statsLine(pod: string, used: u64): string {
  if (pod.indexOf("\n") >= 0) return "";
  return used.toString() + " " + pod + "\n";
}

// ------------------------------------------------------------------ who publishes (shared data, one per process)

/** The process's publication record (16 bytes: lease id, ms of the last claim) says a publication is due for lease
 *  `id`: never published (empty), unreadable (rewritten), another lease (its key does not exist yet), a period
 *  passed, or the clock went back. */
export function publishDue(p: usize, len: i32, id: u64, nowMs: u64, periodMs: u64): bool {
  if (len != 16 || load<u64>(p) != id) return true;
  const last = load<u64>(p, 8);
  return nowMs < last || nowMs - last >= periodMs;
}

export function publishRecord(id: u64, nowMs: u64): ArrayBuffer {
  const b = new ArrayBuffer(16);
  store<u64>(changetype<usize>(b), id);
  store<u64>(changetype<usize>(b), nowMs, 8);
  return b;
}

// ------------------------------------------------------------------ etcd requests and the scrape's answer

function b64(s: string): string {
  const b = utf8Encode(s);
  return base64Encode(changetype<usize>(b), b.byteLength);
}

/** POST /v3/kv/put: the holder's stats value under its lease (the key goes with the lease). */
export function statsPutRequest(prefix: string, id: u64, value: string): string {
  return "{\"key\":\"" + b64(prefix + "stats/" + hex16(id)) + "\",\"value\":\"" + b64(value) + "\",\"lease\":\"" +
    id.toString() + "\"}";
}

function rangeOp(prefix: string): string {
  return "{\"request_range\":{\"key\":\"" + b64(prefix) + "\",\"range_end\":\"" + prefixEndB64(prefix) + "\"}}";
}

/** POST /v3/kv/txn: no compare, two range reads at one revision: the pod grants, then the holders' stats. */
export function scrapeRequest(prefix: string): string {
  return "{\"compare\":[],\"success\":[" + rangeOp(prefix + "pod/") + "," + rangeOp(prefix + "stats/") + "],\"failure\":[]}";
}

function b64Text(v: JValue | null): string | null {
  if (v === null) return "";
  if (v.type != JType.Str) return null;
  const b = base64Decode(v.s);
  if (b === null) return null;
  return utf8Decode(changetype<usize>(b), b.byteLength);
}

/** The kvs of a txn answer with exactly two response_range entries, into `first` and `second`. False for anything
 *  else (an empty range has no `kvs`: etcd 3.4 leaves zero values out). */
export function parseRanges(text: string, first: Array<EtcdKv>, second: Array<EtcdKv>): bool {
  const root = parseJson(text);
  let rs: JValue | null = null;
  if (root !== null && root.type == JType.Obj) rs = root.get("responses");
  let ok = false;
  let i = -1;
  if (rs !== null && rs.type == JType.Arr && rs.count == 2) { ok = true; i = rs.first; }
  let out = first;
  while (ok && i >= 0) {
    const it = jsonAt(i);
    i = it.next;
    const rr = it.get("response_range");
    let list: JValue | null = null; // if/else, not `?:` (toolchain pitfall with managed values)
    if (rr !== null) list = rr.get("kvs");
    ok = rr !== null && rr.type == JType.Obj && (list === null || list.type == JType.Arr);
    let j = -1;
    if (ok && list !== null) j = list.first;
    while (ok && j >= 0) {
      const e = jsonAt(j);
      j = e.next;
      const k = b64Text(e.get("key"));
      const v = b64Text(e.get("value"));
      ok = k !== null && v !== null;
      if (!ok) break;
      const kv = new EtcdKv();
      kv.key = k!;
      kv.value = v!;
      out.push(kv);
    }
    out = second;
  }
  jsonFree();
  return ok;
}

// ------------------------------------------------------------------ the sums and their Prometheus lines

/** The fleet at scrape time, per pod (either range may name it): the slots etcd granted, summed over holders, and
 *  the holders' published `used`; the holders that published; entries that could not be read (left out). */
export class FleetView {
  pods: Array<string> = new Array<string>(0);
  granted: Array<u32> = new Array<u32>(0);
  active: Array<u32> = new Array<u32>(0);
  holders: u32 = 0;
  bad: u32 = 0;
}

function podIndex(v: FleetView, pod: string): i32 {
  let i = v.pods.indexOf(pod);
  if (i >= 0) return i;
  v.pods.push(pod);
  v.granted.push(0);
  v.active.push(0);
  return v.pods.length - 1;
}

/** Reads a stats value ("<used> <pod>\n" lines); adds each line's `used` to its pod when `add`. False when a line
 *  is not of that form (then callers check first with add = false, so a bad value adds nothing). */
function scanStats(text: string, v: FleetView, add: bool): bool {
  let start = 0;
  while (start < text.length) {
    const eol = text.indexOf("\n", start);
    const sp = text.indexOf(" ", start);
    if (eol < 0 || sp < 0 || sp > eol) return false; // every line ends with a newline: a cut value is not read
    const n = slotsOf(text.substring(start, sp));
    if (n < 0) return false;
    if (add) {
      const p = podIndex(v, text.substring(sp + 1, eol));
      v.active[p] += u32(n);
    }
    start = eol + 1;
  }
  return true;
}

/** Sums the `pod/` range (`<prefix>pod/<pod>/<holder>` = granted) and the `stats/` range (one value per holder) into
 *  `out`, which must be fresh. */
export function summarize(prefix: string, podKvs: Array<EtcdKv>, statsKvs: Array<EtcdKv>, out: FleetView): void {
  const pp = prefix.length + 4; // "pod/"
  for (let i = 0; i < podKvs.length; i++) {
    const kv = podKvs[i];
    const slash = kv.key.lastIndexOf("/");
    const n = slotsOf(kv.value);
    if (slash <= pp || n < 0) { out.bad++; continue; }
    const p = podIndex(out, kv.key.substring(pp, slash));
    out.granted[p] += u32(n);
  }
  for (let i = 0; i < statsKvs.length; i++) {
    const text = statsKvs[i].value;
    if (!scanStats(text, out, false)) { out.bad++; continue; }
    scanStats(text, out, true);
    out.holders++;
  }
}

/** The lines a scrape appends to the local page when etcd answered. */
export function renderFleet(v: FleetView): string {
  let out = "# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 1\n# TYPE ws_governor_fleet_holders gauge\n" +
    "ws_governor_fleet_holders " + v.holders.toString() + "\n# TYPE ws_governor_fleet_granted gauge\n";
  for (let i = 0; i < v.pods.length; i++) out += podSample("ws_governor_fleet_granted", v.pods[i], v.granted[i]);
  out += "# TYPE ws_governor_fleet_active gauge\n";
  for (let i = 0; i < v.pods.length; i++) out += podSample("ws_governor_fleet_active", v.pods[i], v.active[i]);
  return out;
}

/** What a scrape appends when etcd did not answer in time (or the call failed): the page is the local view. */
export function renderFleetDown(): string {
  return "# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 0\n";
}
