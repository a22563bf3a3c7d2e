// A request waiting for a proxy_http_call (the fleet pattern: StopIteration in on_request_headers, then
// proxy_continue_stream from the root's proxy_on_http_call_response via proxy_set_effective_context), and the
// lifetime of a call. Sources (read, not copied): cpp-host src/exports.cc :: http_call (contextOrEffectiveContext()->
// root_context()), set_effective_context, continue_stream; src/context.cc :: ContextBase::onHttpCallResponse
// (isFailed → no call); envoy context.cc :: Context::continueStream (continueDecoding deferred with
// addAfterVmCallAction), Context::~Context (cancels outstanding http calls), Context::onHttpCallSuccess;
// source/common/http/filter_manager.cc :: ActiveStreamFilterBase::commonContinue (headers_continued_ already set
// after Continue → nothing is replayed; canContinue() false once the response is complete).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StepResult } from "./host/api.ts";
import { GET, conn, slot, start } from "./probes/helpers.ts";
import { bootstrap, rawExchange, startInProxy, statusLine } from "./probes/in_proxy.ts";
import { callbacks, httpCallProbe, record, testServer } from "./probes/http_call.ts";

const R = { Ok: 0, BadArgument: 2 };
const POST: Array<[string, string]> = [[":authority", "example.com"], [":path", "/ws"], [":method", "POST"], [":scheme", "http"],
  ["content-length", "3"]];

test("StopIteration in on_request_headers, then continue_stream(0) from on_http_call_response via the effective " +
  "context: the stream resumes after the VM call, with the body that arrived meanwhile", async () => {
  const s = await testServer((_q, res) => setTimeout(() => res.end("ok"), 50));
  const { proc, h } = start(httpCallProbe({ resume: true }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } } });
  const st = h.newStream(0, conn());
  const ev: Array<[StepResult, string]> = [];
  st.events = { onAsync: (r, d) => ev.push([r, d]) };
  assert.deepEqual(st.decodeHeaders(POST, false), { kind: "stop" });
  assert.deepEqual(st.decodeData(new Uint8Array([97, 98, 99]), false), { kind: "stop" }, "StopAll: buffered by the filter manager");
  assert.deepEqual(st.decodeData(new Uint8Array(0), true), { kind: "stop" });
  assert.equal(ev.length, 0, "nothing forwarded while the call is outstanding");
  await proc.httpCallsIdle();
  assert.equal(record(h, 0, 0).effectiveR, R.Ok);
  assert.equal(ev.length, 2);
  assert.equal(ev[0][1], "request");
  assert.deepEqual(ev[0][0], { kind: "continue", headers: POST });
  assert.equal(ev[1][0].kind, "continue");
  assert.deepEqual([...((ev[1][0] as { data: Uint8Array }).data)], [97, 98, 99]);
  proc.close();
  await s.close();
});

test("continue_stream for a stream that is not paused (its headers returned Continue) is Ok and does nothing", async () => {
  const s = await testServer((_q, res) => res.end("ok"));
  const { proc, h } = start(httpCallProbe({ resume: true, ret: 0 }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } } });
  const st = h.newStream(0, conn());
  const ev: StepResult[] = [];
  st.events = { onAsync: (r) => ev.push(r) };
  assert.equal(st.decodeHeaders(GET, true).kind, "continue");
  await proc.httpCallsIdle();
  assert.equal(record(h, 0, 0).effectiveR, R.Ok);
  assert.deepEqual(ev, [], "no second decodeHeaders downstream of the filter");
  proc.close();
  await s.close();
});

test("the stream ends (client reset) while its call is outstanding: the call belongs to the root, the callback " +
  "still comes; the stream's id is gone (set_effective_context BadArgument) and continue_stream acts on the root: Ok, nothing", async () => {
  const s = await testServer((_q, res) => setTimeout(() => res.end("late"), 50));
  const { proc, h } = start(httpCallProbe({ resume: true }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } } });
  const st = h.newStream(0, conn());
  const ev: StepResult[] = [];
  st.events = { onAsync: (r) => ev.push(r) };
  st.decodeHeaders(GET, true);
  st.reset("downstream_remote_disconnect");
  assert.equal(st.ended, true);
  await proc.httpCallsIdle();
  assert.equal(callbacks(h, 0), 1);
  const r = record(h, 0, 0);
  assert.deepEqual([r.root, r.body, r.effectiveR], [h.rootContextId(0), "late", R.BadArgument]);
  assert.deepEqual(ev, []);
  proc.close();
  await s.close();
});

test("plugin removed while a call is outstanding: the root gets on_done/on_delete, ~Context cancels the call, no callback", async () => {
  let answer: (() => void) | undefined;
  const s = await testServer((_q, res) => { answer = () => res.end("too late"); });
  const { proc, h } = start(httpCallProbe({ ret: 0 }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } }, concurrency: 1 });
  const st = h.newStream(0, conn());
  st.decodeHeaders(GET, true);
  st.complete();
  while (s.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(proc.pendingHttpCalls, 1);
  h.remove();
  assert.equal(proc.pendingHttpCalls, 0, "cancelled with the root context");
  answer?.();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(callbacks(h, 0), 0);
  proc.close();
  await s.close();
});

test("the VM fails (trap) while a call is outstanding: no callback (ContextBase::onHttpCallResponse checks isFailed)", async () => {
  let answer: (() => void) | undefined;
  const s = await testServer((_q, res) => { answer = () => res.end("ok"); });
  const { proc, h } = start(httpCallProbe({ ret: 0 }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } }, concurrency: 1 });
  h.newStream(0, conn()).decodeHeaders(GET, true);
  while (s.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  h.trapOnNextHostCall(0);
  h.newStream(0, conn()).decodeHeaders(GET, true);
  assert.equal(h.vmFailed(0), true);
  answer?.();
  await proc.httpCallsIdle();
  assert.equal(callbacks(h, 0), 0);
  proc.close();
  await s.close();
});

test("calls made in on_configure: each VM's root gets its own answer; the canary's call dies with the canary", async () => {
  const s = await testServer((_q, res) => setTimeout(() => res.end("cfg"), 20));
  const { proc, h } = start(httpCallProbe({ fromConfigure: true }), { clusters: { etcd: { endpoints: [{ host: "127.0.0.1", port: s.port }] } }, concurrency: 2 });
  await proc.httpCallsIdle();
  for (const w of ["main", 0, 1] as const) {
    assert.equal(callbacks(h, w), 1, `VM ${w}`);
    assert.deepEqual([record(h, w, 0).token, record(h, w, 0).body], [4, "cfg"]);
  }
  assert.equal(slot(h, 0, 0), R.Ok);
  proc.close();
  await s.close();
});

test("loopback proxy: the bootstrap's cluster (clusterOverrides applied) is what proxy_http_call names; the client's " +
  "request reaches its upstream only after the call's answer resumed it", async () => {
  const order: string[] = [];
  const etcd = await testServer((_q, res) => setTimeout(() => { order.push("etcd answered"); res.end('{"kvs":[]}'); }, 80));
  const pod = await testServer((_q, res) => { order.push("upstream got the request"); res.end("pod"); });
  const doc = bootstrap() as { static_resources: { clusters: object[] } };
  doc.static_resources.clusters.push({ name: "etcd", type: "STATIC", connect_timeout: "1s",
    load_assignment: { cluster_name: "etcd", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }] }] } });
  const e = await startInProxy(httpCallProbe({ resume: true }), doc, {
    clusterOverrides: { demo_pods: [{ host: "127.0.0.1", port: pod.port }], etcd: [{ host: "127.0.0.1", port: etcd.port }] },
  });
  try {
    const resp = await rawExchange(e.proxy.listenerPort, ["GET /ws HTTP/1.1", "Host: example.com"]);
    assert.equal(statusLine(resp), "HTTP/1.1 200 OK");
    assert.ok(resp.endsWith("pod"), resp);
    assert.deepEqual(order, ["etcd answered", "upstream got the request"]);
    assert.equal(etcd.seen[0].url, "/v3/kv/range");
    const r = record(e.h, 0, 0);
    assert.deepEqual([r.status, r.body, r.effectiveR], ["200", '{"kvs":[]}', R.Ok]);
  } finally {
    await e.close();
    await etcd.close();
    await pod.close();
  }
});
