// Binary target: a local Envoy from ENVOY_BIN (istio/proxy driver style): render a temporary bootstrap with free
// ports and the absolute module path, start Envoy, wait on admin /ready, stop with /quitquitquit, then kill by PID.
// The echo pods run in this process.
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fetchPodState, startPods, type PodServer } from "../../support/pods.ts";
import { freePorts } from "../../support/ports.ts";
import { httpRequest } from "../../support/ws-client.ts";
import { modulesMissing, wasmPathOf } from "./emulated.ts";
import { Captured, run, waitReady } from "./process.ts";
import { podNameOf, renderBootstrap } from "./render.ts";
import { DeployError, type Deployment, type DeployOptions, type Target } from "./types.ts";

export const binaryTarget: Target = {
  name: "binary",
  async unavailable() {
    const bin = process.env.ENVOY_BIN;
    if (!bin) return "ENVOY_BIN is not set (ENVOY_BIN=/path/to/envoy)";
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      return `ENVOY_BIN=${bin} is not an executable file`;
    }
    const missing = modulesMissing();
    if (missing) return missing;
    const v = await run(bin, ["--version"], { timeoutMs: 20_000 });
    if (v.code !== 0) return `${bin} --version failed: ${v.output.trim().slice(0, 300)}`;
    return undefined;
  },
  async deploy(o: DeployOptions): Promise<Deployment> {
    const bin = process.env.ENVOY_BIN!;
    const pods = await startPods(3);
    const [listenerPort, adminPort] = await freePorts(2);
    const dir = mkdtempSync(path.join(os.tmpdir(), "wsg-envoy-"));
    const cfg = path.join(dir, "envoy.json");
    writeFileSync(
      cfg,
      JSON.stringify(
        renderBootstrap({
          pluginConfig: o.pluginConfig,
          listenerPort,
          adminPort,
          endpoints: pods.map((p) => ({ host: "127.0.0.1", port: p.port })),
          wasmFilename: wasmPathOf(o),
          unwrap: o.module === "lean",
        }),
        null,
        2,
      ),
    );
    const envoy = new Captured(bin, [
      "-c", cfg,
      "--concurrency", String(o.concurrency ?? 2),
      "--disable-hot-restart",
      "--drain-time-s", "1",
      "--log-level", "info",
      "--component-log-level", "wasm:debug",
    ]);
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const cleanup = async () => {
      await envoy.stop(0);
      await Promise.all(pods.map((p) => p.kill()));
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      await waitReady(adminUrl, () => (envoy.exitCode !== null ? `envoy exited with ${envoy.exitCode}` : undefined));
    } catch (e) {
      const logs = envoy.text();
      await cleanup();
      throw new DeployError(`${(e as Error).message}\n${logs.split("\n").slice(-40).join("\n")}`, logs);
    }
    const alive = new Set<PodServer>(pods);
    return {
      target: "binary",
      podName: podNameOf(),
      wsUrl: (p) => `ws://127.0.0.1:${listenerPort}${p}`,
      httpUrl: (p) => `http://127.0.0.1:${listenerPort}${p}`,
      adminUrl: (p) => `${adminUrl}${p}`,
      podStates: () => Promise.all([...alive].map((p) => fetchPodState("127.0.0.1", p.port))),
      killPods: async () => {
        await Promise.all([...alive].map((p) => p.kill()));
        alive.clear();
      },
      logs: async () => envoy.text(),
      stop: async () => {
        await httpRequest(`${adminUrl}/quitquitquit`, { method: "POST", timeoutMs: 2000 }).catch(() => undefined);
        await envoy.stop(3000);
        await Promise.all(pods.map((p) => p.kill()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
