// WebSocket and HTTP client helpers over `ws` and node:http. No assertions here.
import http from "node:http";
import WebSocket from "ws";

export type Headers = Record<string, string | string[] | undefined>;

/** TLS client options for a wss:// URL (passed to tls.connect by `ws`): trusted CA, client certificate and key, SNI. */
export interface WsTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
}

export type WsOutcome =
  | { kind: "open"; ws: WebSocket; status: 101; headers: Headers }
  | { kind: "rejected"; status: number; headers: Headers; body: string }
  | { kind: "error"; error: Error };

/** Open a WebSocket; resolves with open, rejected (non-101 answer, through `unexpected-response`) or error. */
export function connectWs(
  url: string,
  opts: { headers?: Record<string, string>; timeoutMs?: number; localAddress?: string; tls?: WsTlsOptions } = {},
): Promise<WsOutcome> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: WsOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const ws = new WebSocket(url, {
      headers: opts.headers, perMessageDeflate: false, handshakeTimeout: timeoutMs,
      localAddress: opts.localAddress, // e.g. 127.0.0.7: a second loopback client IP (ProxyOptions.networkView)
      ...(opts.tls ?? {}),             // wss:// only: ca / cert / key / servername
    });
    const timer = setTimeout(() => {
      ws.terminate();
      done({ kind: "error", error: new Error(`no handshake answer within ${timeoutMs} ms`) });
    }, timeoutMs + 100);
    let upgradeHeaders: Headers = {};
    ws.on("upgrade", (res) => {
      upgradeHeaders = res.headers;
    });
    ws.on("open", () => done({ kind: "open", ws, status: 101, headers: upgradeHeaders }));
    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const finish = () =>
        done({ kind: "rejected", status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.on("end", finish);
      res.on("close", finish);
      res.on("error", finish);
    });
    ws.on("error", (error) => done({ kind: "error", error }));
  });
}

/** Send one text message and wait for the next message back. */
export function echo(ws: WebSocket, msg: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no echo for ${JSON.stringify(msg)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData) => {
      cleanup();
      resolve(data.toString());
    };
    const onClose = () => {
      cleanup();
      reject(new Error("socket closed before the echo"));
    };
    const cleanup = () => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
    };
    ws.on("message", onMessage);
    ws.on("close", onClose);
    ws.send(msg);
  });
}

/** Resolves when the socket is closed (immediately if already closed). */
export function waitClosed(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: 1006, reason: "" });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.once("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** Close politely and wait for the close to finish. */
export async function closeWs(ws: WebSocket, timeoutMs = 3000): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = waitClosed(ws, timeoutMs).catch(() => ws.terminate());
  ws.close(1000, "bye");
  await closed;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request on a fresh connection. */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number; localAddress?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? "GET", headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 5000, localAddress: opts.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
