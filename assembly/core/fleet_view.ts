// Fleet mode, the fleet's view on /websocket/metrics (docs/fleet.md §6). Pure: no host calls.
//
// Each holder (an Envoy process, named by its etcd lease id) publishes `<prefix>stats/<holder hex16>` under its lease
// every fleet.stats_period_ms: a compact text of its counters and `used` per pod (encodeStats). A scrape reads the
// `pod/` and `stats/` ranges in one txn (scrapeRequest), sums them (summarize) and appends the fleet's series to the
// local page (renderFleet). Which VM of a process publishes in a period is elected through a small shared-data
// record (PublishRecord). No module-level state: the local module imports nothing from here.
import { EtcdKv, prefixEndB64 } from "./etcd";
import { slotsOf, hex16 } from "./fleet";
import { base64Encode, base64Decode } from "./base64";
import { utf8Encode, utf8Decode } from "./utf8";
import { parseJson, jsonAt, jsonFree, JType, JValue } from "./json";
import { escapeLabel } from "./prom";

// ------------------------------------------------------------------ the published value

/** What one holder publishes: its accepted and rejected upgrades (process-wide counters) and `used` per pod.
 *  (No growing arrays of 8-byte numbers here: AssemblyScript 0.17's rtrace reports their growth as a bad free.) */
export class HolderStats {
  accepted: u64 = 0;
  rejected: u64 = 0;
  pods: Array<string> = new Array<string>(0);
  used: Array<u32> = new Array<u32>(0);
}

/** "1 <accepted> <rejected>\n" (format version 1), then "<used> <pod>\n" per pod. A pod name with a newline is left
 *  out (it would end its line; inbound pod names come from node metadata and have none). */
export function encodeStats(st: HolderStats): string {
  let out = "1 " + st.accepted.toString() + " " + st.rejected.toString() + "\n";
  for (let i = 0; i < st.pods.length; i++) {
    const pod = st.pods[i];
    if (pod.indexOf("\n") >= 0) continue;
    out += st.used[i].toString() + " " + pod + "\n";
  }
  return out;
}

/** A decimal u64 in s[start, end): -1 when empty, not all digits, or longer than 18 digits. */
function decimal(s: string, start: i32, end: i32): i64 {
  if (end <= start || end - start > 18) return -1;
  let n: i64 = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + i64(c - 0x30);
  }
  return n;
}

/** Reads encodeStats' text into `out` (cleared first). False for anything else (another version, a bad line). */
export function decodeStats(text: string, out: HolderStats): bool {
  out.accepted = 0;
  out.rejected = 0;
  out.pods.length = 0;
  out.used.length = 0;
  let eol = text.indexOf("\n");
  if (eol < 0 || !text.startsWith("1 ")) return false;
  const sp = text.indexOf(" ", 2);
  if (sp < 0 || sp > eol) return false;
  const a = decimal(text, 2, sp);
  const r = decimal(text, sp + 1, eol);
  if (a < 0 || r < 0) return false;
  out.accepted = u64(a);
  out.rejected = u64(r);
  let start = eol + 1;
  while (start < text.length) {
    eol = text.indexOf("\n", start);
    if (eol < 0) return false; // every line ends with a newline: a cut value is not read
    const s = text.indexOf(" ", start);
    if (s < 0 || s > eol) return false;
    const n = decimal(text, start, s);
    if (n < 0 || n > 0xffffffff) return false;
    out.used.push(u32(n));
    out.pods.push(text.substring(s + 1, eol));
    start = eol + 1;
  }
  return true;
}

// ------------------------------------------------------------------ who publishes (shared data, one per process)

const PUBLISH_BYTES: i32 = 16;

/** The process's last publication: for which lease, and when (ms). Zero bytes read as "never". */
export class PublishRecord {
  id: u64 = 0;
  lastMs: u64 = 0;
}

export function decodePublish(p: usize, len: i32): PublishRecord | null {
  const r = new PublishRecord();
  if (len == 0) return r;
  if (len != PUBLISH_BYTES) return null;
  r.id = load<u64>(p);
  r.lastMs = load<u64>(p, 8);
  return r;
}

export function encodePublish(r: PublishRecord): ArrayBuffer {
  const b = new ArrayBuffer(PUBLISH_BYTES);
  store<u64>(changetype<usize>(b), r.id);
  store<u64>(changetype<usize>(b), r.lastMs, 8);
  return b;
}

/** A publication is due: a new lease (its key does not exist yet), a period passed, or the clock went back. */
export function publishDue(r: PublishRecord, id: u64, nowMs: u64, periodMs: u64): bool {
  return r.id != id || nowMs < r.lastMs || nowMs - r.lastMs >= periodMs;
}

// ------------------------------------------------------------------ etcd requests and the scrape's answer

function b64(s: string): string {
  const b = utf8Encode(s);
  return base64Encode(changetype<usize>(b), b.byteLength);
}

export function statsKey(prefix: string, id: u64): string {
  return prefix + "stats/" + hex16(id);
}

/** POST /v3/kv/put: the holder's stats value under its lease (gone with the lease). */
export function statsPutRequest(key: string, value: string, lease: u64): string {
  return "{\"key\":\"" + b64(key) + "\",\"value\":\"" + b64(value) + "\",\"lease\":\"" + lease.toString() + "\"}";
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

/** The kvs of each response_range of a txn answer, in order, into `out` (cleared). False unless the answer is an object
 *  whose `responses` are all range responses with well-formed kvs (an empty range has no `kvs`). */
export function parseRanges(text: string, out: Array<Array<EtcdKv>>): bool {
  out.length = 0;
  const root = parseJson(text);
  let ok = root !== null && root.type == JType.Obj;
  let rs: JValue | null = null;
  if (ok) {
    rs = changetype<JValue>(root).get("responses");
    ok = rs !== null && rs.type == JType.Arr;
  }
  let i = -1;
  if (ok) i = changetype<JValue>(rs).first;
  while (ok && i >= 0) {
    const it = jsonAt(i);
    i = it.next;
    const rr = it.get("response_range");
    if (rr === null || rr.type != JType.Obj) { ok = false; break; }
    const kvs = new Array<EtcdKv>(0);
    const list = rr.get("kvs");
    if (list !== null) {
      if (list.type != JType.Arr) { ok = false; break; }
      let j = list.first;
      while (j >= 0) {
        const e = jsonAt(j);
        j = e.next;
        const k = b64Text(e.get("key"));
        const v = b64Text(e.get("value"));
        if (e.type != JType.Obj || k === null || v === null) { ok = false; break; }
        const kv = new EtcdKv();
        kv.key = k;
        kv.value = v;
        kvs.push(kv);
      }
    }
    out.push(kvs);
  }
  jsonFree();
  return ok;
}

// ------------------------------------------------------------------ the sums and their Prometheus lines

/** One pod at scrape time: the slots etcd granted (summed over holders) and the holders' published `used`. */
export class PodSum {
  pod: string = "";
  granted: u64 = 0;
  active: u64 = 0;
}

/** One holder's published counters. */
export class HolderCount {
  holder: string = "";
  accepted: u64 = 0;
  rejected: u64 = 0;
}

/** The fleet at scrape time: every pod either range names, every holder seen in either range, and the counters of
 *  each holder whose stats value was readable. */
export class FleetView {
  pods: Array<PodSum> = new Array<PodSum>(0);
  holders: Array<string> = new Array<string>(0);
  published: Array<HolderCount> = new Array<HolderCount>(0);
  bad: u32 = 0; // keys or values that could not be read (left out)
}

function podOf(v: FleetView, pod: string): PodSum {
  for (let i = 0; i < v.pods.length; i++) if (v.pods[i].pod == pod) return v.pods[i];
  const p = new PodSum();
  p.pod = pod;
  v.pods.push(p);
  return p;
}

function isHolder(h: string): bool {
  if (h.length != 16) return false;
  for (let i = 0; i < 16; i++) {
    const c = h.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function addHolder(v: FleetView, h: string): void {
  if (v.holders.indexOf(h) < 0) v.holders.push(h);
}

/** Sums the `pod/` range (`<prefix>pod/<pod>/<holder>` = granted) and the `stats/` range (`<prefix>stats/<holder>` =
 *  encodeStats text) into `out`, which must be fresh. */
export function summarize(prefix: string, podKvs: Array<EtcdKv>, statsKvs: Array<EtcdKv>, out: FleetView): void {
  const pp = prefix + "pod/";
  for (let i = 0; i < podKvs.length; i++) {
    const kv = podKvs[i];
    const slash = kv.key.lastIndexOf("/");
    const n = slotsOf(kv.value);
    if (!kv.key.startsWith(pp) || slash <= pp.length || n < 0) { out.bad++; continue; }
    const holder = kv.key.substring(slash + 1);
    if (!isHolder(holder)) { out.bad++; continue; }
    podOf(out, kv.key.substring(pp.length, slash)).granted += u64(n);
    addHolder(out, holder);
  }
  const sp = prefix + "stats/";
  const st = new HolderStats();
  for (let i = 0; i < statsKvs.length; i++) {
    const kv = statsKvs[i];
    const holder = kv.key.substring(sp.length);
    if (!kv.key.startsWith(sp) || !isHolder(holder) || !decodeStats(kv.value, st)) { out.bad++; continue; }
    addHolder(out, holder);
    const c = new HolderCount();
    c.holder = holder;
    c.accepted = st.accepted;
    c.rejected = st.rejected;
    out.published.push(c);
    for (let j = 0; j < st.pods.length; j++) podOf(out, st.pods[j]).active += u64(st.used[j]);
  }
}

function family(name: string, type: string): string {
  return "# TYPE ws_governor_fleet_" + name + " " + type + "\n";
}

function sample(name: string, label: string, value: string, n: u64): string {
  return "ws_governor_fleet_" + name + "{" + label + "=\"" + escapeLabel(value) + "\"} " + n.toString() + "\n";
}

/** The lines a scrape appends to the local page when etcd answered. */
export function renderFleet(v: FleetView): string {
  let out = family("up", "gauge") + "ws_governor_fleet_up 1\n";
  out += family("holders", "gauge") + "ws_governor_fleet_holders " + v.holders.length.toString() + "\n";
  out += family("granted", "gauge");
  for (let i = 0; i < v.pods.length; i++) out += sample("granted", "pod", v.pods[i].pod, v.pods[i].granted);
  out += family("active", "gauge");
  for (let i = 0; i < v.pods.length; i++) out += sample("active", "pod", v.pods[i].pod, v.pods[i].active);
  const hs = v.published;
  out += family("accepted_total", "counter");
  for (let i = 0; i < hs.length; i++) out += sample("accepted_total", "holder", hs[i].holder, hs[i].accepted);
  out += family("rejected_total", "counter");
  for (let i = 0; i < hs.length; i++) out += sample("rejected_total", "holder", hs[i].holder, hs[i].rejected);
  return out;
}

/** The line a scrape appends when etcd did not answer in time (or the call failed): the page is the local view. */
export function renderFleetDown(): string {
  return family("up", "gauge") + "ws_governor_fleet_up 0\n";
}
