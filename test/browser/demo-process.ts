// Runs scripts/demo.ts as a child process for the demo tests: serve mode until it printed its URLs (ports chosen by
// the OS), or to the end (tour, or an early error). Stops only the child it started, by its PID.
import { spawn, type ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../emulator/proxy/index.ts";

export interface ServedDemo {
  proc: ChildProcess;
  /** the lines it printed: websocket, metrics, admin, demo page (undefined when not printed) */
  websocket: string;
  metrics: string | undefined;
  admin: string;
  pageUrl: string;
  adminUrl: (p: string) => string;
  output: string[];
}

const DEMO = ["--import", "tsx", "scripts/demo.ts"];

/** `scripts/demo.ts --serve --seconds N --port 0 --admin-port 0 …extra`; resolves once it printed its URLs and `serving …`. */
export function startDemo(seconds: number, extra: string[] = [], timeoutMs = 30_000): Promise<ServedDemo> {
  const proc = spawn(process.execPath, [...DEMO, "--serve", "--seconds", String(seconds), "--port", "0", "--admin-port", "0", ...extra], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGTERM");
      reject(new Error(`the demo did not print its page URL within ${timeoutMs} ms:\n${output.join("")}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      output.push(d.toString());
      const text = output.join("");
      const page = /demo page:\s+(http:\/\/127\.0\.0\.1:(\d+)\/demo)\b/.exec(text);
      if (!page || !/^serving (for|until)/m.test(text)) return;
      clearTimeout(timer);
      const admin = `http://127.0.0.1:${page[2]}`;
      resolve({
        proc,
        websocket: /websocket:\s+(\S+)/.exec(text)?.[1] ?? "",
        metrics: /metrics:\s+(http\S+)/.exec(text)?.[1],
        admin: /admin:\s+(\S+)/.exec(text)?.[1] ?? "",
        pageUrl: page[1],
        adminUrl: (p) => admin + p,
        output,
      });
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) before serving:\n${output.join("")}`));
    });
  });
}

export async function stopDemo(d: { proc: ChildProcess }): Promise<number | null> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return d.proc.exitCode;
  const exited = new Promise<number | null>((r) => d.proc.once("exit", (code) => r(code)));
  d.proc.kill("SIGTERM"); // this PID only
  const t = setTimeout(() => d.proc.kill("SIGKILL"), 10_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

/** Runs the demo to its end (tour, or an early error); kills it by PID after timeoutMs. */
export function runDemo(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const start = Date.now();
  const proc = spawn(process.execPath, [...DEMO, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    });
  });
}
