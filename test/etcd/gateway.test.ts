// Facts about etcd 3.4's JSON gateway (grpc-gateway over the v3 API on the client port) that fleet mode relies on,
// checked against a real etcd (test/support/etcd.ts). Behaviour only: nothing timed is asserted except bounded waits.
// docs/fleet.md cites these tests by name ("gateway: …").
// No etcd: FAIL when CI=true, skip with the reason otherwise (.ci/run installs etcd-server).
//   node --import tsx --test --test-reporter=tap test/etcd/gateway.test.ts
//
// Shapes seen on 3.4.23 (the marshaler keeps proto field names and OMITS zero values):
//   every answer        {"header":{"cluster_id":"…","member_id":"…","revision":"7","raft_term":"2"}, …}
//   int64 / uint64      JSON strings: "revision":"7", "mod_revision":"2", "count":"2", "ID":"7587…", "TTL":"2"
//   bytes               base64: "key":"L3gvYQ==", "value":"MQ=="
//   zero values         absent: no "kvs"/"count" on an empty range, no "succeeded" on a failed txn, no "TTL" on a
//                       keepalive of an unknown lease
//   errors              HTTP status from the gRPC code (3 → 400, 5 → 404, 9 → 412), body {"error","message","code"}
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { b64, etcdGate, etcdPost, httpJson, prefixEnd, startEtcd, unb64, type Etcd } from "../support/etcd.ts";
import { waitFor } from "../support/wait.ts";

const gate = etcdGate();
const T = { skip: gate.skip, timeout: 30_000 };

// ------------------------------------------------------------------ the shapes, as types

interface Header { cluster_id?: string; member_id?: string; revision?: string; raft_term?: string }
interface KV { key: string; create_revision?: string; mod_revision?: string; version?: string; value?: string; lease?: string }
interface RangeResponse { header: Header; kvs?: KV[]; more?: boolean; count?: string }
interface TxnResponse {
  header: Header;
  succeeded?: boolean;
  responses?: Array<{
    response_range?: RangeResponse;
    response_put?: { header: Header; prev_kv?: KV };
    response_delete_range?: { header: Header; deleted?: string; prev_kvs?: KV[] };
  }>;
}
interface LeaseGrantResponse { header: Header; ID: string; TTL: string; error?: string }
interface KeepAliveResponse { result: { header: Header; ID: string; TTL?: string } }
interface TimeToLiveResponse { header: Header; ID: string; TTL: string; grantedTTL?: string; keys?: string[] }
interface GatewayError { error: string; message: string; code: number }

const INT64 = /^-?[0-9]+$/;

/** A key range [prefix, prefixEnd(prefix)) in the gateway's encoding. */
function range(prefix: string): { key: string; range_end: string } {
  return { key: b64(prefix), range_end: b64(prefixEnd(prefix)) };
}

describe("etcd 3.4 JSON gateway [etcd]", () => {
  let etcd: Etcd | undefined;
  let url = "";
  const post = <R>(path: string, body: unknown) => etcdPost<R>(url, path, body);

  before(async () => {
    if (gate.skip || gate.failReason) return;
    etcd = await startEtcd();
    url = etcd.clientUrl;
  });
  after(async () => {
    await etcd?.stop();
  });

  test("harness: a single member on loopback, ready on /health, its version", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    assert.match(etcd!.clientUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(etcd!.peerUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await httpJson(url, "GET", "/health");
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { health: "true" });
    const version = await httpJson(url, "GET", "/version");
    assert.equal(version.status, 200);
    const v = version.body as { etcdserver: string; etcdcluster: string };
    assert.match(v.etcdserver, /^3\.(4|5|6)\./, `etcd ${v.etcdserver}`);
    console.log(`# etcd ${v.etcdserver} (cluster ${v.etcdcluster}) at ${url}, pid ${etcd!.pid}`);
  });

  test("gateway: /v3/kv/range — base64 key/range_end, int64 as strings, count_only, zero values omitted", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const p = "/facts/range/";
    const empty = await post<RangeResponse>("/v3/kv/range", range(p));
    assert.match(empty.header.revision!, INT64);
    assert.equal(empty.kvs, undefined, "an empty range has no kvs");
    assert.equal(empty.count, undefined, "an empty range has no count (zero is omitted)");

    await post("/v3/kv/put", { key: b64(`${p}a`), value: b64("1") });
    await post("/v3/kv/put", { key: b64(`${p}b`), value: b64("22") });
    await post("/v3/kv/put", { key: b64(`${p}a`), value: b64("3") });
    const r = await post<RangeResponse>("/v3/kv/range", range(p));
    assert.equal(typeof r.header.revision, "string");
    const rev = BigInt(r.header.revision!);
    assert.equal(r.count, "2");
    assert.equal(r.kvs!.length, 2);
    const [a, b] = r.kvs!;
    assert.equal(unb64(a.key), `${p}a`);
    assert.equal(unb64(a.value), "3");
    assert.equal(a.version, "2", "two puts → version 2");
    for (const f of ["create_revision", "mod_revision", "version"] as const) assert.match(a[f]!, INT64, f);
    assert.equal(BigInt(a.mod_revision!), rev, "the last put's revision is the store's revision");
    assert.ok(BigInt(a.create_revision!) < BigInt(a.mod_revision!));
    assert.equal(unb64(b.value), "22");
    assert.equal(a.lease, undefined, "no lease → field absent");

    const counted = await post<RangeResponse>("/v3/kv/range", { ...range(p), count_only: true });
    assert.equal(counted.count, "2");
    assert.equal(counted.kvs, undefined, "count_only returns no kvs");

    const limited = await post<RangeResponse>("/v3/kv/range", { ...range(p), limit: 1, keys_only: true });
    assert.equal(limited.kvs!.length, 1);
    assert.equal(limited.more, true);
    assert.equal(limited.count, "2", "count is the whole range's, not the limit's");
    assert.equal(limited.kvs![0].value, undefined, "keys_only → no value");

    const single = await post<RangeResponse>("/v3/kv/range", { key: b64(`${p}b`) });
    assert.equal(single.kvs!.length, 1, "no range_end: that one key");
  });

  test("gateway: /v3/kv/txn — compare MOD / VERSION / VALUE on one key; succeeded omitted when false", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const k = b64("/facts/txn/k");
    await post("/v3/kv/put", { key: k, value: b64("v1") });
    const r1 = await post<RangeResponse>("/v3/kv/range", { key: k });
    const mod = r1.kvs![0].mod_revision!;

    // MOD EQUAL (the CAS): succeeds once, then the key's mod_revision moved on
    const cas = (value: string) => post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: k, target: "MOD", result: "EQUAL", mod_revision: mod }],
      success: [{ request_put: { key: k, value: b64(value) } }],
      failure: [{ request_range: { key: k } }],
    });
    const ok = await cas("v2");
    assert.equal(ok.succeeded, true);
    assert.equal(ok.responses!.length, 1);
    assert.match(ok.responses![0].response_put!.header.revision!, INT64);
    assert.equal(ok.responses![0].response_put!.header.revision, ok.header.revision);
    const lost = await cas("v3");
    assert.equal(lost.succeeded, undefined, "a failed compare: `succeeded` is absent (false is a zero value)");
    const seen = lost.responses![0].response_range!;
    assert.equal(unb64(seen.kvs![0].value), "v2", "the failure branch ran: it read the winner's value");
    assert.equal(seen.kvs![0].mod_revision, ok.header.revision);

    // VERSION: 0 means "does not exist" (create-if-absent)
    const n = b64("/facts/txn/new");
    const create = () => post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: n, target: "VERSION", result: "EQUAL", version: "0" }],
      success: [{ request_put: { key: n, value: b64("first") } }],
    });
    assert.equal((await create()).succeeded, true);
    const again = await create();
    assert.equal(again.succeeded, undefined);
    assert.equal(again.responses, undefined, "no failure ops → no responses");
    const created = (await post<RangeResponse>("/v3/kv/range", { key: n })).kvs![0].create_revision!;
    const byCreate = await post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: n, target: "CREATE", result: "EQUAL", create_revision: created }],
    });
    assert.equal(byCreate.succeeded, true, "CREATE compares create_revision");

    // VALUE: byte-wise comparison of the base64-decoded values (not numeric)
    const value = (result: string, v: string) => post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: k, target: "VALUE", result, value: b64(v) }],
    });
    assert.equal((await value("EQUAL", "v2")).succeeded, true);
    assert.equal((await value("NOT_EQUAL", "v2")).succeeded, undefined);
    assert.equal((await value("GREATER", "v1")).succeeded, true);
    await post("/v3/kv/put", { key: b64("/facts/txn/num"), value: b64("9") });
    const numeric = await post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: b64("/facts/txn/num"), target: "VALUE", result: "GREATER", value: b64("10") }],
    });
    assert.equal(numeric.succeeded, true, '"9" > "10" byte-wise: VALUE compares bytes, never numbers');

    // the compare and both branches see the same revision: nothing interleaves inside a txn
    const both = await post<TxnResponse>("/v3/kv/txn", {
      compare: [{ key: k, target: "MOD", result: "GREATER", mod_revision: "0" }],
      success: [
        { request_range: { key: k } },
        { request_put: { key: k, value: b64("v4") } },
        { request_range: { key: k } },
      ],
    });
    assert.equal(both.succeeded, true);
    assert.equal(unb64(both.responses![0].response_range!.kvs![0].value), "v2", "ops run in order: read before the put");
    assert.equal(unb64(both.responses![2].response_range!.kvs![0].value), "v4", "and after it");
    assert.equal(both.responses![2].response_range!.kvs![0].mod_revision, both.header.revision,
      "the txn's header.revision is the revision after its writes (one revision for the whole txn)");
  });

  test("gateway: compare mod_revision over a key range (range_end) — a put after R fails it, a delete does not", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const p = "/facts/rangecmp/";
    const cmp = (rev: string) => [{ ...range(p), target: "MOD", result: "LESS", mod_revision: rev }];
    const txn = (rev: string, put?: string) => post<TxnResponse>("/v3/kv/txn", {
      compare: cmp(rev),
      success: [
        ...(put ? [{ request_put: { key: b64(`${p}${put}`), value: b64("1") } }] : []),
        { request_range: range(p) },
      ],
      failure: [{ request_range: range(p) }],
    });

    // an empty range compares like a missing key (mod_revision 0): LESS any positive revision succeeds
    const r0 = await post<RangeResponse>("/v3/kv/range", range(p));
    const rev0 = BigInt(r0.header.revision!);
    const first = await txn(String(rev0 + 1n), "holder-a");
    assert.equal(first.succeeded, true, "empty range: the compare holds");

    // state read at R (the header revision of a read of the range) → "no key in range modified after R" is
    // mod_revision LESS R+1 over the range
    const r1 = await post<RangeResponse>("/v3/kv/range", range(p));
    const R = BigInt(r1.header.revision!);
    assert.equal(r1.count, "1");
    await post("/v3/kv/put", { key: b64(`${p}holder-b`), value: b64("1") }); // a concurrent writer, after R
    const stale = await txn(String(R + 1n), "holder-c");
    assert.equal(stale.succeeded, undefined, "a key put in the range after R fails the compare");
    const fresh = stale.responses![0].response_range!;
    assert.equal(fresh.count, "2", "the failure branch returns the range as it is now (one round trip to retry)");
    const R2 = BigInt(fresh.header.revision!);

    // a delete in the range after R2 does not change any remaining key's mod_revision: the compare still holds
    await post("/v3/kv/deleterange", { key: b64(`${p}holder-b`) });
    const afterDelete = await txn(String(R2 + 1n), "holder-c");
    assert.equal(afterDelete.succeeded, true, "deletes after R are invisible to the range compare");
    const now = afterDelete.responses![1].response_range!;
    assert.deepEqual(now.kvs!.map((kv) => unb64(kv.key)), [`${p}holder-a`, `${p}holder-c`]);

    // every key in the range must satisfy the compare (one newer key is enough to fail it)
    const mods = now.kvs!.map((kv) => BigInt(kv.mod_revision!));
    const between = String(mods[0] + 1n); // > holder-a's, ≤ holder-c's
    assert.ok(mods[0] + 1n <= mods[1]);
    assert.equal((await txn(between)).succeeded, undefined, "LESS must hold for all keys in the range");

    // VERSION and VALUE compares over a range work the same way (all keys)
    const ver = await post<TxnResponse>("/v3/kv/txn", { compare: [{ ...range(p), target: "VERSION", result: "EQUAL", version: "1" }] });
    assert.equal(ver.succeeded, true);
    const val = await post<TxnResponse>("/v3/kv/txn", { compare: [{ ...range(p), target: "VALUE", result: "EQUAL", value: b64("1") }] });
    assert.equal(val.succeeded, true);
  });

  test("gateway: request_put with a lease, request_delete_range (deleted count), txn errors", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const p = "/facts/ops/";
    const g = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: 30 });
    const put = await post<TxnResponse>("/v3/kv/txn", {
      success: [{ request_put: { key: b64(`${p}x`), value: b64("5"), lease: g.ID } }, { request_put: { key: b64(`${p}y`), value: b64("6") } }],
    });
    assert.equal(put.succeeded, true, "no compare: the success branch runs");
    const r = await post<RangeResponse>("/v3/kv/range", range(p));
    assert.equal(r.kvs![0].lease, g.ID, "the key carries its lease ID (a decimal string)");
    assert.equal(r.kvs![1].lease, undefined);

    const del = await post<TxnResponse>("/v3/kv/txn", {
      success: [{ request_delete_range: { ...range(p), prev_kv: true } }],
    });
    const d = del.responses![0].response_delete_range!;
    assert.equal(d.deleted, "2");
    assert.deepEqual(d.prev_kvs!.map((kv) => unb64(kv.value)), ["5", "6"]);
    const none = await post<TxnResponse>("/v3/kv/txn", { success: [{ request_delete_range: range(p) }] });
    assert.equal(none.responses![0].response_delete_range!.deleted, undefined, "0 deleted → field absent");

    // a put with an unknown lease fails the WHOLE txn (nothing applied), with an HTTP error, not succeeded=false
    const bad = await httpJson(url, "POST", "/v3/kv/txn", {
      success: [{ request_put: { key: b64(`${p}z`), value: b64("1") } }, { request_put: { key: b64(`${p}w`), value: b64("1"), lease: "424242" } }],
    });
    assert.equal(bad.status, 404);
    const e = bad.body as GatewayError;
    assert.equal(e.code, 5, "gRPC NotFound");
    assert.match(e.error, /requested lease not found/);
    assert.equal(e.message, e.error);
    assert.equal((await post<RangeResponse>("/v3/kv/range", range(p))).kvs, undefined, "nothing of the txn was applied");

    const dup = await httpJson(url, "POST", "/v3/kv/txn", {
      success: [{ request_put: { key: b64(`${p}z`), value: b64("1") } }, { request_put: { key: b64(`${p}z`), value: b64("2") } }],
    });
    assert.equal(dup.status, 400, "two puts of one key in one txn are refused");
    assert.equal((dup.body as GatewayError).code, 3);
    assert.match((dup.body as GatewayError).error, /duplicate key/);

    const garbage = await httpJson(url, "POST", "/v3/kv/range", "not an object");
    assert.equal(garbage.status, 400);
    assert.equal((garbage.body as GatewayError).code, 3);
    const noKey = await httpJson(url, "POST", "/v3/kv/range", {});
    assert.equal(noKey.status, 400);
    assert.match((noKey.body as GatewayError).error, /key is not provided/);
    const unknownPath = await httpJson(url, "POST", "/v3/kv/nope", {});
    assert.equal(unknownPath.status, 404);
  });

  test("gateway: /v3/lease/grant, /v3/lease/keepalive (one POST → one {\"result\":…} line), /v3/lease/revoke", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const g = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: 10 });
    assert.match(g.ID, INT64, "ID is a decimal string (int64: too wide for a JSON number)");
    assert.equal(g.TTL, "10");
    assert.equal(g.error, undefined);
    const mine = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: "10", ID: "777001" });
    assert.equal(mine.ID, "777001", "a client may choose the lease ID (both fields accept strings)");
    const taken = await httpJson(url, "POST", "/v3/lease/grant", { TTL: 10, ID: "777001" });
    assert.equal(taken.status, 412, "an ID in use is refused (FailedPrecondition → 412)");
    assert.equal((taken.body as GatewayError).code, 9);
    assert.match((taken.body as GatewayError).error, /lease already exists/);

    const min = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: 1 });
    assert.ok(Number(min.TTL) >= 2, `TTL 1 is raised to etcd's minimum (1.5 × election timeout → ${min.TTL} s)`);

    // keepalive: a gRPC bidi stream; the gateway takes ONE request per POST and answers one message, wrapped in
    // "result", newline-terminated, chunked, then ends the response
    const raw = await httpJson(url, "POST", "/v3/lease/keepalive", { ID: g.ID });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers["transfer-encoding"], "chunked");
    assert.match(raw.headers["content-type"] ?? "", /application\/json/);
    const lines = raw.text.split("\n").filter((l) => l.length > 0);
    assert.equal(lines.length, 1, `one message: ${raw.text}`);
    assert.ok(raw.text.endsWith("\n"));
    const ka = JSON.parse(lines[0]) as KeepAliveResponse;
    assert.deepEqual(Object.keys(ka), ["result"]);
    assert.equal(ka.result.ID, g.ID);
    assert.equal(ka.result.TTL, "10", "the renewed TTL (the full granted TTL)");
    assert.match(ka.result.header.revision!, INT64);

    // keepalive of a lease that does not exist: still HTTP 200, and no TTL (0 omitted) — the caller must check TTL
    const gone = JSON.parse((await httpJson(url, "POST", "/v3/lease/keepalive", { ID: "424243" })).text) as KeepAliveResponse;
    assert.equal(gone.result.ID, "424243");
    assert.equal(gone.result.TTL, undefined, "unknown lease: TTL absent, not an error status");

    const ttl = await post<TimeToLiveResponse>("/v3/lease/timetolive", { ID: g.ID, keys: true });
    assert.equal(ttl.grantedTTL, "10");
    assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 10);

    // revoke deletes the lease's keys at once
    const p = "/facts/revoke/";
    await post("/v3/kv/put", { key: b64(`${p}k`), value: b64("1"), lease: g.ID });
    assert.equal((await post<RangeResponse>("/v3/kv/range", range(p))).count, "1");
    const rv = await post<{ header: Header }>("/v3/lease/revoke", { ID: g.ID });
    assert.match(rv.header.revision!, INT64);
    assert.equal((await post<RangeResponse>("/v3/kv/range", range(p))).count, undefined, "revoked: its keys are gone");
    const twice = await httpJson(url, "POST", "/v3/lease/revoke", { ID: g.ID });
    assert.equal(twice.status, 404);
    assert.match((twice.body as GatewayError).error, /requested lease not found/);
    const gonettl = await post<TimeToLiveResponse>("/v3/lease/timetolive", { ID: g.ID });
    assert.equal(gonettl.TTL, "-1", "timetolive of a missing lease: TTL -1 (HTTP 200)");
    await post("/v3/lease/revoke", { ID: mine.ID });
    await post("/v3/lease/revoke", { ID: min.ID });
  });

  test("gateway: keys put with a lease vanish after the TTL once keepalives stop (bounded wait)", { ...T, timeout: 45_000 }, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const p = "/facts/expiry/";
    const g = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: 2 });
    assert.equal(g.TTL, "2");
    const other = await post<LeaseGrantResponse>("/v3/lease/grant", { TTL: 60 });
    await post<TxnResponse>("/v3/kv/txn", {
      compare: [{ ...range(p), target: "MOD", result: "LESS", mod_revision: "1" }], // nothing there yet
      success: [
        { request_put: { key: b64(`${p}dead/pod-a`), value: b64("8"), lease: g.ID } },
        { request_put: { key: b64(`${p}dead/pod-b`), value: b64("4"), lease: g.ID } },
        { request_put: { key: b64(`${p}alive/pod-a`), value: b64("8"), lease: other.ID } },
      ],
    });
    // a few keepalives keep it (and its keys) alive past one TTL
    for (let i = 0; i < 3; i++) {
      const ka = JSON.parse((await httpJson(url, "POST", "/v3/lease/keepalive", { ID: g.ID })).text) as KeepAliveResponse;
      assert.equal(ka.result.TTL, "2");
      await new Promise((r) => setTimeout(r, 800));
    }
    assert.equal((await post<RangeResponse>("/v3/kv/range", range(p))).count, "3", "renewed: all keys still there");
    // then the holder "dies": no more keepalives
    const before = BigInt((await post<RangeResponse>("/v3/kv/range", range(p))).header.revision!);
    const left = await waitFor(async () => {
      const r = await post<RangeResponse>("/v3/kv/range", range(p));
      return r.count === "1" ? r : false;
    }, { timeoutMs: 15_000, intervalMs: 200, what: "the expired lease's keys to vanish" });
    assert.equal(unb64(left.kvs![0].key), `${p}alive/pod-a`, "only the live holder's key is left");
    assert.ok(BigInt(left.header.revision!) > before, "expiry is a delete: it advances the store's revision");
    const ttl = await post<TimeToLiveResponse>("/v3/lease/timetolive", { ID: g.ID });
    assert.equal(ttl.TTL, "-1", "the lease itself is gone");
    const ka = JSON.parse((await httpJson(url, "POST", "/v3/lease/keepalive", { ID: g.ID })).text) as KeepAliveResponse;
    assert.equal(ka.result.TTL, undefined, "a late keepalive does not revive it (TTL absent)");
    const late = await httpJson(url, "POST", "/v3/kv/put", { key: b64(`${p}dead/pod-c`), value: b64("1"), lease: g.ID });
    assert.equal(late.status, 404, "nor can it take new keys");
    await post("/v3/lease/revoke", { ID: other.ID });
  });

  test("gateway: HTTP/1.1 keep-alive — several requests over one connection (Envoy's upstream pool reuses it)", T, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(url);
    const ports: number[] = [];
    try {
      for (const path of ["/v3/kv/range", "/v3/lease/keepalive", "/v3/kv/range"]) {
        const body = path === "/v3/kv/range" ? { key: b64("/facts/ka") } : { ID: "424244" };
        const res = await new Promise<{ status: number; port: number; connection?: string }>((resolve, reject) => {
          const req = http.request({ host: u.hostname, port: u.port, path, method: "POST", agent, timeout: 5000 }, (r) => {
            r.resume();
            r.on("end", () => resolve({ status: r.statusCode ?? 0, port: req.socket!.localPort!, connection: r.headers.connection }));
          });
          req.on("timeout", () => req.destroy(new Error("timeout")));
          req.on("error", reject);
          req.end(JSON.stringify(body)); // no content-type header: the gateway parses the body anyway
        });
        assert.equal(res.status, 200, path);
        assert.notEqual(res.connection, "close", `${path}: the gateway keeps the connection`);
        ports.push(res.port);
      }
      assert.equal(new Set(ports).size, 1, `one connection for all three: local ports ${ports.join(", ")}`);
    } finally {
      agent.destroy();
    }
  });

  test("harness: kill() (SIGKILL) and restart() keep the data; stop() ends the PID and removes the data dir", { ...T, timeout: 60_000 }, async () => {
    if (gate.failReason) assert.fail(gate.failReason);
    const e = await startEtcd();
    try {
      const g = await etcdPost<LeaseGrantResponse>(e.clientUrl, "/v3/lease/grant", { TTL: 60 });
      await etcdPost(e.clientUrl, "/v3/kv/put", { key: b64("/h/k"), value: b64("kept"), lease: g.ID });
      const pid1 = e.pid;
      await e.kill();
      assert.equal(e.running, false);
      assert.throws(() => process.kill(pid1, 0), /ESRCH/, "the killed PID is gone");
      await assert.rejects(httpJson(e.clientUrl, "POST", "/v3/kv/range", { key: b64("/h/k") }, 1000), "etcd is down");
      await e.restart();
      assert.notEqual(e.pid, pid1);
      const r = await etcdPost<RangeResponse>(e.clientUrl, "/v3/kv/range", { key: b64("/h/k") });
      assert.equal(unb64(r.kvs![0].value), "kept", "same clientUrl, same data after a crash");
      const ttl = await etcdPost<TimeToLiveResponse>(e.clientUrl, "/v3/lease/timetolive", { ID: g.ID });
      assert.ok(Number(ttl.TTL) > 0, "the lease survived the restart (a restart never shortens a lease)");
      const pid2 = e.pid;
      await e.halt();
      assert.throws(() => process.kill(pid2, 0), /ESRCH/);
      await e.restart();
      assert.equal(unb64((await etcdPost<RangeResponse>(e.clientUrl, "/v3/kv/range", { key: b64("/h/k") })).kvs![0].value), "kept");
    } finally {
      const pid = e.pid;
      await e.stop();
      assert.throws(() => process.kill(pid, 0), /ESRCH/);
      assert.equal(existsSync(e.dataDir), false, "the temporary data dir is removed");
    }
  });
});
