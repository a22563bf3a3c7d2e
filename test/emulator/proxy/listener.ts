// The listener of the loopback proxy: plain HTTP/1.1, or TLS when the filter chain has a DownstreamTlsContext
// transport socket (§13.2). Per request it does what Envoy's HTTP/1 codec and HCM do before the filter chain:
// inline-header merging and the 431 limits (§13.3), mutateRequestHeaders and the stream's remote address (§13.2),
// upgrade detection on the merged headers, then hands the stream to ProxyStream. Binds 127.0.0.1 only.
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import os from "node:os";
import type tls from "node:tls";
import { readFileSync } from "node:fs";
import type { FilterStream, PluginHandle } from "../host/api.ts";
import type { ProxyBootstrap } from "./bootstrap.ts";
import { REQUEST_INLINE, headerLimitError, mergedPairs, mutateRequestHeaders } from "./hcm.ts";
import { isUpgradeRequest, responseHead, upgradeType } from "./headers.ts";
import type { ProxyStats } from "./stats.ts";
import { ProxyStream, type StreamEnv } from "./stream.ts";
import { tlsConnectionInfo } from "./tls.ts";

export interface ListenerDeps {
  bs: ProxyBootstrap;
  env: StreamEnv;
  stats: ProxyStats;
  concurrency: number;
  plugin: PluginHandle | undefined;
  streams: Set<ProxyStream>;
  /** Envoy's local_info address (appended to XFF for a loopback peer with use_remote_address) */
  localIp: string;
  minor: number;
  /** test hook: the addresses Envoy would see for a connection from this loopback peer IP (ProxyOptions.networkView) */
  networkView?: NetworkView;
}

/** What a connection looks like to Envoy, for tests that play remote clients on loopback: the kernel here only has
 *  127.x peers connecting to 127.x, so a test maps, e.g., a client bound to 127.0.0.7 to peer 10.1.2.7 reaching the
 *  pod address 10.0.0.10:8080. Undefined: the socket's own addresses. */
export type NetworkView = (peerIp: string, peerPort: number) => { peer: string; local: string } | undefined;

function splitAddress(a: string): { ip: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(a);
  return m ? { ip: m[1], port: Number(m[2]) } : { ip: a, port: 0 };
}

/** Network::Utility::getLocalAddress: the first non-loopback IPv4 address of the host, else loopback */
export function defaultLocalIp(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

export function createListener(d: ListenerDeps): { server: http.Server; openSockets: Set<net.Socket> } {
  const { bs, env, stats, concurrency, streams } = d;
  const hcm = bs.listener.hcm;
  const sp = hcm.statPrefix;
  const connInfo = new WeakMap<net.Socket, { id: number; worker: number }>();
  const openSockets = new Set<net.Socket>();
  let nextWorker = 0;
  // node's own header limits must not answer before ours (maxHeaderSize counts the whole head)
  const limits = { keepAlive: true, maxHeaderSize: hcm.maxRequestHeadersKb * 2048 + 65536 };
  const t = bs.listener.tls;
  const server: http.Server = t
    ? https.createServer({
      ...limits,
      cert: readFileSync(t.certChain), key: readFileSync(t.privateKey),
      ca: t.trustedCa ? readFileSync(t.trustedCa) : undefined,
      requestCert: t.trustedCa !== undefined, rejectUnauthorized: t.requireClientCertificate,
    })
    : http.createServer(limits);
  server.maxHeadersCount = 0;
  const reparsed = new WeakSet<net.Socket>(); // sockets handed back to the HTTP parser (h2c, below): counted once
  const onConnection = (s: net.Socket) => {
    if (reparsed.has(s)) return;
    if (t) {
      // a presented certificate that does not verify fails the handshake even when it is optional
      const ts = s as tls.TLSSocket;
      if (!ts.authorized && ts.getPeerCertificate() && Object.keys(ts.getPeerCertificate()).length > 0) {
        s.destroy();
        return;
      }
    }
    connInfo.set(s, { id: env.nextConnectionId(), worker: nextWorker++ % concurrency });
    openSockets.add(s);
    stats.inc(`http.${sp}.downstream_cx_total`);
    stats.gaugeAdd(`http.${sp}.downstream_cx_active`, 1);
    s.on("close", () => {
      openSockets.delete(s);
      stats.gaugeAdd(`http.${sp}.downstream_cx_active`, -1);
    });
  };
  server.on(t ? "secureConnection" : "connection", onConnection);

  /** The HTTP/1 codec does not support h2c: it removes `Upgrade`, `HTTP2-Settings` and those two `Connection` tokens,
   *  and the request goes on as a normal one (envoy http1/codec_impl.cc, ConnectionImpl::onHeadersCompleteImpl). Node
   *  has already handed the socket over as an upgrade, so the head is written back without them and the socket is
   *  given to the HTTP parser again (keep-alive and any body then work as for every request). */
  const reparseWithoutH2c = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i], lk = k.toLowerCase();
      let v = req.rawHeaders[i + 1];
      if (lk === "upgrade" || lk === "http2-settings") continue;
      if (lk === "connection") {
        v = v.split(",").map((x) => x.trim()).filter((x) => x !== "" && !["upgrade", "http2-settings"].includes(x.toLowerCase())).join(", ");
        if (v === "") continue;
      }
      lines.push(`${k}: ${v}`);
    }
    socket.unshift(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), head]));
    reparsed.add(socket);
    server.emit(t ? "secureConnection" : "connection", socket);
  };

  const viewOf = (s: net.Socket) => d.networkView?.(s.remoteAddress ?? "127.0.0.1", s.remotePort ?? 0);
  const peerOf = (s: net.Socket) => {
    const v = viewOf(s);
    return v ? splitAddress(v.peer) : { ip: s.remoteAddress ?? "127.0.0.1", port: s.remotePort ?? 0 };
  };
  const newFilterStream = (s: net.Socket, sourceAddress: string): FilterStream | undefined => {
    if (!d.plugin) return undefined;
    const ci = connInfo.get(s) ?? { id: env.nextConnectionId(), worker: 0 };
    return d.plugin.newStream(ci.worker, {
      id: ci.id,
      sourceAddress,
      destinationAddress: viewOf(s)?.local ?? `${s.localAddress ?? "127.0.0.1"}:${s.localPort ?? 0}`,
      protocol: "HTTP/1.1",
      tls: t ? tlsConnectionInfo(s as tls.TLSSocket) : undefined,
    });
  };

  /** codec + HCM work before the filter chain; undefined after a 431 was sent */
  const prepare = (req: http.IncomingMessage, upgrade: boolean, reply431: (body: string) => void) => {
    stats.inc(`http.${sp}.downstream_rq_total`);
    const merged = mergedPairs(req.rawHeaders, REQUEST_INLINE);
    const s = req.socket;
    const tooLarge = headerLimitError(merged, hcm);
    if (tooLarge) {
      // the codec's local reply; the filter object exists but never sees headers (§2.5 D): create → log → done → delete
      stats.inc(`http.${sp}.downstream_rq_4xx`);
      reply431("Request Header Fields Too Large");
      const pe = peerOf(s);
      const f = newFilterStream(s, pe.ip.includes(":") ? `[${pe.ip}]:${pe.port}` : `${pe.ip}:${pe.port}`);
      if (f && !f.ended) f.complete();
      return undefined;
    }
    const { headers, remoteAddress } = mutateRequestHeaders({
      merged, url: req.url ?? "/", method: req.method ?? "GET", upgrade, hcm,
      peer: peerOf(s),
      localIp: d.localIp, tls: t !== undefined, minor: d.minor,
    });
    return { merged, headers, filter: newFilterStream(s, remoteAddress) };
  };

  /** 403 with the connection closed (an upgrade Envoy will not perform, §2.5 D) */
  const forbidden = (socket: net.Socket) => socket.end(responseHead(403, "Forbidden", [["content-length", "0"],
    ["date", new Date().toUTCString()], ["server", "envoy"], ["connection", "close"]]));

  const head431 = (body: string): string => responseHead(431, "Request Header Fields Too Large", [
    ["content-length", String(Buffer.byteLength(body))], ["content-type", "text/plain"], ["date", new Date().toUTCString()],
    ["server", "envoy"], ["connection", "close"]]) + body;

  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const p = prepare(req, false, (body) => {
      res.writeHead(431, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), server: "envoy", connection: "close" });
      res.end(body);
    });
    if (!p) return;
    const len = Number(req.headers["content-length"] ?? 0);
    const hasBody = len > 0 || /chunked/i.test(String(req.headers["transfer-encoding"] ?? ""));
    const st = new ProxyStream(env, { kind: "http", req, res }, p.filter);
    streams.add(st);
    st.start(p.headers, !hasBody);
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const merged = mergedPairs(req.rawHeaders, REQUEST_INLINE);
    if (isUpgradeRequest(merged) && upgradeType(merged) === "h2c") return reparseWithoutH2c(req, socket, head);
    // Envoy's own upgrade decision reads the same merged Connection/Upgrade values the filter gets (§13.3)
    if (!isUpgradeRequest(merged)) {
      stats.inc(`http.${sp}.downstream_rq_total`);
      stats.inc(`http.${sp}.downstream_rq_4xx`);
      forbidden(socket);
      return;
    }
    const p = prepare(req, true, (body) => socket.end(head431(body)));
    if (!p) return;
    // Upgrade type not allowed (FilterManager::createFilterChain finds no upgrade chain; ActiveStream::decodeHeaders):
    // with a route, 403 upgrade_failed before any filter sees headers, the filter object only logs (§2.5 D), and the
    // connection is closed; without a route the default chain runs with the upgrade headers kept, so the filters see
    // them and the router answers 404 route_not_found (below, as for any unrouted request).
    if ((!hcm.websocketUpgrade || upgradeType(merged) !== "websocket") && env.route(p.headers)) {
      stats.inc(`http.${sp}.downstream_rq_ws_on_non_ws_route`);
      stats.inc(`http.${sp}.downstream_rq_4xx`);
      forbidden(socket);
      if (p.filter) {
        p.filter.encodeHeaders([[":status", "403"], ["content-length", "0"]], true, "upgrade_failed");
        if (!p.filter.ended) p.filter.complete();
      }
      return;
    }
    const st = new ProxyStream(env, { kind: "upgrade", req, socket, head }, p.filter);
    streams.add(st);
    st.start(p.headers, false);
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!socket.writable) return;
    if (err.code === "HPE_HEADER_OVERFLOW") socket.end(head431("Request Header Fields Too Large"));
    else socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  });
  return { server, openSockets };
}
