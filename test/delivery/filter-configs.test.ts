// The shipped plugin configurations against the real filter: build/ws-governor.wasm loaded in the emulated
// Envoy (test/emulator/host), one plugin per configuration; a configuration with a `fleet` block goes to
// build/ws-governor-fleet.wasm, and the local module must refuse it with its own message; one that names the lean
// module (k8s/lean) goes to build/ws-governor-lean.wasm, and the local module must accept it too. Envoy rejects a plugin whose on_configure returns
// false (the canary fails, reference §2.2/§3.3); the emulator reports that as PluginLoadError from addPlugin.
// Needs `make build` (or npm run build) and the emulator; fails, with the reason, while either is missing.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { PluginLoadError as ApiPluginLoadError } from "../emulator/host/api.ts";
import type { EnvoyProcessApi, LogEntry, ProcessOptions } from "../emulator/host/api.ts";
import { ROOT, embeddedPluginConfigs } from "./support.ts";
import type { EmbeddedConfig } from "./support.ts";

const WASM = join(ROOT, "build/ws-governor.wasm");
const FLEET_WASM = join(ROOT, "build/ws-governor-fleet.wasm");
const LEAN_WASM = join(ROOT, "build/ws-governor-lean.wasm");
const HOST = join(ROOT, "test/emulator/host/index.ts");

interface HostModule {
  EnvoyProcess: new (options: ProcessOptions) => EnvoyProcessApi;
  PluginLoadError?: typeof ApiPluginLoadError;
}

async function loadHost(): Promise<HostModule> {
  assert.ok(existsSync(HOST), `${HOST} missing: the emulator has not landed yet`);
  // a computed specifier keeps `tsc --noEmit` independent of the emulator's presence
  return (await import(pathToFileURL(HOST).href)) as HostModule;
}

function loadWasm(file = WASM): Uint8Array {
  assert.ok(existsSync(file), `${file} missing: run \`make build\` first`);
  return new Uint8Array(readFileSync(file));
}

const isFleet = (json: string): boolean => json.trim() !== "" && (JSON.parse(json) as { fleet?: unknown }).fleet !== undefined;

// Istio-like node metadata, so inbound mode finds its pod name as it would in a sidecar (reference §6.3).
const NODE = {
  id: "sidecar~10.0.0.10~ws-echo-0.ws-demo~ws-demo.svc.cluster.local",
  cluster: "ws-echo.ws-demo",
  metadata: { NAME: "ws-echo-0", NAMESPACE: "ws-demo" },
};

interface LoadResult { error?: Error; logs: LogEntry[] }

function load(host: HostModule, wasm: Uint8Array, c: Pick<EmbeddedConfig, "json" | "vmId" | "rootId" | "name">): LoadResult {
  const logs: LogEntry[] = [];
  const proc = new host.EnvoyProcess({ node: NODE, concurrency: 2, onLog: (e) => logs.push(e) });
  try {
    proc.addPlugin({
      wasm, configuration: c.json, vmId: c.vmId, rootId: c.rootId || "ws_governor", name: c.name || "ws_governor",
    });
    return { logs };
  } catch (e) {
    return { error: e as Error, logs };
  } finally {
    proc.close();
  }
}

function isLoadError(host: HostModule, e: unknown): boolean {
  return e instanceof (host.PluginLoadError ?? ApiPluginLoadError) || e instanceof ApiPluginLoadError;
}

function critical(logs: LogEntry[]): string[] {
  return logs.filter((l) => l.level === "critical").map((l) => l.message);
}

test("delivery: plugin configs accepted by the real filter", async () => {
  const host = await loadHost();
  const wasm = loadWasm();
  const fleetWasm = loadWasm(FLEET_WASM);
  const leanWasm = loadWasm(LEAN_WASM);
  const configs = embeddedPluginConfigs();
  assert.ok(configs.some((c) => c.expectValid && c.lean), "no shipped configuration for the lean module (k8s/lean)");
  assert.ok(configs.filter((c) => c.expectValid).length >= 7, "fewer shipped configurations than expected");
  assert.ok(configs.filter((c) => c.expectValid && isFleet(c.json)).length >= 2, "no shipped fleet configurations (envoy/envoy-fleet.yaml, k8s/fleet)");

  for (const c of configs) {
    if (c.expectValid && isFleet(c.json)) { // the local module names the module to use instead
      const local = load(host, wasm, c);
      assert.ok(isLoadError(host, local.error), `${c.where}: the local module accepted a fleet configuration`);
      assert.ok(critical(local.logs).some((m) => m.includes("invalid configuration: fleet: needs build/ws-governor-fleet.wasm")),
        `${c.where}: ${critical(local.logs).join("\n")}`);
    }
    if (c.expectValid && c.lean) { // the lean module's configuration is one the local module takes as well
      const local = load(host, wasm, c);
      assert.equal(local.error, undefined, `${c.where}: the local module refused a lean configuration: ${critical(local.logs).join("\n")}`);
    }
    const r = load(host, c.lean ? leanWasm : isFleet(c.json) ? fleetWasm : wasm, c);
    if (c.expectValid) {
      assert.equal(r.error, undefined, `${c.where}: rejected: ${r.error?.message}\n${critical(r.logs).join("\n")}`);
      assert.deepEqual(critical(r.logs), [], `${c.where}: critical log lines on a valid configuration`);
    } else {
      assert.ok(isLoadError(host, r.error), `${c.where}: a bad-config fixture was accepted`);
      assert.ok(critical(r.logs).some((m) => m.includes("invalid configuration")), `${c.where}: no critical log line`);
    }
  }

  // Deliberately bad configurations: rejected, with one critical line per docs/contracts.md
  // `ws_governor: invalid configuration: <field>: <why>` naming the offending field.
  const bad: Array<[string, string]> = [
    ["max_conections_per_pod", JSON.stringify({ mode: "inbound", max_conections_per_pod: 10 })], // typo = unknown key
    ["cas_max_attempts", JSON.stringify({ mode: "inbound", cas_max_attempts: 0 })],             // out of range
    ["enforce", JSON.stringify({ mode: "inbound", enforce: "yes" })],                              // wrong type
  ];
  for (const [field, json] of bad) {
    const r = load(host, wasm, { json, vmId: "ws_governor", rootId: "ws_governor", name: "ws_governor" });
    assert.ok(r.error, `${json}: accepted`);
    assert.ok(isLoadError(host, r.error), `${json}: expected PluginLoadError, got ${r.error.name}: ${r.error.message}`);
    const lines = critical(r.logs).filter((m) => m.includes("invalid configuration"));
    assert.ok(lines.length >= 1, `${json}: no critical 'invalid configuration' line; logs:\n${r.logs.map((l) => l.line).join("\n")}`);
    for (const line of lines) {
      assert.match(line, new RegExp(`ws_governor: invalid configuration: [\\w.\\[\\]]*\\b${field}\\b[\\w.\\[\\]]*: \\S`), line);
    }
  }
});
