// Harness for the frame-level end-to-end checks (frames.test.ts) and the browser tests (test/browser/): the emulated
// Envoy (loopback proxy + host emulator + build/ws-governor.wasm) in front of `ws` echo pods whose permessage-deflate
// setting is chosen per deployment, plus a raw-socket WebSocket client for traffic `ws` refuses to send.
import http from "node:http";
import net from "node:net";
import { existsSync } from "node:fs";
import path from "node:path";
import WebSocket, { WebSocketServer, type PerMessageDeflateOptions } from "ws";
import type { LogEntry } from "../emulator/host/api.ts";
import { REPO_ROOT, startProxy, type ProxyOptions, type RunningProxy } from "../emulator/proxy/index.ts";
import { parseStatsText } from "../emulator/proxy/stats.ts";
import { buildFrame, Opcode, upgradeRequest } from "../support/frames.ts";
import { httpRequest } from "../support/ws-client.ts";
import { afterTick, waitFor, withTimeout } from "../support/wait.ts";
import { basePluginConfig, patchConfig, renderBootstrap } from "./targets/render.ts";

export const WASM_PATH = path.join(REPO_ROOT, "build/ws-governor.wasm");
export const G = "wasmcustom.ws_governor.";
/** text message that makes an echo pod answer with a masked frame (a protocol violation from the upstream) */
export const MISBEHAVE = "__pod: send a masked frame__";
/** text messages starting with this are not echoed: a flooding client's pod stays quiet, so only the client's
 *  direction can go over messages_per_second (an echo would flood back at the same rate and could trip first) */
export const NO_ECHO = "flood ";
export const VM_ID = "ws_governor"; // envoy/envoy.yaml vm_config.vm_id: the shared-data namespace

export function wasmMissing(): string | undefined {
  if (!existsSync(path.join(REPO_ROOT, "test/emulator/host/index.ts"))) return "test/emulator/host/index.ts is missing";
  if (!existsSync(WASM_PATH)) return "build/ws-governor.wasm is missing (run make build)";
  return undefined;
}

// ------------------------------------------------------------------ echo pods

export interface EchoPod {
  name: string;
  port: number;
  open(): number;
  accepted(): number;
  /** close codes the pod received from its peer (the proxy side) */
  closeCodes: number[];
  kill(): Promise<void>;
}

/** A `ws` echo pod like test/support/pod-server.mjs, with a configurable permessage-deflate. */
export async function startEchoPod(name: string, deflate: boolean | PerMessageDeflateOptions): Promise<EchoPod> {
  const sockets = new Set<net.Socket>();
  let open = 0;
  let accepted = 0;
  const closeCodes: number[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-pod": name });
    res.end(name);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: deflate });
  wss.on("headers", (h) => h.push(`x-pod: ${name}`));
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      open++;
      accepted++;
      ws.on("message", (data, isBinary) => {
        // test hook: a pod that breaks the protocol (servers must not mask their frames)
        if (!isBinary && String(data) === MISBEHAVE) {
          (ws as unknown as { _socket: net.Socket })._socket.write(buildFrame({ opcode: Opcode.text, payload: "masked by the pod", mask: true }));
          return;
        }
        if (!isBinary && (data as Buffer).subarray(0, NO_ECHO.length).toString() === NO_ECHO) return;
        ws.send(data as Buffer, { binary: isBinary });
      });
      ws.on("error", () => {});
      ws.on("close", (code) => {
        open--;
        closeCodes.push(code);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  let killed = false;
  return {
    name,
    port,
    open: () => open,
    accepted: () => accepted,
    closeCodes,
    kill: async () => {
      if (killed) return;
      killed = true;
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------ deployment

export interface FramesDeployment {
  proxy: RunningProxy;
  pods: EchoPod[];
  logs: LogEntry[];
  pluginConfig: Record<string, unknown>;
  wsUrl(p?: string): string;
  /** admin /stats one tick (the deployment's tick_ms) after the call: what just happened has reached Envoy */
  stats(): Promise<Map<string, number>>;
  stat(name: string): Promise<number>;
  /** admin /stats now (for polling) */
  rawStats(): Promise<Map<string, number>>;
  /** wait until admin /stats shows `name` == value */
  waitStat(name: string, value: number, timeoutMs?: number): Promise<void>;
  /** raw shared-data write, as another configuration of the plugin (or another VM) would do */
  sharedPut(key: string, value: Uint8Array): void;
  sharedGet(key: string): Uint8Array | undefined;
  stop(): Promise<void>;
}

export interface FramesDeployOptions {
  /** patch over envoy.yaml's plugin configuration (shallow) */
  config?: Record<string, unknown>;
  podDeflate?: boolean | PerMessageDeflateOptions;
  pods?: number;
  concurrency?: number;
  adminRoutes?: ProxyOptions["adminRoutes"];
}

export async function deployFrames(o: FramesDeployOptions = {}): Promise<FramesDeployment> {
  const pods: EchoPod[] = [];
  for (let i = 0; i < (o.pods ?? 1); i++) pods.push(await startEchoPod(`pod-${String.fromCharCode(97 + i)}`, o.podDeflate ?? false));
  const logs: LogEntry[] = [];
  const pluginConfig = patchConfig(basePluginConfig(), o.config);
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({
      config: renderBootstrap({ pluginConfig }),
      wasmPath: WASM_PATH,
      concurrency: o.concurrency ?? 2,
      clusterOverrides: { demo_pods: pods.map((p) => ({ host: "127.0.0.1", port: p.port })) },
      listenerPortOverride: 0,
      adminPortOverride: 0,
      logLevel: "debug",
      onLog: (e) => {
        logs.push(e);
        if (logs.length > 2000) logs.shift();
      },
      adminRoutes: o.adminRoutes,
    });
  } catch (e) {
    await Promise.all(pods.map((p) => p.kill()));
    throw e;
  }
  const rawStats = async () => {
    const r = await httpRequest(proxy.adminUrl("/stats"));
    if (r.status !== 200) throw new Error(`admin /stats answered ${r.status}`);
    return parseStatsText(r.body);
  };
  // the filter's counters reach Envoy on its tick: a read that must show what just happened waits one tick first
  const tickMs = Number(pluginConfig.tick_ms ?? 1000);
  const stats = async () => { await afterTick(tickMs); return rawStats(); };
  const stat = async (name: string) => (await stats()).get(name) ?? 0;
  const rawStat = async (name: string) => (await rawStats()).get(name) ?? 0;
  const store = proxy.host?.sharedData as unknown as {
    put?: (vmId: string, key: string, value: Uint8Array) => number;
    get(vmId: string, key: string): { value: Uint8Array } | undefined;
  };
  return {
    proxy,
    pods,
    logs,
    pluginConfig,
    wsUrl: (p = "/ws") => proxy.wsUrl(p),
    stats,
    stat,
    rawStats,
    waitStat: (name, value, timeoutMs = 5000) =>
      waitFor(async () => (await rawStat(name)) === value, { timeoutMs, intervalMs: 25, what: `${name} == ${value}` }).then(() => undefined),
    sharedPut: (key, value) => {
      if (!store?.put) throw new Error("the host emulator's shared data has no put() test hook");
      store.put(VM_ID, key, value);
    },
    sharedGet: (key) => store?.get(VM_ID, key)?.value,
    // proxy.close() rejects with HostDefectError when the module returned Continue after proxy_close_stream or a
    // local reply (envoy-host.md §13.1), so every frames test also checks that rule
    stop: async () => {
      try {
        await proxy.close();
      } finally {
        await Promise.all(pods.map((p) => p.kill()));
      }
    },
  };
}

// ------------------------------------------------------------------ ws clients

export interface OpenedWs {
  ws: WebSocket;
  headers: http.IncomingHttpHeaders;
  /** every message received, in order */
  received: Buffer[];
  /** resolves with the close code/reason the client saw */
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a `ws` client; rejects unless the answer is 101. */
export function openWs(url: string, deflate: boolean | PerMessageDeflateOptions = false, timeoutMs = 5000): Promise<OpenedWs> {
  return withTimeout(
    new Promise<OpenedWs>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: deflate, handshakeTimeout: timeoutMs });
      let headers: http.IncomingHttpHeaders = {};
      const received: Buffer[] = [];
      ws.on("message", (d) => received.push(Buffer.isBuffer(d) ? d : Buffer.from(d as ArrayBuffer)));
      const closed = new Promise<{ code: number; reason: string }>((res) =>
        ws.once("close", (code, reason) => res({ code, reason: reason.toString() })),
      );
      ws.on("upgrade", (r) => (headers = r.headers));
      ws.once("open", () => resolve({ ws, headers, received, closed }));
      ws.on("unexpected-response", (_q, r) => {
        reject(new Error(`upgrade answered ${r.statusCode}`));
        ws.terminate();
      });
      ws.on("error", (e) => reject(e));
    }),
    timeoutMs + 500,
    `open ${url}`,
  );
}

/** Status of a refused upgrade (or 101). */
export function upgradeStatus(url: string, timeoutMs = 5000): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      ws.on("open", () => {
        ws.terminate();
        resolve(101);
      });
      ws.on("unexpected-response", (_q, r) => {
        resolve(r.statusCode ?? 0);
        r.resume();
        ws.terminate();
      });
      ws.on("error", reject);
    }),
    timeoutMs + 500,
    `upgrade ${url}`,
  );
}

export async function sendAndEcho(o: OpenedWs, data: string | Buffer, timeoutMs = 3000): Promise<Buffer> {
  const before = o.received.length;
  o.ws.send(data);
  await waitFor(() => o.received.length > before, { timeoutMs, intervalMs: 5, what: "the echo" });
  return o.received[before];
}

// ------------------------------------------------------------------ raw socket client

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  closeCode?: number;
}

export interface RawWs {
  socket: net.Socket;
  status: number;
  responseHead: string;
  frames: RawFrame[];
  ended: Promise<void>;
  send(b: Buffer): void;
  waitFrame(pred: (f: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame>;
}

/** Does the WebSocket handshake by hand over a raw TCP socket, then parses server frames as they arrive. */
export function rawWs(port: number, pathname = "/ws", extra: Record<string, string> = {}, timeoutMs = 5000): Promise<RawWs> {
  return withTimeout(
    new Promise<RawWs>((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      let buf = Buffer.alloc(0);
      let head: string | undefined;
      const frames: RawFrame[] = [];
      const ended = new Promise<void>((res) => socket.once("close", () => res()));
      socket.on("error", (e) => {
        if (head === undefined) reject(e);
      });
      socket.on("connect", () => socket.write(upgradeRequest(pathname, `127.0.0.1:${port}`, extra)));
      socket.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (head === undefined) {
          const i = buf.indexOf("\r\n\r\n");
          if (i < 0) return;
          head = buf.subarray(0, i).toString("latin1");
          buf = buf.subarray(i + 4);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
          resolve({
            socket,
            status,
            responseHead: head,
            frames,
            ended,
            send: (b) => socket.write(b),
            waitFrame: (pred, ms = 3000) =>
              waitFor(() => frames.find(pred), { timeoutMs: ms, intervalMs: 5, what: "a matching frame from the proxy" }),
          });
        }
        // parse complete frames
        for (;;) {
          if (buf.length < 2) return;
          const b0 = buf[0];
          const b1 = buf[1];
          let len = b1 & 0x7f;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          const masked = (b1 & 0x80) !== 0;
          if (masked) off += 4;
          if (buf.length < off + len) return;
          let payload = Buffer.from(buf.subarray(off, off + len));
          if (masked) {
            const key = buf.subarray(off - 4, off);
            payload = Buffer.from(payload.map((x, j) => x ^ key[j & 3]));
          }
          const f: RawFrame = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload };
          if (f.opcode === 8 && payload.length >= 2) f.closeCode = payload.readUInt16BE(0);
          frames.push(f);
          buf = buf.subarray(off + len);
        }
      });
    }),
    timeoutMs,
    "raw WebSocket handshake",
  );
}

// ------------------------------------------------------------------ table

export interface CloseRow {
  scenario: string;
  config: string;
  sent: string;
  expected: string;
  got: string;
  stat: string;
  ok: boolean;
}

export function closeTable(rows: CloseRow[]): string {
  const cols = ["", "scenario", "config", "sent", "expected", "got", "stats"];
  const data = rows.map((r) => [r.ok ? "ok" : "FAIL", r.scenario, r.config, r.sent, r.expected, r.got, r.stat]);
  const w = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join(" | ").trimEnd();
  return [line(cols), w.map((n) => "-".repeat(n)).join("-+-"), ...data.map(line)].join("\n");
}
