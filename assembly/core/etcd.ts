// etcd v3 JSON gateway messages (groundwork for fleet mode, docs/fleet.md). Pure: builds request bodies and reads
// responses; the filter sends them with proxy_http_call. Facts of the gateway (etcd 3.4, checked against a real
// etcd-server in test/etcd/): keys and values are base64 bytes; int64 fields (revisions, lease ids, TTLs) are JSON
// strings; a range over a prefix uses range_end = the prefix with its last byte incremented.
import { base64Encode, base64Decode } from "./base64";
import { utf8Encode, utf8Decode } from "./utf8";
import { parseJson, jsonAt, jsonFree, JType, JValue } from "./json";

function b64(s: string): string {
  const b = utf8Encode(s);
  return base64Encode(changetype<usize>(b), b.byteLength);
}

/** range_end for every key that starts with `prefix` (etcd's convention; "\0" for an empty prefix: all keys). */
export function prefixEndB64(prefix: string): string {
  const b = utf8Encode(prefix);
  const p = changetype<usize>(b);
  let n = b.byteLength;
  while (n > 0 && load<u8>(p + n - 1) == 0xff) n--; // 0xff cannot be incremented: drop it and carry
  if (n == 0) return "AA=="; // "\0": the whole key space
  store<u8>(p + n - 1, load<u8>(p + n - 1) + 1);
  return base64Encode(p, n);
}

/** POST /v3/kv/range: every key under `prefix`. */
export function rangePrefixRequest(prefix: string): string {
  return "{\"key\":\"" + b64(prefix) + "\",\"range_end\":\"" + prefixEndB64(prefix) + "\"}";
}

/** POST /v3/kv/txn: put `key` = `value` (bound to `lease`, "0" for none) if no key under `prefix` was created or
 *  modified after `revision` (a compare over the range; deleted keys only free room). Either way the answer carries
 *  the range as it is after the txn (`ranged`, at `header.revision`). */
export function putIfUnchangedRequest(prefix: string, revision: u64, key: string, value: string, lease: string): string {
  const p = b64(prefix);
  const end = prefixEndB64(prefix);
  // both branches also read the range: the answer is the next snapshot (a grant or a retry costs one round trip)
  const range = "{\"request_range\":{\"key\":\"" + p + "\",\"range_end\":\"" + end + "\"}}";
  return "{\"compare\":[{\"key\":\"" + p + "\",\"range_end\":\"" + end +
    "\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"" + (revision + 1).toString() + "\"}]," +
    "\"success\":[{\"request_put\":{\"key\":\"" + b64(key) + "\",\"value\":\"" + b64(value) + "\",\"lease\":\"" +
    lease + "\"}}," + range + "],\"failure\":[" + range + "]}";
}

/** POST /v3/lease/grant. */
export function leaseGrantRequest(ttlSeconds: u32): string {
  return "{\"TTL\":\"" + ttlSeconds.toString() + "\"}";
}

/** POST /v3/lease/keepalive (one round; the gateway answers {"result":{…}}). */
export function leaseKeepaliveRequest(id: string): string {
  return "{\"ID\":\"" + id + "\"}";
}

/** A decimal int64 as etcd's gateway writes it (a JSON string; a number is accepted too). -1 when malformed. */
export function int64Of(v: JValue | null): i64 {
  if (v === null) return 0; // proto3 JSON leaves zero values out
  if (v.type == JType.Num) return v.n >= 0 && v.n <= 9007199254740991 && v.n == Math.floor(v.n) ? i64(v.n) : -1;
  if (v.type != JType.Str || v.s.length == 0 || v.s.length > 19) return -1;
  let n: i64 = 0;
  for (let i = 0; i < v.s.length; i++) {
    const c = v.s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + i64(c - 0x30);
    if (n < 0) return -1;
  }
  return n;
}

export class EtcdKv {
  key: string = "";
  value: string = "";
  modRevision: i64 = 0;
  lease: string = "";
}

/** What a gateway response said. `ok` false: not the expected shape (`error` says why); nothing else is set. */
export class EtcdReply {
  ok: bool = false;
  error: string = "";
  revision: i64 = 0;        // header.revision
  succeeded: bool = false;  // txn
  kvs: Array<EtcdKv> = new Array<EtcdKv>(0); // range
  leaseId: string = "";     // lease grant / keepalive
  ttl: i64 = 0;             // lease grant / keepalive: 0 or absent when the lease is gone
  ranged: bool = false;     // txn: one of its ops was a range (kvs = that range, at header.revision)
}

function fail(r: EtcdReply, why: string): EtcdReply {
  r.ok = false;
  r.error = why;
  return r;
}

function b64Text(v: JValue | null): string | null {
  if (v === null) return "";
  if (v.type != JType.Str) return null;
  const b = base64Decode(v.s);
  if (b === null) return null;
  return utf8Decode(changetype<usize>(b), b.byteLength);
}

/** Reads a range, txn, lease grant or keepalive response body. */
export function parseReply(text: string): EtcdReply {
  const r = new EtcdReply();
  let root = parseJson(text);
  if (root === null || root.type != JType.Obj) { jsonFree(); return fail(r, "not a JSON object"); }
  const wrapped = root.get("result"); // keepalive streams answer {"result":{…}}
  if (wrapped !== null && wrapped.type == JType.Obj) root = wrapped;
  if (root.get("error") !== null || root.get("code") !== null) { jsonFree(); return fail(r, "etcd error: " + text); }
  const header = root.get("header");
  if (header !== null) r.revision = int64Of(header.get("revision"));
  const succeeded = root.get("succeeded");
  r.succeeded = succeeded !== null && succeeded.type == JType.Bool && succeeded.n == 1;
  const id = root.get("ID");
  if (id !== null) {
    if (id.type != JType.Str || int64Of(id) < 0) { jsonFree(); return fail(r, "bad lease ID"); }
    r.leaseId = id.s;
  }
  r.ttl = int64Of(root.get("TTL"));
  let kvs = root.get("kvs");
  // a txn answers its ops in `responses`; a request_range among them gives the range at the txn's revision
  const ops = root.get("responses");
  if (kvs === null && ops !== null && ops.type == JType.Arr) {
    let i = ops.first;
    while (i >= 0) {
      const op = jsonAt(i);
      i = op.next;
      if (op.type != JType.Obj) continue;
      const rr = op.get("response_range");
      if (rr === null || rr.type != JType.Obj) continue;
      r.ranged = true;
      kvs = rr.get("kvs");
      break;
    }
  }
  if (kvs !== null) {
    if (kvs.type != JType.Arr) { jsonFree(); return fail(r, "kvs is not an array"); }
    let i = kvs.first;
    while (i >= 0) {
      const it = jsonAt(i);
      i = it.next;
      if (it.type != JType.Obj) { jsonFree(); return fail(r, "a kv is not an object"); }
      const kv = new EtcdKv();
      const k = b64Text(it.get("key"));
      const v = b64Text(it.get("value"));
      if (k === null || v === null) { jsonFree(); return fail(r, "a key or value is not base64"); }
      kv.key = k;
      kv.value = v;
      kv.modRevision = int64Of(it.get("mod_revision"));
      const lease = it.get("lease");
      if (lease !== null && lease.type == JType.Str) kv.lease = lease.s;
      r.kvs.push(kv);
    }
  }
  jsonFree();
  if (r.revision < 0 || r.ttl < 0) return fail(r, "a revision or TTL is not an int64");
  r.ok = true;
  return r;
}

/** POST /v3/kv/txn: a holder lowers its own key: `value` (deleted when "0") if the key was not modified since
 *  `modRevision` (a compare on that one key: returns only lower the range's sum, so no range compare is needed). */
export function setOwnIfUnchangedRequest(key: string, modRevision: i64, value: string, lease: string): string {
  const k = b64(key);
  const op = value == "0"
    ? "{\"request_delete_range\":{\"key\":\"" + k + "\"}}"
    : "{\"request_put\":{\"key\":\"" + k + "\",\"value\":\"" + b64(value) + "\",\"lease\":\"" + lease + "\"}}";
  return "{\"compare\":[{\"key\":\"" + k + "\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"" +
    modRevision.toString() + "\"}],\"success\":[" + op + "],\"failure\":[]}";
}

/** POST /v3/kv/txn: put `key` = `value` (bound to `lease`) only if the key does not exist (VERSION 0). */
export function createIfAbsentRequest(key: string, value: string, lease: string): string {
  const k = b64(key);
  return "{\"compare\":[{\"key\":\"" + k + "\",\"target\":\"VERSION\",\"result\":\"EQUAL\",\"version\":\"0\"}]," +
    "\"success\":[{\"request_put\":{\"key\":\"" + k + "\",\"value\":\"" + b64(value) + "\",\"lease\":\"" + lease +
    "\"}}],\"failure\":[]}";
}
