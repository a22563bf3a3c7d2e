// Emulated target: the loopback proxy (test/emulator/proxy) with the filter in the proxy-wasm host emulator,
// three in-process ws echo pods, everything on 127.0.0.1 with ports chosen by the OS.
import { existsSync } from "node:fs";
import path from "node:path";
import type { LogEntry } from "../../emulator/host/api.ts";
import { REPO_ROOT, startProxy } from "../../emulator/proxy/index.ts";
import { FakeGovernorProcess } from "../../emulator/proxy/fake-governor.ts";
import { fetchPodState, startPods, type PodServer } from "../../support/pods.ts";
import { podNameOf, renderBootstrap } from "./render.ts";
import { DeployError, type Deployment, type DeployOptions, type Target } from "./types.ts";

export const WASM_PATH = path.join(REPO_ROOT, "build/ws-governor.wasm");
export const LEAN_WASM_PATH = path.join(REPO_ROOT, "build/ws-governor-lean.wasm");

/** The module a deployment loads (DeployOptions.module). */
export function wasmPathOf(o: DeployOptions): string {
  return o.module === "lean" ? LEAN_WASM_PATH : WASM_PATH;
}

/** Why the built modules cannot be used, or undefined (every target checks both before it runs a scenario). */
export function modulesMissing(): string | undefined {
  for (const p of [WASM_PATH, LEAN_WASM_PATH]) if (!existsSync(p)) return `${path.relative(REPO_ROOT, p)} is missing (run make build)`;
  return undefined;
}

export const emulatedTarget: Target = {
  name: "emulated",
  async unavailable() {
    if (!existsSync(path.join(REPO_ROOT, "test/emulator/host/index.ts"))) {
      return "the proxy-wasm host emulator (test/emulator/host/index.ts) does not exist yet";
    }
    return modulesMissing();
  },
  deploy: (o) => deployEmulated(o, false),
};

/** Harness self-check only: the same proxy with a TypeScript stand-in for host + filter (fake-governor.ts). */
export const fakeTarget: Target = {
  name: "fake",
  async unavailable() {
    return undefined;
  },
  deploy: (o) => deployEmulated(o, true),
};

async function deployEmulated(o: DeployOptions, fake: boolean): Promise<Deployment> {
    const pods = await startPods(3);
    const logs: LogEntry[] = [];
    let proxy;
    try {
      const config = renderBootstrap({ pluginConfig: o.pluginConfig, unwrap: o.module === "lean" });
      const process = fake ? new FakeGovernorProcess(podNameOf()) : undefined;
      proxy = await startProxy({
        config,
        process,
        wasmPath: wasmPathOf(o),
        concurrency: o.concurrency ?? 2,
        clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
        listenerPortOverride: 0,
        adminPortOverride: 0,
        logLevel: "debug",
        onLog: (e) => logs.push(e),
      });
    } catch (e) {
      await Promise.all(pods.map((p) => p.kill()));
      const text = logs.map((l) => l.line).join("\n");
      throw new DeployError((e as Error).message, text);
    }
    const p = proxy;
    const alive = new Set<PodServer>(pods);
    return {
      target: fake ? "fake" : "emulated",
      podName: podNameOf(),
      wsUrl: (x) => p.wsUrl(x),
      httpUrl: (x) => p.url(x),
      adminUrl: (x) => p.adminUrl(x),
      podStates: () => Promise.all([...alive].map((pod) => fetchPodState("127.0.0.1", pod.port))),
      killPods: async () => {
        await Promise.all([...alive].map((pod) => pod.kill()));
        alive.clear();
      },
      logs: async () => logs.map((l) => l.line).join("\n"),
      stop: async () => {
        await p.close();
        await Promise.all(pods.map((pod) => pod.kill()));
      },
    };
}
