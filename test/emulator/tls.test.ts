// envoy-host.md §13.2: the TLS attributes a client cannot forge. A listener whose filter chain has a
// DownstreamTlsContext transport socket serves TLS; the connection.* properties come from the TLS session
// (Filters::Common::Expr::ConnectionWrapper / extractSslInfo). Throwaway certificates from the openssl CLI.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bootstrap, propertyProbe, rawExchange, startInProxy, statusLine } from "./probes/in_proxy.ts";
import { readBootstrap } from "./proxy/index.ts";

const SPIFFE = "spiffe://cluster.local/ns/demo/sa/client";
const PATHS = ["connection.mtls", "connection.tls_version", "connection.uri_san_peer_certificate",
  "connection.dns_san_peer_certificate", "connection.subject_peer_certificate", "connection.subject_local_certificate",
  "connection.uri_san_local_certificate", "connection.sha256_peer_certificate_digest", "connection.requested_server_name"];
const WASM = propertyProbe(PATHS).build();
const NOT_FOUND = 1;

let dir: string;
const f = (n: string) => path.join(dir, n);

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}
/** key + certificate signed by the CA (or self-signed when ca is undefined) with the given subject and SANs */
function issue(name: string, subj: string, san: string, ca: string | undefined): void {
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`,
    "-out", `${name}.csr`, "-subj", subj);
  writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\n`);
  const signer = ca ? ["-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial"] : ["-signkey", `${name}.key`];
  openssl("x509", "-req", "-in", `${name}.csr`, ...signer, "-out", `${name}.crt`, "-days", "1", "-extfile", `${name}.ext`);
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "emu-tls-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
    "-out", "ca.crt", "-subj", "/CN=emu-test-ca", "-days", "1");
  issue("server", "/O=emu/CN=envoy", "DNS:localhost,IP:127.0.0.1", "ca");
  issue("client", "/O=demo/CN=client", `URI:${SPIFFE},DNS:client.demo`, "ca");
  issue("rogue", "/CN=rogue", `URI:${SPIFFE}`, undefined);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function tlsChain(o: { validation?: boolean; require?: boolean }): Record<string, unknown> {
  const common: Record<string, unknown> = {
    tls_certificates: [{ certificate_chain: { filename: f("server.crt") }, private_key: { filename: f("server.key") } }],
  };
  if (o.validation) common.validation_context = { trusted_ca: { filename: f("ca.crt") } };
  return { transport_socket: { name: "envoy.transport_sockets.tls", typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
    common_tls_context: common, require_client_certificate: o.require ?? false } } };
}

const client = (name?: string) => ({
  ca: readFileSync(f("ca.crt")), servername: "localhost",
  ...(name ? { cert: readFileSync(f(`${name}.crt`)), key: readFileSync(f(`${name}.key`)) } : {}),
});

test("§13.2 mTLS listener: SPIFFE URI SAN, DNS SAN, subjects (RFC 2253), TLS version, digest; no client cert → mtls false", async () => {
  const e = await startInProxy(WASM, bootstrap({ chain: tlsChain({ validation: true }) }));
  try {
    const r = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost"], { tls: client("client") });
    assert.equal(statusLine(r), "HTTP/1.1 200 OK");
    const s = (i: number) => e.prop(i).value.toString();
    assert.deepEqual([...e.prop(0).value], [1], "connection.mtls true");
    assert.equal(s(1), "TLSv1.3");
    assert.equal(s(2), SPIFFE, "connection.uri_san_peer_certificate");
    assert.equal(s(3), "client.demo");
    assert.equal(s(4), "CN=client,O=demo");
    assert.equal(s(5), "CN=envoy,O=emu");
    assert.equal(e.prop(6).status, NOT_FOUND, "the server certificate has no URI SAN");
    const digest = new X509Certificate(readFileSync(f("client.crt"))).fingerprint256.replace(/:/g, "").toLowerCase();
    assert.equal(s(7), digest);
    assert.equal(s(8), "localhost", "SNI");

    const anon = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost"], { tls: client() });
    assert.equal(statusLine(anon), "HTTP/1.1 200 OK", "the client certificate is optional");
    assert.deepEqual([...e.prop(0).value], [0], "mtls false");
    assert.equal(s(1), "TLSv1.3");
    assert.equal(e.prop(2).status, NOT_FOUND, "no URI SAN without a peer certificate");
    assert.deepEqual([e.prop(4).status, s(4)], [0, ""], "subject_peer_certificate is empty, not NotFound");
    assert.equal(e.prop(7).status, NOT_FOUND);

    const rogue = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost"], { tls: client("rogue") })
      .catch((err: Error) => `error: ${err.message}`);
    assert.doesNotMatch(rogue, /^HTTP\/1\.1 200/, "a certificate outside the trusted CA is refused");
  } finally {
    await e.close();
  }
});

test("§13.2 require_client_certificate: a client without a certificate gets no HTTP at all", async () => {
  const e = await startInProxy(WASM, bootstrap({ chain: tlsChain({ validation: true, require: true }) }));
  try {
    const r = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost"], { tls: client() })
      .catch((err: Error) => `error: ${err.message}`);
    assert.doesNotMatch(r, /^HTTP\/1\.1/);
    const ok = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost"], { tls: client("client") });
    assert.equal(statusLine(ok), "HTTP/1.1 200 OK");
    assert.equal(e.prop(2).value.toString(), SPIFFE);
  } finally {
    await e.close();
  }
});

test("§13.2 plaintext listener: mtls false, TLS attributes NotFound, requested_server_name empty", async () => {
  const e = await startInProxy(WASM, bootstrap());
  try {
    const r = await rawExchange(e.proxy.listenerPort, ["GET / HTTP/1.1", "Host: localhost", "X-Forwarded-Client-Cert: URI=" + SPIFFE]);
    assert.equal(statusLine(r), "HTTP/1.1 200 OK");
    assert.deepEqual([e.prop(0).status, [...e.prop(0).value]], [0, [0]]);
    for (const i of [1, 2, 3, 4, 5, 6, 7]) assert.equal(e.prop(i).status, NOT_FOUND, PATHS[i]);
    assert.deepEqual([e.prop(8).status, e.prop(8).value.length], [0, 0]);
  } finally {
    await e.close();
  }
});

test("§13.2 bootstrap: require_client_certificate without a validation context is rejected", () => {
  assert.throws(() => bootstrapCheck(tlsChain({ require: true })), /require_client_certificate: needs common_tls_context.validation_context.trusted_ca/);
});

function bootstrapCheck(chain: Record<string, unknown>) {
  return readBootstrap(bootstrap({ chain }));
}
