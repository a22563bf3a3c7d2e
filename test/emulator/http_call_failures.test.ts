// How Envoy 1.30–1.36 reports a proxy_http_call that did not get a plain answer. Sources (read, not copied):
// envoy source/extensions/common/wasm/context.cc :: Context::onHttpCallSuccess / onHttpCallFailure (status_code_ 11
// BrokenConnection, status_message_ "reset" only during the callback), Context::httpCall (send() == nullptr →
// InternalFailure); source/common/http/async_client_impl.cc :: AsyncStreamImpl (router local replies are encoded as
// responses; a local reply after the response headers resets the stream → AsyncRequestSharedImpl::onReset →
// onFailure(Reset)), AsyncClientImpl::internalStartRequest (a request completed inside send() returns nullptr);
// source/common/router/router.cc :: Filter::onResponseTimeout / onUpstreamReset / onUpstreamAbort (504 "upstream
// request timeout", 503 "upstream connect error or disconnect/reset before headers. reset reason: …").
import { test } from "node:test";
import assert from "node:assert/strict";
import type http from "node:http";
import { GET, conn, slot, start } from "./probes/helpers.ts";
import { callbacks, deadPort, httpCallProbe, record, testServer, type TestServer } from "./probes/http_call.ts";

const R = { Ok: 0, NotFound: 1, BadArgument: 2, InternalFailure: 10 };
const CONNECT_ERROR = "upstream connect error or disconnect/reset before headers. reset reason: ";
const clusterAt = (port: number) => ({ etcd: { endpoints: [{ host: "127.0.0.1", port }] } });

async function oneCall(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, timeoutMs = 1000, port?: number) {
  const s: TestServer = await testServer(handler);
  const { proc, h } = start(httpCallProbe({ calls: [{ timeoutMs }] }), { clusters: clusterAt(port ?? s.port), concurrency: 1 });
  try {
    h.newStream(0, conn()).decodeHeaders(GET, true);
    assert.equal(slot(h, 0, 0), R.Ok);
    await proc.httpCallsIdle();
    assert.equal(callbacks(h, 0), 1);
    return { rec: record(h, 0, 0), proc, h, s };
  } finally {
    proc.close();
    await s.close();
  }
}

test("timeout before the response headers: the router's 504 \"upstream request timeout\" arrives as a response " +
  "(not a failure: proxy_get_status stays 0)", async () => {
  const { rec } = await oneCall(() => {}, 150);
  assert.equal(rec.status, "504");
  assert.deepEqual(rec.headers, [[":status", "504"], ["content-length", "24"], ["content-type", "text/plain"]]);
  assert.equal(rec.body, "upstream request timeout");
  assert.deepEqual([rec.nHeaders, rec.bodyLen, rec.nTrailers], [3, 24, 0]);
  assert.deepEqual([rec.statusCode, rec.statusMessage], [0, ""]);
});

test("timeout after the response headers: reset → (root, token, 0, 0, 0); inside the callback proxy_get_status is " +
  "11 (BrokenConnection) \"reset\", buffer 4 NotFound, map 6 BadArgument", async () => {
  const { rec, h } = await oneCall((_q, res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write("partial");
  }, 200);
  assert.equal(rec.root, h.rootContextId(0));
  assert.deepEqual([rec.token, rec.nHeaders, rec.bodyLen, rec.nTrailers], [4, 0, 0, 0]);
  assert.deepEqual([rec.getStatusR, rec.statusCode, rec.statusMessage], [R.Ok, 11, "reset"]);
  assert.equal(rec.bodyR, R.NotFound);
  assert.equal(rec.statusR, R.BadArgument);
  assert.deepEqual(rec.headers, []);
});

test("connection refused: 503 from the router as a response, reset reason remote connection failure", async () => {
  const port = await deadPort();
  const { rec } = await oneCall(() => {}, 1000, port);
  assert.equal(rec.status, "503");
  assert.ok(rec.body.startsWith(CONNECT_ERROR + "remote connection failure"), rec.body);
  assert.deepEqual(rec.headers.map(([k]) => k), [":status", "content-length", "content-type"]);
  assert.equal(rec.statusCode, 0);
});

test("connection closed before any response byte: 503 … reset reason: connection termination (a response)", async () => {
  const { rec } = await oneCall((req) => req.socket.destroy());
  assert.equal(rec.status, "503");
  assert.equal(rec.body, CONNECT_ERROR + "connection termination");
  assert.equal(rec.statusCode, 0);
});

test("upstream resets in the middle of the body: (0, 0, 0) with status 11 \"reset\"", async () => {
  const { rec } = await oneCall((req, res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write("partial", () => setTimeout(() => req.socket.destroy(), 20));
  });
  assert.deepEqual([rec.nHeaders, rec.bodyLen, rec.nTrailers], [0, 0, 0]);
  assert.deepEqual([rec.statusCode, rec.statusMessage], [11, "reset"]);
});

test("after a failure the root's status code stays 11 for later successful calls; only the message is reset", async () => {
  let n = 0;
  const s = await testServer((req, res) => {
    if (n++ === 0) {
      res.writeHead(200, { "content-length": "10" });
      res.write("x", () => setTimeout(() => req.socket.destroy(), 20));
    } else res.end("ok");
  });
  const { proc, h } = start(httpCallProbe(), { clusters: clusterAt(s.port), concurrency: 1 });
  h.newStream(0, conn()).decodeHeaders(GET, true);
  await proc.httpCallsIdle();
  h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.deepEqual([slot(h, 0, 24)], [11], "a stream's get_status reads its root's status: 11 outside the callback too");
  await proc.httpCallsIdle();
  const first = record(h, 0, 0), second = record(h, 0, 1);
  assert.deepEqual([first.nHeaders, first.statusCode, first.statusMessage], [0, 11, "reset"]);
  assert.deepEqual([second.status, second.body, second.statusCode, second.statusMessage], ["200", "ok", 11, ""]);
  proc.close();
  await s.close();
});

test("a cluster without endpoints: the router answers inside send() → InternalFailure, token 0, no callback; " +
  "the token number was used up", async () => {
  const s = await testServer((_q, res) => res.end("ok"));
  const { proc, h } = start(httpCallProbe({ calls: [{ cluster: "empty" }, {}] }),
    { clusters: { empty: { endpoints: [] }, ...clusterAt(s.port) }, concurrency: 1 });
  h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.deepEqual([slot(h, 0, 0), slot(h, 0, 1)], [R.InternalFailure, 0]);
  assert.deepEqual([slot(h, 0, 2), slot(h, 0, 3)], [R.Ok, 8], "the failed call consumed token 4");
  await proc.httpCallsIdle();
  assert.equal(callbacks(h, 0), 1);
  assert.equal(record(h, 0, 0).token, 8);
  proc.close();
  await s.close();
});

test("ABI: there is no proxy_dispatch_http_call host function (that is an SDK name) — importing it fails to load", async () => {
  const { Probe } = await import("./probes/build.ts");
  const p = new Probe({ raw: `(import "env" "proxy_dispatch_http_call" (func $d (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))` });
  p.on("proxy_on_request_headers", "(i32.const 0)");
  assert.throws(() => start(p.build()), /missing import: env\.proxy_dispatch_http_call/);
  // ABI 0.1.0 modules use the same proxy_http_call import
  const s = await testServer((_q, res) => res.end("ok"));
  const { proc, h } = start(httpCallProbe({ abi: "0_1_0" }), { clusters: clusterAt(s.port), concurrency: 1 });
  h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.deepEqual([slot(h, 0, 0), slot(h, 0, 1)], [R.Ok, 4]);
  await proc.httpCallsIdle();
  assert.equal(record(h, 0, 0).body, "ok");
  proc.close();
  await s.close();
});
