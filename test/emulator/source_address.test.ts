// envoy-host.md §13.2: which address `source.address` is — the HCM's mutateRequestHeaders in the loopback proxy,
// driven by the listener's HCM settings (use_remote_address, xff_num_trusted_hops) and the request's x-forwarded-for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bootstrap, propertyProbe, rawExchange, startInProxy, statusLine, type InProxy } from "./probes/in_proxy.ts";

const PATHS = ["source.address", "source.port", "request.headers.x-forwarded-for",
  "request.headers.x-envoy-external-address", "request.headers.x-forwarded-proto", "request.headers.x-forwarded-client-cert"];
const WASM = propertyProbe(PATHS).build();
const LOCAL = "192.0.2.10"; // Envoy's local_info address in these tests

async function ask(e: InProxy, extra: string[]): Promise<{ source: string; port: bigint; xff?: string; ext?: string; xfp?: string; xfcc?: string }> {
  const r = await rawExchange(e.proxy.listenerPort, ["GET /x HTTP/1.1", "Host: example.com", ...extra]);
  assert.equal(statusLine(r), "HTTP/1.1 200 OK", r);
  const str = (i: number) => (e.prop(i).status === 0 ? e.prop(i).value.toString() : undefined);
  return { source: str(0)!, port: e.prop(1).value.readBigInt64LE(0), xff: str(2), ext: str(3), xfp: str(4), xfcc: str(5) };
}

async function withProxy(hcm: Record<string, unknown>, fn: (e: InProxy) => Promise<void>): Promise<void> {
  const e = await startInProxy(WASM, bootstrap({ hcm }), { localAddress: LOCAL });
  try {
    await fn(e);
  } finally {
    await e.close();
  }
}

test("§13.2 use_remote_address false (default): the last x-forwarded-for entry is source.address (port 0); else the peer", async () => {
  await withProxy({ use_remote_address: false }, async (e) => {
    const plain = await ask(e, []);
    assert.match(plain.source, /^127\.0\.0\.1:\d+$/, "no XFF: the peer");
    assert.notEqual(plain.port, 0n);
    assert.equal(plain.xff, undefined, "XFF not appended without use_remote_address");
    assert.equal(plain.ext, undefined);

    const forged = await ask(e, ["X-Forwarded-For: 203.0.113.7"]);
    assert.equal(forged.source, "203.0.113.7:0", "a client chooses its own source.address");
    assert.equal(forged.port, 0n);
    assert.equal((await ask(e, ["X-Forwarded-For: 1.1.1.1, 203.0.113.8"])).source, "203.0.113.8:0", "last entry, trimmed");
    assert.equal((await ask(e, ["X-Forwarded-For: 2001:db8::1"])).source, "[2001:db8::1]:0");
    assert.match((await ask(e, ["X-Forwarded-For: not-an-ip"])).source, /^127\.0\.0\.1:\d+$/, "invalid → the peer");
    assert.match((await ask(e, ["X-Forwarded-For: 1.1.1.1,"])).source, /^127\.0\.0\.1:\d+$/, "trailing comma → invalid");
    // x-forwarded-for is an inline header: two lines are one value "1.1.1.1,2.2.2.2" (§13.3)
    const two = await ask(e, ["X-Forwarded-For: 1.1.1.1", "X-Forwarded-For: 2.2.2.2"]);
    assert.equal(two.source, "2.2.2.2:0");
    assert.equal(two.xff, "1.1.1.1,2.2.2.2");
    assert.equal((await ask(e, ["X-Forwarded-Client-Cert: By=spiffe://forged"])).xfcc, undefined, "XFCC sanitized (default)");
  });
});

test("§13.2 use_remote_address false, xff_num_trusted_hops 1: the second entry from the right", async () => {
  await withProxy({ use_remote_address: false, xff_num_trusted_hops: 1 }, async (e) => {
    assert.equal((await ask(e, ["X-Forwarded-For: 1.1.1.1,2.2.2.2"])).source, "1.1.1.1:0");
    assert.match((await ask(e, ["X-Forwarded-For: 2.2.2.2"])).source, /^127\.0\.0\.1:\d+$/, "too few entries → the peer");
  });
});

test("§13.2 use_remote_address true: the peer; XFF gets the local address appended for a loopback peer; edge headers", async () => {
  await withProxy({ use_remote_address: true }, async (e) => {
    const r = await ask(e, ["X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"]);
    assert.match(r.source, /^127\.0\.0\.1:\d+$/, "XFF is not trusted");
    assert.equal(r.xff, `203.0.113.7,${LOCAL}`, "appendXff(config.localAddress()) for a loopback peer");
    assert.equal(r.ext, "127.0.0.1", "x-envoy-external-address = the final address");
    assert.equal(r.xfp, "http", "x-forwarded-proto overwritten (no trusted hops)");
    const none = await ask(e, []);
    assert.equal(none.xff, LOCAL);
  });
});

test("§13.2 use_remote_address true, xff_num_trusted_hops 1: the last XFF entry before the peer is appended", async () => {
  await withProxy({ use_remote_address: true, xff_num_trusted_hops: 1, skip_xff_append: true }, async (e) => {
    const r = await ask(e, ["X-Forwarded-For: 198.51.100.1, 203.0.113.7", "X-Forwarded-Proto: https"]);
    assert.equal(r.source, "203.0.113.7:0");
    assert.equal(r.ext, "203.0.113.7");
    assert.equal(r.xff, "198.51.100.1, 203.0.113.7", "skip_xff_append");
    assert.equal(r.xfp, "https", "a trusted hop's x-forwarded-proto is kept");
    assert.match((await ask(e, [])).source, /^127\.0\.0\.1:\d+$/, "no XFF → the peer");
  });
});
