// Typed access to the ws echo "pods" (test/support/pod-server.mjs), in-process or remote (state over HTTP).
import http from "node:http";
import { startPodServer, type PodServer, type PodState } from "./pod-server.mjs";

export type { PodServer, PodState };
export { startPodServer };

/** Start n pods named pod-a, pod-b, … on the given ports (0 = any free port). */
export async function startPods(n: number, ports: number[] = []): Promise<PodServer[]> {
  const pods: PodServer[] = [];
  try {
    for (let i = 0; i < n; i++) {
      pods.push(await startPodServer({ name: podName(i), port: ports[i] ?? 0 }));
    }
  } catch (e) {
    await Promise.all(pods.map((p) => p.kill()));
    throw e;
  }
  return pods;
}

export function podName(i: number): string {
  return `pod-${String.fromCharCode(97 + i)}`;
}

/** GET /__pod/state from a pod anywhere (works for pods in containers too). */
export function fetchPodState(host: string, port: number, timeoutMs = 2000): Promise<PodState> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: "/__pod/state", timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as PodState);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("pod state timeout")));
    req.on("error", reject);
  });
}
