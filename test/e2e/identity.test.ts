// The per-client cap keyed by the TLS peer identity (client_key {"source":"peer_identity"} =
// connection.uri_san_peer_certificate, the SPIFFE id under Istio mTLS), end to end: envoy/envoy-sidecar.yaml with an
// mTLS listener (DownstreamTlsContext: server certificate, trusted CA, require_client_certificate) and the HCM's
// use_remote_address false, as Istio's sidecar inbound listener has it; the release module in the emulated Envoy; a
// real `ws` echo pod; real `ws` clients over wss:// presenting throwaway certificates (openssl CLI, temp dir) whose
// URI SANs are spiffe://cluster.local/ns/demo/sa/alice and …/sa/bob.
//   (1) peer_identity, max_connections_per_client 1: alice's second WebSocket is 429 (client_full) whatever she sends
//       (x-forwarded-for, x-api-key, x-forwarded-client-cert); bob is admitted while alice holds hers; after alice's
//       first closes she is admitted again; at the end the active gauge (admin /stats) and the pod are back to 0.
//   (2) the same listener with client_key {"source":"address"}: x-forwarded-for picks the bucket (README "Who is the
//       client"), so alice's second WebSocket with another x-forwarded-for IS admitted — why peer_identity exists.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type WebSocket from "ws";
import { REPO_ROOT, parseStatsText, startProxy, type RunningProxy } from "../emulator/proxy/index.ts";
import { startPods, type PodServer } from "../support/pods.ts";
import { closeWs, connectWs, echo, httpRequest, type WsOutcome, type WsTlsOptions } from "../support/ws-client.ts";
import { afterTick, waitFor } from "../support/wait.ts";

const WASM = path.join(REPO_ROOT, "build/ws-governor.wasm");
const SA = (n: string) => `spiffe://cluster.local/ns/demo/sa/${n}`;
const ALICE = SA("alice"), BOB = SA("bob");
const STAT = (n: string) => `wasmcustom.ws_governor.${n}`;
/** the filter hands its counters and gauge to Envoy on its tick: 100 ms (the minimum) keeps the wait per attempt short */
const TICK_MS = 100;
/** headers a client could send to try to move into another bucket */
const FORGED = {
  "x-forwarded-for": "10.9.9.9",
  "x-api-key": "made-up-key-42",
  "x-forwarded-client-cert": `By=spiffe://cluster.local/ns/demo/sa/server;URI=${BOB}`,
};

let dir: string;
let pods: PodServer[] = [];
const rows: Array<{ key: string; attempt: string; outcome: string }> = [];

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}
/** EC key + certificate signed by the test CA, with the given subject and subjectAltName */
function issue(name: string, subj: string, san: string): void {
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`,
    "-out", `${name}.csr`, "-subj", subj);
  writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", `${name}.crt`, "-days", "1", "-extfile", `${name}.ext`);
}
const file = (n: string) => path.join(dir, n);

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "wsg-identity-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
    "-out", "ca.crt", "-subj", "/CN=wsg-test-ca", "-days", "1");
  issue("server", "/O=demo/CN=ws-echo", "DNS:localhost,IP:127.0.0.1");
  issue("alice", "/O=demo/CN=alice", `URI:${ALICE}`);
  issue("bob", "/O=demo/CN=bob", `URI:${BOB}`);
  pods = await startPods(1);
});

after(async () => {
  await Promise.all(pods.map((p) => p.kill()));
  if (dir) rmSync(dir, { recursive: true, force: true });
  printTable();
});

/** envoy-sidecar.yaml with an mTLS listener and use_remote_address false (Istio's sidecar inbound) */
function sidecarWithMtls(): { doc: any; plugin: Record<string, unknown> } {
  const doc = parseYaml(readFileSync(path.join(REPO_ROOT, "envoy/envoy-sidecar.yaml"), "utf8"));
  const chain = doc.static_resources.listeners[0].filter_chains[0];
  const hcm = chain.filters[0].typed_config;
  hcm.use_remote_address = false;
  chain.transport_socket = {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: file("server.crt") }, private_key: { filename: file("server.key") } }],
        validation_context: { trusted_ca: { filename: file("ca.crt") } },
      },
      require_client_certificate: true,
    },
  };
  const wasm = hcm.http_filters.map((f: any) => f.typed_config?.extension_config?.typed_config ?? f.typed_config) // wrapped or not
    .find((tc: any) => tc?.["@type"]?.endsWith("extensions.filters.http.wasm.v3.Wasm"));
  const plugin = JSON.parse(wasm.config.configuration.value);
  return { doc, plugin };
}

interface Harness {
  proxy: RunningProxy;
  logs: string[];
  open: WebSocket[];
  /** one wss:// upgrade as `who` (a client certificate name, or undefined for none); recorded in the table */
  attempt(key: string, label: string, who: string | undefined, headers?: Record<string, string>): Promise<WsOutcome>;
  adminStat(name: string): Promise<number>;
}

async function start(clientKey: Record<string, unknown>): Promise<Harness> {
  const { doc, plugin } = sidecarWithMtls();
  plugin.max_connections_per_client = 1;
  plugin.client_key = clientKey;
  plugin.rate_limit = null;
  plugin.tick_ms = TICK_MS;
  const logs: string[] = [];
  const proxy = await startProxy({
    config: doc, wasmPath: WASM, pluginConfiguration: JSON.stringify(plugin),
    clusterOverrides: { local_app: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
    listenerPortOverride: 0, adminPortOverride: 0, onLog: (e) => logs.push(e.line),
  });
  assert.equal(proxy.bootstrap.listener.hcm.useRemoteAddress, false, "the sidecar inbound HCM believes x-forwarded-for");
  const open: WebSocket[] = [];
  const tlsFor = (who: string | undefined): WsTlsOptions => ({
    ca: readFileSync(file("ca.crt")), servername: "localhost",
    ...(who ? { cert: readFileSync(file(`${who}.crt`)), key: readFileSync(file(`${who}.key`)) } : {}),
  });
  return {
    proxy, logs, open,
    async attempt(key, label, who, headers) {
      const reasons = ["client_full", "pod_full", "rate_limited"];
      const before = reasons.map((r) => proxy.stat(STAT(`rejected_total.reason.${r}`)) ?? 0);
      const o = await connectWs(`wss://127.0.0.1:${proxy.listenerPort}/ws`, { tls: tlsFor(who), headers });
      if (o.kind === "open") open.push(o.ws);
      await afterTick(TICK_MS); // every VM's counts of this attempt are in Envoy's stats
      const why = reasons.filter((r, i) => (proxy.stat(STAT(`rejected_total.reason.${r}`)) ?? 0) > before[i]);
      rows.push({ key, attempt: label, outcome: [describe(o), ...why].join(" ") });
      return o;
    },
    async adminStat(name) {
      const r = await httpRequest(proxy.adminUrl("/stats"));
      assert.equal(r.status, 200);
      return parseStatsText(r.body).get(STAT(name)) ?? NaN;
    },
  };
}

function describe(o: WsOutcome): string {
  if (o.kind === "open") return "101";
  if (o.kind === "rejected") return String(o.status);
  const m = /::([^:\n]+)/.exec(o.error.message) ?? /alert ([\w ]+)/.exec(o.error.message);
  return `no HTTP: TLS ${(m?.[1] ?? o.error.message).trim().slice(0, 48)}`;
}
const status = (o: WsOutcome): string => (o.kind === "open" ? "101" : o.kind === "rejected" ? String(o.status) : "error");

async function stop(h: Harness): Promise<void> {
  for (const ws of h.open) ws.terminate();
  await h.proxy.close(); // rejects with HostDefectError on a §13.1 module defect
}

test("peer_identity: the per-client cap follows the verified SPIFFE id; nothing the client sends moves it", async () => {
  const K = "peer_identity";
  const h = await start({ source: "peer_identity" });
  try {
    const clientFull = () => h.proxy.stat(STAT("rejected_total.reason.client_full")) ?? 0;
    const pod = pods[0];

    const first = await h.attempt(K, "alice 1st", "alice");
    assert.equal(status(first), "101", "alice's first WebSocket");
    assert.equal(await echo((first as { ws: WebSocket }).ws, "hello"), "hello", "echoed by the pod over wss://");
    assert.equal(await h.adminStat("active_connections"), 1);

    const second = await h.attempt(K, "alice 2nd", "alice");
    assert.equal(status(second), "429", "alice's second WebSocket: client limit");
    assert.equal(clientFull(), 1);

    const forged = await h.attempt(K, "alice 2nd + XFF 10.9.9.9, x-api-key, XFCC URI=bob", "alice", FORGED);
    assert.equal(status(forged), "429", "headers do not move alice to another bucket");
    assert.equal(clientFull(), 2, "both refusals are client_full (ws_governor_client_limit)");
    const aliceLines = h.logs.filter((l) => /rejected reason=client_full/.test(l));
    assert.equal(aliceLines.length, 2);
    for (const l of aliceLines) assert.ok(l.includes(`key=${ALICE} `), `the key is alice's SPIFFE id: ${l}`);

    const bob = await h.attempt(K, "bob 1st (alice holds hers)", "bob");
    assert.equal(status(bob), "101", "another identity has its own bucket");
    const bobAsAlice = await h.attempt(K, "bob 2nd + XFCC URI=alice", "bob", { "x-forwarded-client-cert": `URI=${ALICE}` });
    assert.equal(status(bobAsAlice), "429", "bob cannot claim alice's (or any other) bucket either");
    assert.ok(h.logs.some((l) => /rejected reason=client_full/.test(l) && l.includes(`key=${BOB} `)), "refused under bob's id");

    const anonymous = await h.attempt(K, "no client certificate", undefined);
    assert.equal(anonymous.kind, "error", "require_client_certificate: no HTTP without a certificate");

    assert.equal(await h.adminStat("active_connections"), 2, "alice + bob");
    await waitFor(() => pod.state().open === 2, { timeoutMs: 3000, what: "the pod holds alice's and bob's WebSockets" });

    // alice closes hers: her slot is released and she is admitted again
    await closeWs(h.open.shift()!);
    await waitFor(async () => (await h.adminStat("active_connections")) === 1, { timeoutMs: 5000, what: "alice's slot released" });
    const again = await h.attempt(K, "alice again after closing her 1st", "alice");
    assert.equal(status(again), "101", "released: alice can open again");
    assert.equal(clientFull(), 3, "no refusal beyond bob's #2");

    for (const ws of h.open.splice(0)) await closeWs(ws);
    await waitFor(async () => (await h.adminStat("active_connections")) === 0, { timeoutMs: 5000, what: "active gauge 0" });
    await waitFor(() => pod.state().open === 0, { timeoutMs: 5000, what: "the pod has no open WebSocket" });
    assert.equal(await h.adminStat("accepted_total"), 3);
    assert.equal(await h.adminStat("released_total"), 3);
  } finally {
    await stop(h);
  }
});

test("address on the same mTLS listener (use_remote_address false): x-forwarded-for picks the bucket (forgeable)", async () => {
  const K = "address";
  const h = await start({ source: "address" });
  try {
    const first = await h.attempt(K, "alice 1st", "alice");
    assert.equal(status(first), "101");
    const plain = await h.attempt(K, "alice 2nd", "alice");
    assert.equal(status(plain), "429", "without a header alice is 127.0.0.1 again: same bucket");
    assert.ok(h.logs.some((l) => /rejected reason=client_full key=127\.0\.0\.1 /.test(l)), "keyed by the TCP peer");

    const forged = await h.attempt(K, "alice 2nd + XFF 10.9.9.9", "alice", { "x-forwarded-for": "10.9.9.9" });
    assert.equal(status(forged), "101", "the XFF entry became source.address: a new bucket for the same identity");
    assert.equal(h.proxy.stat(STAT("rejected_total.reason.client_full")), 1, "only the header-less attempt was refused");

    const bob = await h.attempt(K, "bob 1st", "bob");
    assert.equal(status(bob), "429", "bob shares 127.0.0.1 with alice: one bucket for two identities");

    assert.equal(await h.adminStat("active_connections"), 2, "one identity holds two connections under a cap of 1");
    for (const ws of h.open.splice(0)) await closeWs(ws);
    await waitFor(async () => (await h.adminStat("active_connections")) === 0, { timeoutMs: 5000, what: "active gauge 0" });
    await waitFor(() => pods[0].state().open === 0, { timeoutMs: 5000, what: "the pod has no open WebSocket" });
  } finally {
    await stop(h);
  }
});

function printTable(): void {
  if (rows.length === 0) return;
  const head = { key: "client_key", attempt: "attempt", outcome: "outcome" };
  const all = [head, ...rows];
  const w = (k: keyof typeof head) => Math.max(...all.map((r) => r[k].length));
  const line = (r: typeof head) => `| ${r.key.padEnd(w("key"))} | ${r.attempt.padEnd(w("attempt"))} | ${r.outcome.padEnd(w("outcome"))} |`;
  console.log(["", "per-client cap over mTLS, use_remote_address false (key source × attempt → outcome)", line(head),
    line({ key: "-".repeat(w("key")), attempt: "-".repeat(w("attempt")), outcome: "-".repeat(w("outcome")) }),
    ...rows.map(line)].join("\n"));
}
