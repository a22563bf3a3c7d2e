// proxy_http_call as Envoy 1.30–1.36 implements it: arguments, the request on the wire, the response callback and
// its buffers/maps. Sources (read, not copied): cpp-host src/exports.cc :: exports::http_call (root context, token
// pre-write), include/proxy-wasm/wasm.h :: nextHttpCallId; envoy source/extensions/common/wasm/context.cc ::
// Context::httpCall, onHttpCallSuccess, onHttpCallFailure, getConstMap, getMap, getBuffer;
// source/common/http/async_client_impl.cc :: AsyncStreamImpl::sendHeaders, AsyncRequestImpl::initialize;
// source/common/router/router.cc :: Filter::onUpstreamHeaders (x-envoy-upstream-service-time), FilterUtility::finalTimeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StepResult } from "./host/api.ts";
import { GET, conn, slot, start } from "./probes/helpers.ts";
import { ETCD_GET, callbacks, httpCallProbe, record, testServer, type TestServer } from "./probes/http_call.ts";

const R = { Ok: 0, NotFound: 1, BadArgument: 2, InvalidMemoryAccess: 6, InternalFailure: 10 };
const cluster = (s: TestServer) => ({ etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } });

async function withServer(f: (s: TestServer) => Promise<void>, handler = (_q: unknown, res: import("node:http").ServerResponse) => {
  res.setHeader("content-type", "application/json");
  res.end('{"count":"1"}');
}) {
  const s = await testServer((q, r) => handler(q, r));
  try {
    await f(s);
  } finally {
    await s.close();
  }
}

test("unknown cluster → BadArgument, token 0, nothing sent, no callback (Context::httpCall getThreadLocalCluster)", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe({ calls: [{ cluster: "nope" }] }), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.equal(slot(h, 0, 0), R.BadArgument);
    assert.equal(slot(h, 0, 1), 0, "token_ptr holds the 0 written before the call");
    assert.equal(proc.pendingHttpCalls, 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(callbacks(h, 0), 0);
    assert.equal(s.seen.length, 0);
    proc.close();
  });
});

test(":method, :path and :authority are required (a plain host header does not count) → BadArgument", async () => {
  await withServer(async (s) => {
    const drop = (k: string) => ETCD_GET.filter(([n]) => n !== k);
    const { proc, h } = start(httpCallProbe({ calls: [
      { headers: drop(":method") }, { headers: drop(":path") }, { headers: drop(":authority") },
      { headers: [...drop(":authority"), ["host", "etcd"]] }, { headers: [[":method", "GET"], [":path", "/"], [":authority", ""]] },
    ] }), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.deepEqual([0, 2, 4, 6].map((i) => slot(h, 0, i)), [R.BadArgument, R.BadArgument, R.BadArgument, R.BadArgument]);
    assert.equal(slot(h, 0, 8), R.Ok, "an empty :authority is present");
    assert.equal(slot(h, 0, 9), 4, "the first token of the VM (the failed calls consumed none)");
    await proc.httpCallsIdle();
    proc.close();
  });
});

test("timeout is a C int: a word ≥ 2^31 → BadArgument; bad token_ptr → InvalidMemoryAccess, nothing sent", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe({ calls: [{ timeoutMs: 0x80000000 }, { tokenPtr: 0xfffffff0 }] }), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.equal(slot(h, 0, 0), R.BadArgument);
    assert.equal(slot(h, 0, 2), R.InvalidMemoryAccess);
    assert.equal(proc.pendingHttpCalls, 0);
    proc.close();
  });
});

test("tokens 4, 8, 12 … per VM instance (WasmBase::nextHttpCallId); each response to the root that owns the call", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe({ calls: [{}, {}] }), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    h.newStream(1, conn()).decodeHeaders(GET, true);
    h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.deepEqual([slot(h, 0, 1), slot(h, 0, 3)], [12, 16], "worker-0: second stream's calls");
    assert.deepEqual([slot(h, 1, 1), slot(h, 1, 3)], [4, 8], "worker-1 counts on its own");
    await proc.httpCallsIdle();
    assert.equal(callbacks(h, 0), 4);
    assert.equal(callbacks(h, 1), 2);
    const tokens0 = [0, 1, 2, 3].map((n) => record(h, 0, n).token).sort((a, b) => a - b);
    assert.deepEqual(tokens0, [4, 8, 12, 16]);
    for (const n of [0, 1, 2, 3]) assert.equal(record(h, 0, n).root, h.rootContextId(0), "root context id, not the stream's");
    proc.close();
  });
});

test("the request on the wire: request line and host from the pseudo-headers, content-length = body, x-envoy-internal, " +
  "x-envoy-expected-rq-timeout-ms only with a timeout, request trailers not sent", async () => {
  await withServer(async (s) => {
    const hdrs: Array<[string, string]> = [[":method", "POST"], [":path", "/v3/kv/put"], [":authority", "etcd.local:2379"],
      ["Content-Type", "application/json"], ["content-length", "999"]];
    const { proc, h } = start(httpCallProbe({ calls: [
      { headers: hdrs, body: '{"key":"YQ=="}', trailers: [["x-tr", "1"]], timeoutMs: 2500 },
      { timeoutMs: 0 },
    ] }), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    await proc.httpCallsIdle();
    const post = s.seen.find((x) => x.method === "POST")!, get = s.seen.find((x) => x.method === "GET")!;
    assert.equal(post.url, "/v3/kv/put");
    const v = (x: typeof post, k: string) => x.headers.filter(([n]) => n === k).map(([, w]) => w);
    assert.deepEqual(v(post, "host"), ["etcd.local:2379"]);
    assert.deepEqual(v(post, "content-type"), ["application/json"], "keys lower-cased, values kept");
    assert.deepEqual(v(post, "content-length"), ["14"], "setContentLength replaces the module's value");
    assert.equal(post.body, '{"key":"YQ=="}');
    assert.deepEqual(v(post, "x-envoy-internal"), ["true"]);
    assert.deepEqual(v(post, "x-envoy-expected-rq-timeout-ms"), ["2500"]);
    assert.deepEqual(post.trailers, [], "AsyncRequestImpl::initialize never sends request trailers");
    assert.deepEqual(v(get, "x-envoy-expected-rq-timeout-ms"), [], "timeout 0 = no timeout, no header");
    assert.deepEqual(v(get, "content-length"), [], "no body → no content-length added");
    proc.close();
  });
});

test("the response: (root, token, n headers incl. :status + x-envoy-upstream-service-time, body bytes, n trailers); " +
  "maps 6/7 and buffer 4 readable, read-only (mutations/size BadArgument)", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe(), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    await proc.httpCallsIdle();
    const r = record(h, 0, 0);
    assert.equal(r.root, h.rootContextId(0));
    assert.equal(r.token, 4);
    assert.equal(r.status, "200");
    assert.equal(r.headers[0][0], ":status");
    assert.equal(r.headers.at(-1)![0], "x-envoy-upstream-service-time", "added by the router");
    assert.equal(r.nHeaders, r.headers.length);
    assert.deepEqual(r.headers.find(([k]) => k === "content-type"), ["content-type", "application/json"]);
    assert.equal(r.bodyLen, 13);
    assert.equal(r.body, '{"count":"1"}');
    assert.deepEqual([r.bufferStatusR, r.bufferStatusLen], [R.Ok, 13]);
    assert.equal(r.nTrailers, 0);
    assert.deepEqual([r.trailers, r.trailerValueR], [[], R.BadArgument], "no trailers: map 7 is unavailable (nullptr)");
    assert.equal(r.setBufferR, R.BadArgument, "a string buffer cannot be set");
    assert.equal(r.addHeaderR, R.BadArgument, "getMap() has no map 6");
    assert.equal(r.headerSizeR, R.BadArgument, "getHeaderMapSize uses getMap()");
    assert.deepEqual([r.getStatusR, r.statusCode, r.statusMessage], [R.Ok, 0, ""]);
    proc.close();
  });
});

test("response trailers (chunked HTTP/1.1) are map 7; a 5xx is a normal response", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe(), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    await proc.httpCallsIdle();
    const r = record(h, 0, 0);
    assert.equal(r.status, "503");
    assert.equal(r.body, "etcdserver: leader changed");
    assert.deepEqual(r.trailers, [["x-t", "v"]]);
    assert.equal(r.nTrailers, 1);
    assert.equal(r.trailerValueR, R.Ok);
    assert.deepEqual([r.statusCode, r.statusMessage], [0, ""], "no failure status for a 5xx");
    proc.close();
  }, (_q, res) => {
    res.writeHead(503, { "transfer-encoding": "chunked", trailer: "x-t" });
    res.write("etcdserver: leader changed");
    res.addTrailers({ "x-t": "v" });
    res.end();
  });
});

test("outside the callback the response is gone: buffer 4 NotFound, map 6 value BadArgument, pairs empty", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe(), { clusters: cluster(s) });
    h.newStream(0, conn()).decodeHeaders(GET, true);
    await proc.httpCallsIdle();
    h.newStream(0, conn()).decodeHeaders(GET, true); // records 20..23 before its own call
    assert.deepEqual([slot(h, 0, 20), slot(h, 0, 21), slot(h, 0, 22), slot(h, 0, 23)], [R.NotFound, R.BadArgument, R.Ok, 0]);
    await proc.httpCallsIdle();
    proc.close();
  });
});

test("a call from the root context (on_tick) works the same; the stream's onAsync sees nothing", async () => {
  await withServer(async (s) => {
    const { proc, h } = start(httpCallProbe({ tickMs: 10 }), { clusters: cluster(s), concurrency: 1 });
    const st = h.newStream(0, conn());
    const ev: StepResult[] = [];
    st.events = { onAsync: (x) => ev.push(x) };
    assert.equal(st.decodeHeaders(GET, true).kind, "continue");
    proc.advance(10);
    assert.deepEqual([slot(h, 0, 0), slot(h, 0, 1)], [R.Ok, 4]);
    assert.equal(slot(h, "main", 1), 4, "the main-thread VM ticks and calls too, with its own token counter");
    await proc.httpCallsIdle();
    assert.equal(record(h, 0, 0).root, h.rootContextId(0));
    assert.equal(record(h, "main", 0).status, "200");
    assert.deepEqual(ev, []);
    proc.close();
  });
});
