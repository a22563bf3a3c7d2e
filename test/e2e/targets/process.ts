// Shared pieces for targets that run a real Envoy: waiting on admin /ready, log capture, bounded shutdown.
import { spawn, type ChildProcess } from "node:child_process";
import { httpRequest } from "../../support/ws-client.ts";
import { waitFor } from "../../support/wait.ts";

/** Poll admin /ready until 200 LIVE; fail early when `gone()` reports the process died. */
export async function waitReady(adminUrl: string, gone: () => string | undefined, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const why = gone();
      if (why) throw Object.assign(new Error(why), { fatal: true });
      try {
        const r = await httpRequest(`${adminUrl}/ready`, { timeoutMs: 1000 });
        return r.status === 200 && r.body.trim() === "LIVE";
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 100, what: `${adminUrl}/ready` },
  ).catch((e: Error) => {
    const why = gone();
    throw new Error(why ?? e.message);
  });
}

/** A child process with its output kept in memory (bounded). */
export class Captured {
  readonly child: ChildProcess;
  private out: string[] = [];
  exitCode: number | null = null;
  exited: Promise<void>;
  constructor(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    const keep = (d: Buffer) => {
      this.out.push(d.toString());
      if (this.out.length > 5000) this.out.splice(0, 1000);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : 0);
        resolve();
      });
      this.child.on("error", (e) => {
        this.out.push(String(e));
        this.exitCode = 127;
        resolve();
      });
    });
  }
  text(): string {
    return this.out.join("");
  }
  /** wait up to ms for exit; then SIGKILL by PID */
  async stop(ms: number): Promise<void> {
    if (this.exitCode !== null) return;
    const t = setTimeout(() => {
      if (this.exitCode === null && this.child.pid) {
        try {
          process.kill(this.child.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }, ms);
    await this.exited;
    clearTimeout(t);
  }
}

/** Run a command to completion (bounded), returning its status and output. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const c = new Captured(cmd, args, opts);
    const t = setTimeout(() => {
      if (c.child.pid && c.exitCode === null) {
        try {
          process.kill(c.child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }, opts.timeoutMs ?? 60_000);
    void c.exited.then(() => {
      clearTimeout(t);
      resolve({ code: c.exitCode ?? 1, output: c.text() });
    });
  });
}
