import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvoyProcess, parsePairs, type PluginHandleImpl } from "./host/index.ts";
import { Probe } from "./probes/build.ts";
import { conn, GET, scratch, slot } from "./probes/helpers.ts";

/** probe reading property `path` (segments joined by \0) into the scratch slot from the given callbacks */
function propProbe(path: string[], where: string[]) {
  const p = new Probe();
  const read = (i: number) => p.store(i, `(call $proxy_get_property ${p.s(path.join("\0"))} (i32.const 128) (i32.const 132))`);
  where.forEach((cb, i) => {
    const ret = ["proxy_on_log", "proxy_on_context_create"].includes(cb) ? "" : "(i32.const 0)";
    p.on(cb, `${read(i)} ${cb === "proxy_on_configure" || cb === "proxy_on_vm_start" ? "(i32.const 1)" : ret}`);
  });
  return p.build();
}
function run(path: string[], where: string[], opts: ConstructorParameters<typeof EnvoyProcess>[0] = {}, steps?: (s: ReturnType<PluginHandleImpl["newStream"]>) => void) {
  const proc = new EnvoyProcess({ concurrency: 1, node: { id: "sidecar~10.0.0.9~pod-a.ns~ns.svc.cluster.local", metadata: { NAME: "pod-a", LABELS: { app: "x" } } }, ...opts });
  const h = proc.addPlugin({ wasm: propProbe(path, where), name: "plug", rootId: "root", vmId: "vm1" }) as PluginHandleImpl;
  const s = h.newStream(0, conn(42));
  (steps ?? ((st) => { st.decodeHeaders(GET, false); }))(s);
  return { h, s };
}

test("§6.2 strings raw, integers 8-byte little-endian", () => {
  const { h } = run(["source", "port"], ["proxy_on_request_headers"]);
  assert.equal(slot(h, 0, 0), 0);
  assert.deepEqual([...scratch(h, 0)], [0x40, 0x9c, 0, 0, 0, 0, 0, 0]);
  const r = run(["source", "address"], ["proxy_on_request_headers"]);
  assert.equal(Buffer.from(scratch(r.h, 0)).toString(), "10.0.0.1:40000");
  const c = run(["connection", "id"], ["proxy_on_request_headers"]);
  assert.equal(Buffer.from(scratch(c.h, 0)).readBigUInt64LE(0), 42n);
});

test("§6.3 request.* NotFound after on_request_headers returned Continue; back in on_log", () => {
  const { h, s } = run(["request", "path"], ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_log"]);
  assert.equal(slot(h, 0, 0), 0);
  assert.equal(Buffer.from(scratch(h, 0)).toString(), "/ws?x=1");
  s.decodeData(Buffer.from("x"), false);
  assert.equal(slot(h, 0, 1), 1);
  s.complete();
  assert.equal(slot(h, 0, 2), 0);
});

test("§6.3 response.code from on_response_headers; upstream.address absent in on_request_headers, present after setUpstream", () => {
  const { h } = run(["response", "code"], ["proxy_on_request_headers", "proxy_on_response_headers"], {}, (s) => {
    s.decodeHeaders(GET, true);
    s.encodeHeaders([[":status", "101"]], false);
  });
  assert.equal(slot(h, 0, 0), 1);
  assert.equal(slot(h, 0, 1), 0);
  assert.equal(Buffer.from(scratch(h, 0)).readBigInt64LE(0), 101n);
  const u = run(["upstream", "address"], ["proxy_on_request_headers", "proxy_on_response_headers"], {}, (s) => {
    s.decodeHeaders(GET, true);
    s.setUpstream({ address: "10.1.1.1:8081" });
    s.encodeHeaders([[":status", "200"]], true);
  });
  assert.equal(slot(u.h, 0, 0), 1);
  assert.equal(slot(u.h, 0, 1), 0);
  assert.equal(Buffer.from(scratch(u.h, 0)).toString(), "10.1.1.1:8081");
});

test("§6.3 root context sees only plugin_* and xds.node", () => {
  for (const [path, want] of [[["plugin_name"], 0], [["plugin_root_id"], 0], [["plugin_vm_id"], 0], [["xds", "node", "id"], 0],
    [["source", "address"], 1], [["xds", "cluster_name"], 1]] as const) {
    const { h } = run([...path], ["proxy_on_configure"], {}, () => {});
    assert.equal(slot(h, 0, 0), want, path.join("."));
  }
  const { h } = run(["plugin_vm_id"], ["proxy_on_configure"], {}, () => {});
  assert.equal(Buffer.from(scratch(h, 0)).toString(), "vm1");
});

test("§6.1 xds.node.metadata.KEY everywhere; top-level node.* only on 1.30–1.32; maps in pairs format", () => {
  const a = run(["xds", "node", "metadata", "NAME"], ["proxy_on_request_headers"], { envoyVersion: "1.36" });
  assert.equal(Buffer.from(scratch(a.h, 0)).toString(), "pod-a");
  const b = run(["node", "metadata", "NAME"], ["proxy_on_request_headers"], { envoyVersion: "1.33" });
  assert.equal(slot(b.h, 0, 0), 1);
  const c = run(["node", "metadata", "NAME"], ["proxy_on_request_headers"], { envoyVersion: "1.32" });
  assert.equal(slot(c.h, 0, 0), 0);
  const d = run(["xds", "node", "metadata", "LABELS"], ["proxy_on_request_headers"]);
  assert.deepEqual(parsePairs(scratch(d.h, 0)), [["app", "x"]]);
  const e = run(["xds", "node"], ["proxy_on_request_headers"]);
  assert.equal(scratch(e.h, 0)[0], 0x0a, "protobuf Node: field 1 (id), wire type 2");
});

test("§6.3 dynamic metadata and set_property round trip", () => {
  const { h } = run(["metadata", "filter_metadata", "jwt", "sub"], ["proxy_on_request_headers"], {}, (s) => {
    s.setDynamicMetadata!("jwt", { sub: "alice" });
    s.decodeHeaders(GET, true);
  });
  assert.equal(Buffer.from(scratch(h, 0)).toString(), "alice");
  const p = new Probe();
  p.on("proxy_on_request_headers", `${p.store(0, `(call $proxy_set_property ${p.s("mine")} ${p.s("v1")})`)}
    ${p.store(1, `(call $proxy_get_property ${p.s("mine")} (i32.const 128) (i32.const 132))`)} (i32.const 0)`);
  p.on("proxy_on_configure", `${p.store(2, `(call $proxy_set_property ${p.s("mine")} ${p.s("v1")})`)} (i32.const 1)`);
  const proc = new EnvoyProcess({ concurrency: 1 });
  const h2 = proc.addPlugin({ wasm: p.build() }) as PluginHandleImpl;
  assert.equal(slot(h2, 0, 2), 1, "NotFound from a root context");
  h2.newStream(0, conn()).decodeHeaders(GET, true);
  assert.equal(slot(h2, 0, 0), 0);
  assert.equal(Buffer.from(scratch(h2, 0)).toString(), "v1");
});
