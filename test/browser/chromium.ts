// Headless Chromium over the DevTools protocol, with nothing but `ws` (no Playwright/Puppeteer dependency).
// Loopback only: the browser is started with networking features off and a fresh profile, and the tests only open
// 127.0.0.1 pages.
//   CHROMIUM_BIN=/path/to/chromium overrides the search (chromium, chromium-browser, google-chrome, …).
// chromiumUnavailable() says why no browser can be used; callers turn that into a failure when CI=true and into a
// skip (never a pass) otherwise — see requireChromium().
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { findExecutable } from "../support/executables.ts";

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"];

export function findChromium(): string | undefined {
  return findExecutable("CHROMIUM_BIN", [], CANDIDATES);
}

export function chromiumUnavailable(): string | undefined {
  if (process.env.CHROMIUM_BIN && !findChromium()) return `CHROMIUM_BIN=${process.env.CHROMIUM_BIN} is not an executable file`;
  if (!findChromium()) {
    return `no Chromium found (looked for ${CANDIDATES.join(", ")} on PATH; set CHROMIUM_BIN or run: apt-get install -y chromium)`;
  }
  return undefined;
}

/** Test options for node:test: CI=true → run (and fail with the reason); otherwise skip with the reason printed. */
export function chromiumGate(): { skip: string | false; failReason?: string } {
  const why = chromiumUnavailable();
  if (!why) return { skip: false };
  if (process.env.CI === "true") return { skip: false, failReason: `Chromium is required when CI=true: ${why}` };
  console.log(`browser tests skipped: ${why}`);
  return { skip: `Chromium unavailable: ${why}` };
}

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-default-browser-check",
  "--disable-extensions",
  "--disable-dev-shm-usage",
  "--remote-debugging-address=127.0.0.1",
  "--remote-debugging-port=0",
];

interface Pending { resolve(v: any): void; reject(e: Error): void; method: string } // eslint-disable-line @typescript-eslint/no-explicit-any

export class Browser {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners: Array<(m: { method: string; params: any; sessionId?: string }) => void> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly stderr: string[] = [];

  private constructor(readonly proc: ChildProcess, private ws: WebSocket, private profile: string) {
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (typeof m.id === "number") {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
        else p.resolve(m.result);
      } else if (m.method) {
        for (const l of [...this.listeners]) l(m);
      }
    });
    ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error(`${p.method}: DevTools connection closed`));
      this.pending.clear();
    });
  }

  static async launch(timeoutMs = 20_000): Promise<Browser> {
    const bin = findChromium();
    if (!bin) throw new Error(chromiumUnavailable());
    const profile = mkdtempSync(path.join(os.tmpdir(), "wsg-chromium-"));
    const proc = spawn(bin, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, "about:blank"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const stderr: string[] = [];
    let endpoint: string;
    try {
      endpoint = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`Chromium did not print its DevTools endpoint within ${timeoutMs} ms:\n${stderr.join("")}`)), timeoutMs);
        let buf = "";
        proc.stderr!.on("data", (d: Buffer) => {
          const s = d.toString();
          stderr.push(s);
          buf += s;
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(buf);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        proc.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`Chromium exited (${code}) before DevTools was up:\n${stderr.join("")}`));
        });
        proc.once("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      if (!/^ws:\/\/127\.0\.0\.1:/.test(endpoint)) throw new Error(`DevTools endpoint is not on loopback: ${endpoint}`);
      const ws = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const b = new Browser(proc, ws, profile);
      b.stderr.push(...stderr);
      proc.stderr!.on("data", (d: Buffer) => {
        b.stderr.push(d.toString());
        if (b.stderr.length > 500) b.stderr.shift();
      });
      return b;
    } catch (e) {
      if (proc.exitCode === null && proc.pid) proc.kill("SIGKILL");
      rmSync(profile, { recursive: true, force: true });
      throw e;
    }
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, sessionId?: string, timeoutMs = 15_000): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(l: (m: { method: string; params: any; sessionId?: string }) => void): () => void { // eslint-disable-line @typescript-eslint/no-explicit-any
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }

  async newPage(width = 1200, height = 800): Promise<Page> {
    const { targetId } = await this.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send<{ sessionId: string }>("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  async close(): Promise<void> {
    try {
      await this.send("Browser.close", {}, undefined, 3000);
    } catch {
      /* already gone */
    }
    this.ws.terminate();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
      const t = setTimeout(() => this.proc.kill("SIGKILL"), 3000); // this PID only: the browser we started
      await exited;
      clearTimeout(t);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  readonly console: string[] = [];
  readonly errors: string[] = [];
  constructor(private b: Browser, readonly sessionId: string) {
    b.on((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === "Runtime.consoleAPICalled") {
        this.console.push(m.params.args.map((a: { value?: unknown; description?: string }) => String(a.value ?? a.description ?? "")).join(" "));
      } else if (m.method === "Runtime.exceptionThrown") {
        this.errors.push(m.params.exceptionDetails?.exception?.description ?? m.params.exceptionDetails?.text ?? "exception");
      }
    });
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.b.send<T>(method, params, this.sessionId, timeoutMs);
  }

  async goto(url: string, timeoutMs = 15_000): Promise<void> {
    if (!/^(http|ws):\/\/127\.0\.0\.1[:/]/.test(url)) throw new Error(`loopback pages only: ${url}`);
    let off = () => {};
    const loaded = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`page ${url} not loaded within ${timeoutMs} ms`)), timeoutMs);
      off = this.b.on((m) => {
        if (m.sessionId === this.sessionId && m.method === "Page.loadEventFired") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      const r = await this.send<{ errorText?: string }>("Page.navigate", { url });
      if (r.errorText) throw new Error(`navigation to ${url} failed: ${r.errorText}`);
      await loaded;
    } finally {
      off();
    }
  }

  /** Evaluates an expression in the page (promises awaited) and returns its JSON value. */
  async eval<T = unknown>(expression: string, timeoutMs = 15_000): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
      "Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true },
      timeoutMs,
    );
    if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls an expression until it is truthy; returns its value. */
  async waitFor<T = unknown>(expression: string, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      last = await this.eval<T>(expression);
      if (last) return last as T;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  async screenshot(): Promise<Buffer> {
    const r = await this.send<{ data: string }>("Page.captureScreenshot", { format: "png", captureBeyondViewport: false });
    return Buffer.from(r.data, "base64");
  }
}
