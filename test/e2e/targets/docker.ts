// Docker target: envoy/docker-compose.yaml (real Envoy image + three ws echo pods as node containers, host
// networking). Per deployment: a temporary bootstrap with free ports, its own compose project name, wait on admin
// /ready, logs kept for failures, and always `down -v`.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { REPO_ROOT } from "../../emulator/proxy/index.ts";
import { fetchPodState, podName } from "../../support/pods.ts";
import { freePorts } from "../../support/ports.ts";
import { httpRequest } from "../../support/ws-client.ts";
import { modulesMissing, wasmPathOf } from "./emulated.ts";
import { run, waitReady } from "./process.ts";
import { podNameOf, renderBootstrap } from "./render.ts";
import { DeployError, type Deployment, type DeployOptions, type Target } from "./types.ts";

const COMPOSE_FILE = path.join(REPO_ROOT, "envoy/docker-compose.yaml");

export const dockerTarget: Target = {
  name: "docker",
  async unavailable() {
    const info = await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15_000 });
    if (info.code !== 0) return `no Docker engine (docker info: ${info.output.trim().split("\n").pop()?.slice(0, 200)})`;
    const compose = await run("docker", ["compose", "version"], { timeoutMs: 15_000 });
    if (compose.code !== 0) return "docker compose (v2 plugin) is not installed";
    const missing = modulesMissing();
    if (missing) return missing;
    return undefined;
  },
  async deploy(o: DeployOptions): Promise<Deployment> {
    const ports = await freePorts(5);
    const [listenerPort, adminPort, ...podPorts] = ports;
    const dir = mkdtempSync(path.join(os.tmpdir(), "wsg-docker-"));
    const cfg = path.join(dir, "envoy.yaml"); // JSON content: valid YAML for Envoy
    writeFileSync(
      cfg,
      JSON.stringify(
        renderBootstrap({
          pluginConfig: o.pluginConfig,
          listenerPort,
          adminPort,
          endpoints: podPorts.map((port) => ({ host: "127.0.0.1", port })),
          unwrap: o.module === "lean",
        }),
        null,
        2,
      ),
    );
    const project = `wsg-e2e-${randomBytes(4).toString("hex")}`;
    const env = {
      ...process.env,
      ENVOY_CONFIG: cfg,
      WASM_PATH: wasmPathOf(o),
      APP_DIR: REPO_ROOT,
      POD_A_PORT: String(podPorts[0]),
      POD_B_PORT: String(podPorts[1]),
      POD_C_PORT: String(podPorts[2]),
      ENVOY_CONCURRENCY: String(o.concurrency ?? 2),
    };
    const compose = (...args: string[]) => run("docker", ["compose", "-p", project, "-f", COMPOSE_FILE, ...args], { env, timeoutMs: 180_000 });
    const logs = async () => (await compose("logs", "--no-color", "--timestamps")).output;
    const down = async () => {
      await compose("down", "-v", "--remove-orphans", "--timeout", "2");
      rmSync(dir, { recursive: true, force: true });
    };
    const up = await compose("up", "-d");
    if (up.code !== 0) {
      const l = await logs();
      await down();
      throw new DeployError(`docker compose up failed:\n${up.output}`, l);
    }
    // Envoy exiting (e.g. the filter rejected its configuration) ends the wait early
    let exited: string | undefined;
    let watching = true;
    const watcher = (async () => {
      for (let i = 0; i < 60 && watching; i++) {
        const ps = await compose("ps", "-a", "--status", "exited", "-q", "envoy");
        if (ps.code === 0 && ps.output.trim() !== "") {
          exited = "the envoy container exited";
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    try {
      await waitReady(adminUrl, () => exited, 60_000);
      await Promise.all(podPorts.map((p) => waitReady2(p)));
    } catch (e) {
      watching = false;
      await watcher;
      const l = await logs();
      await down();
      throw new DeployError(`${(e as Error).message}\n${l.split("\n").slice(-60).join("\n")}`, l);
    }
    watching = false;
    await watcher;
    let podsAlive = true;
    return {
      target: "docker",
      podName: podNameOf(),
      wsUrl: (p) => `ws://127.0.0.1:${listenerPort}${p}`,
      httpUrl: (p) => `http://127.0.0.1:${listenerPort}${p}`,
      adminUrl: (p) => `${adminUrl}${p}`,
      podStates: async () => (podsAlive ? Promise.all(podPorts.map((p) => fetchPodState("127.0.0.1", p))) : []),
      killPods: async () => {
        podsAlive = false;
        await compose("kill", "-s", "SIGKILL", podName(0), podName(1), podName(2));
      },
      logs,
      stop: async () => {
        await httpRequest(`${adminUrl}/quitquitquit`, { method: "POST", timeoutMs: 2000 }).catch(() => undefined);
        await down();
      },
    };
  },
};

async function waitReady2(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let i = 0; i < 300 && Date.now() < deadline; i++) {
    try {
      await fetchPodState("127.0.0.1", port, 1000);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`pod on 127.0.0.1:${port} did not come up`);
}
