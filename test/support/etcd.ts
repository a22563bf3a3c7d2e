// A real etcd (Debian's etcd-server, 3.4 on bookworm) for tests: one member on loopback, a temporary data dir,
// client and peer URLs on free 127.0.0.1 ports, ready once GET /health says so. Stopped by its PID only (the child
// we spawned; never by name), and its data dir is removed by stop().
//   ETCD_BIN=/path/to/etcd overrides the search (/usr/bin/etcd, then etcd on PATH).
// etcdGate() turns "no etcd" into a FAILURE when CI=true (.ci/run installs etcd-server) and into a skip with the
// reason printed otherwise — never a pass.
//
//   const etcd = await startEtcd();
//   etcd.clientUrl           http://127.0.0.1:<port> (the JSON gateway: /v3/kv/range, /v3/kv/txn, /v3/lease/…)
//   etcd.pid                 the current process (changes on restart)
//   await etcd.kill()        SIGKILL (a crash); the data dir stays, restart() brings the same member back
//   await etcd.halt()        SIGTERM (a clean shutdown), data dir kept: etcd is "down" until restart()
//   await etcd.restart()     halt if running, then start again on the same ports and data: same clientUrl, same keys
//   await etcd.stop()        SIGTERM (SIGKILL after a bound), then the data dir is removed; final
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { freePorts } from "./ports.ts";
import { findExecutable } from "./executables.ts";

const DEFAULT_PATHS = ["/usr/bin/etcd", "/usr/local/bin/etcd"];
const READY_TIMEOUT_MS = 20_000;   // a cold single-member start takes ~1 s; 2 shared cores under load can be slow
const STOP_GRACE_MS = 5_000;       // SIGTERM → exit; then SIGKILL (that PID only)
const LOG_KEEP = 64 * 1024;        // last bytes of etcd's output kept for error messages

// ------------------------------------------------------------------ finding etcd

export function findEtcd(): string | undefined {
  return findExecutable("ETCD_BIN", DEFAULT_PATHS, ["etcd"]);
}

/** "etcd Version: 3.4.23" → "3.4.23"; undefined when the binary does not answer --version. */
export function etcdVersion(bin = findEtcd()): string | undefined {
  if (!bin) return undefined;
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000, env: childEnv() });
  const m = /etcd Version:\s*(\S+)/.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`);
  return m ? m[1] : undefined;
}

/** Why no etcd can be used here (undefined: one can). */
export function etcdUnavailable(): string | undefined {
  if (process.env.ETCD_BIN && !findEtcd()) return `ETCD_BIN=${process.env.ETCD_BIN} is not an executable file`;
  const bin = findEtcd();
  if (!bin) {
    return `no etcd found (looked in ${DEFAULT_PATHS.join(", ")} and on PATH; set ETCD_BIN or run: apt-get install -y etcd-server)`;
  }
  const v = etcdVersion(bin);
  if (!v) return `${bin} --version did not report an etcd version`;
  const [major, minor] = v.split(".").map(Number);
  if (!(major > 3 || (major === 3 && minor >= 4))) return `${bin} is etcd ${v}; the tests need etcd ≥ 3.4 (the /v3 JSON gateway)`;
  return undefined;
}

/** Test options for node:test: CI=true → run (and fail with the reason); otherwise skip with the reason printed. */
export function etcdGate(): { skip: string | false; failReason?: string } {
  const why = etcdUnavailable();
  if (!why) return { skip: false };
  if (process.env.CI === "true") return { skip: false, failReason: `etcd is required when CI=true: ${why}` };
  console.log(`etcd tests skipped: ${why}`);
  return { skip: `etcd unavailable: ${why}` };
}

/** etcd reads ETCD_* variables as flags and refuses a variable that shadows a flag we pass: the child gets none. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ETCD_")) env[k] = v;
  return env;
}

// ------------------------------------------------------------------ the server

export interface EtcdOptions {
  name?: string;              // member name (default "ws-governor-test")
  extraArgs?: string[];       // appended to the command line
  readyTimeoutMs?: number;    // default 20 s
}

export interface Etcd {
  readonly clientUrl: string;   // http://127.0.0.1:<client port>
  readonly peerUrl: string;     // http://127.0.0.1:<peer port>
  readonly dataDir: string;
  readonly version: string;
  /** PID of the running etcd (the last one started). */
  readonly pid: number;
  /** true while the process we started has not exited. */
  readonly running: boolean;
  /** The last bytes etcd wrote (stdout and stderr), for failure messages. */
  log(): string;
  /** SIGKILL: a crash. The data dir stays; restart() brings the same member back. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s): etcd down, data kept, until restart(). */
  halt(): Promise<void>;
  /** halt() if running, then the same member on the same ports and data, ready. */
  restart(): Promise<void>;
  /** Final: the process ends (SIGTERM, then SIGKILL after a bound) and the data dir is removed. Idempotent. */
  stop(): Promise<void>;
}

/** Every etcd this process started and has not stopped: ended by PID if the test process exits without stop(). */
const live = new Set<EtcdServer>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const s of live) s.emergencyStop();
  });
  // Interrupted (Ctrl-C, the test runner's SIGTERM on a timeout): end our etcds by PID, then die of the same signal.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = () => {
      for (const s of live) s.emergencyStop();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

class EtcdServer implements Etcd {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = "";
  private stopped = false;
  private dead = true;   // no process, or ours has exited / failed to spawn

  constructor(
    private readonly bin: string,
    readonly version: string,
    readonly dataDir: string,
    private readonly clientPort: number,
    private readonly peerPort: number,
    private readonly opts: EtcdOptions,
  ) {}

  get clientUrl(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }
  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }
  get pid(): number {
    return this.proc?.pid ?? -1;
  }
  get running(): boolean {
    return !!this.proc && !this.dead;
  }
  log(): string {
    return this.output;
  }

  private args(): string[] {
    const name = this.opts.name ?? "ws-governor-test";
    return [
      "--name", name,
      "--data-dir", this.dataDir,
      "--listen-client-urls", this.clientUrl,
      "--advertise-client-urls", this.clientUrl,
      "--listen-peer-urls", this.peerUrl,
      "--initial-advertise-peer-urls", this.peerUrl,
      "--initial-cluster", `${name}=${this.peerUrl}`,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", `ws-governor-test-${process.pid}-${this.clientPort}`,
      "--logger", "zap",
      "--log-outputs", "stderr",
      "--log-level", "warn",
      ...(this.opts.extraArgs ?? []),
    ];
  }

  /** Spawn and wait until /health reports true; on failure the process is ended and the error carries etcd's log. */
  async start(): Promise<void> {
    if (this.stopped) throw new Error("etcd: start after stop()");
    if (this.running) throw new Error(`etcd: already running (pid ${this.pid})`);
    const proc = spawn(this.bin, this.args(), { stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
    this.proc = proc;
    this.dead = false;
    const keep = (c: Buffer) => {
      this.output += c.toString("utf8");
      if (this.output.length > LOG_KEEP) this.output = this.output.slice(-LOG_KEEP);
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    this.exited = new Promise<void>((resolve) => {
      proc.once("exit", () => {
        this.dead = true;
        resolve();
      });
      proc.once("error", (e) => {
        keep(Buffer.from(`spawn error: ${e.message}\n`));
        this.dead = true;
        resolve();
      });
    });
    live.add(this);
    installExitHook();
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    let last = "no answer yet";
    while (Date.now() < deadline) {
      if (this.dead) break;
      try {
        const r = await httpJson(this.clientUrl, "GET", "/health", undefined, 1000);
        if (r.status === 200 && (r.body as { health?: string }).health === "true") return;
        last = `GET /health → ${r.status} ${JSON.stringify(r.body)}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(50);
    }
    const exitedEarly = this.dead;
    await this.terminate("SIGKILL");
    throw new Error(
      `etcd ${exitedEarly ? `exited (code ${proc.exitCode}, signal ${proc.signalCode})` : "was not ready in time"} ` +
        `(last: ${last}); its output:\n${this.output}`,
    );
  }

  /** Sends `signal` to our PID, waits for the exit (SIGKILL after STOP_GRACE_MS). */
  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.pid === undefined) return;
    if (this.running) {
      try {
        process.kill(proc.pid, signal);
      } catch {
        /* already gone */
      }
      let t: NodeJS.Timeout | undefined;
      const escalate = new Promise<void>((resolve) => {
        t = setTimeout(() => {
          if (this.running) {
            try {
              process.kill(proc.pid!, "SIGKILL");
            } catch {
              /* gone */
            }
          }
          resolve();
        }, STOP_GRACE_MS);
      });
      await Promise.race([this.exited, escalate]);
      await this.exited; // after SIGKILL the exit follows
      clearTimeout(t);
    }
  }

  async kill(): Promise<void> {
    await this.terminate("SIGKILL");
  }

  async halt(): Promise<void> {
    await this.terminate("SIGTERM");
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.terminate("SIGTERM");
    this.stopped = true;
    live.delete(this);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** From the process 'exit' hook: synchronous, our PID only. */
  emergencyStop(): void {
    if (this.running && this.proc?.pid !== undefined) {
      try {
        process.kill(this.proc.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    try {
      rmSync(this.dataDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

/** Start a fresh single-member etcd on loopback (throws with the reason if none is available or it does not start). */
export async function startEtcd(opts: EtcdOptions = {}): Promise<Etcd> {
  const why = etcdUnavailable();
  if (why) throw new Error(why);
  const bin = findEtcd()!;
  const version = etcdVersion(bin)!;
  // Free ports are picked before etcd binds them (it needs the numbers on its command line): another process could
  // take one in between, so a failed first start is retried on new ports.
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "ws-governor-etcd-")); // mode 0700, as etcd wants
    const server = new EtcdServer(bin, version, dataDir, clientPort, peerPort, opts);
    try {
      await server.start();
      return server;
    } catch (e) {
      lastError = e as Error;
      await server.stop();
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new Error("etcd did not start");
}

// ------------------------------------------------------------------ a tiny JSON client (for tests and the harness)

export interface JsonResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;     // parsed JSON (or the raw text when the body is not JSON)
  text: string;
}

/** One HTTP request with a JSON body to `baseUrl` + `path`; bounded by `timeoutMs`. No keep-alive (agent: false). */
export function httpJson(baseUrl: string, method: string, urlPath: string, body?: unknown, timeoutMs = 5000): Promise<JsonResponse> {
  const u = new URL(urlPath, baseUrl);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        agent: false,
        timeout: timeoutMs,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** POST a JSON body to the gateway; rejects on a non-200 answer (with the body in the message). */
export async function etcdPost<T = any>(clientUrl: string, urlPath: string, body: unknown, timeoutMs = 5000): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await httpJson(clientUrl, "POST", urlPath, body, timeoutMs);
  if (r.status !== 200) throw new Error(`POST ${urlPath} → ${r.status}: ${r.text}`);
  return r.body as T;
}

/** base64 of a UTF-8 string (the gateway's encoding of `bytes` fields: key, range_end, value). */
export function b64(s: string | Buffer): string {
  return (typeof s === "string" ? Buffer.from(s, "utf8") : s).toString("base64");
}

/** UTF-8 text of a base64 `bytes` field. */
export function unb64(s: string | undefined): string {
  return Buffer.from(s ?? "", "base64").toString("utf8");
}

/** The range_end that makes [key, range_end) the set of keys starting with `prefix` (etcd's "prefix" rule). */
export function prefixEnd(prefix: string | Buffer): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]); // all keys ≥ key
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
