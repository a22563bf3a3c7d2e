// ProxyStreamBase: a proxied stream's state, writes to the client, and every way it ends (complete, resets, timeouts).
import http from "node:http";
import type net from "node:net";
import type { FilterStream, HeaderList, LocalReply } from "../host/api.ts";
import type { RouteEntry } from "./bootstrap.ts";
import { finalResponseHeaders, responseHead, toHeaderObject } from "./headers.ts";
import type { StreamEnv } from "./stream.ts";

export type Downstream =
  | { kind: "http"; req: http.IncomingMessage; res: http.ServerResponse }
  | { kind: "upgrade"; req: http.IncomingMessage; socket: net.Socket; head: Buffer };

export const EMPTY = new Uint8Array(0);

export abstract class ProxyStreamBase {
  protected responseStarted = false;
  protected finished = false;
  protected upgraded = false;
  protected upstreamReq?: http.ClientRequest;
  protected upSocket?: net.Socket;
  protected endpointKey?: string;
  protected routeEntry?: RouteEntry;
  private idleTimer?: NodeJS.Timeout;
  protected responseTimer?: NodeJS.Timeout;
  protected upstreamDone = false;

  /** the filter object of this stream: it ends (complete/reset → on_log, on_done, on_delete) even when skipped */
  protected readonly lifecycle: FilterStream | undefined;
  /** who gets the stream callbacks: undefined when there is no filter or ExtensionWithMatcher skipped it */
  protected filter: FilterStream | undefined;

  constructor(
    protected readonly env: StreamEnv,
    protected readonly ds: Downstream,
    filter: FilterStream | undefined,
  ) {
    this.lifecycle = filter;
    this.filter = filter;
  }

  /** leave the proxy's set of live streams (StreamEnv.forget) */
  protected abstract detach(): void;

  get isUpgrade(): boolean {
    return this.ds.kind === "upgrade";
  }

  // ---------------------------------------------------------------- writing to the client

  protected writeHead(status: number, h: HeaderList, close = false): void {
    this.responseStarted = true;
    this.env.stats.inc(`http.${this.env.statPrefix}.downstream_rq_${Math.floor(status / 100)}xx`);
    if (this.ds.kind === "http") {
      const res = this.ds.res;
      for (const [k, v] of Object.entries(toHeaderObject(h))) res.setHeader(k, v);
      if (close) res.setHeader("connection", "close");
      res.writeHead(status);
    } else {
      const hasLength = h.some(([k]) => k === "content-length");
      const out: HeaderList = [...h.filter(([k]) => k !== "connection"), ["connection", "close"]];
      if (!hasLength) out.push(["content-length", "0"]);
      this.ds.socket.write(responseHead(status, http.STATUS_CODES[status] ?? "Unknown", out));
    }
  }

  protected writeBody(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.ds.kind === "http") this.ds.res.write(data);
    else this.ds.socket.write(data);
  }

  protected writeLocalReply(reply: LocalReply): void {
    if (this.finished) return;
    const h = finalResponseHeaders(reply.headers, false);
    if (reply.body.length > 0 && !h.some(([k]) => k === "content-length")) h.push(["content-length", String(reply.body.length)]);
    // HTTP/1: an upgrade request never completed, so the connection is closed after the reply (§7.3)
    this.writeHead(reply.status, h, this.isUpgrade);
    this.writeBody(reply.body);
    this.endResponse();
  }

  /** The response is complete: end it, finish the filter stream normally. */
  protected endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    if (this.ds.kind === "http") {
      this.ds.res.end();
      if (this.ds.req.readableEnded === false) this.ds.req.resume();
    } else {
      const s = this.ds.socket;
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    }
    if (!this.upstreamDone) this.upstreamReq?.destroy();
    if (this.lifecycle && !this.lifecycle.ended) this.lifecycle.complete();
    this.detach();
  }

  // ---------------------------------------------------------------- ends and resets

  protected downstreamGone(reason: string): void {
    if (this.finished) return;
    if (this.ds.kind === "http" && this.ds.res.writableFinished) return;
    this.finish(reason, "downstream");
  }

  protected upstreamGone(): void {
    if (this.finished) return;
    if (this.upgraded && this.filter && !this.filter.ended) {
      // HTTP/1 client codec: an empty non-eos chunk, then the reset (§8.2, UNVERIFIED there)
      const r = this.filter.encodeData(EMPTY, false);
      if (r.kind === "continue" && r.data && r.data.length > 0 && this.ds.kind === "upgrade") this.ds.socket.write(r.data);
    }
    this.finish("upstream_reset_after_response_started{remote_reset}", "upstream");
  }

  protected streamReset(reason: string): void {
    this.finish(reason, "local");
  }

  /** End the stream abnormally: filter reset() → on_log/on_done/on_delete, then close both sides. */
  private finish(reason: string, side: "downstream" | "upstream" | "local"): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    if (this.lifecycle && !this.lifecycle.ended) this.lifecycle.reset(reason);
    this.closeSockets(side);
    this.detach();
  }

  private closeSockets(side: "downstream" | "upstream" | "local"): void {
    if (this.upgraded) {
      this.upgraded = false;
      this.env.stats.gaugeAdd(`http.${this.env.statPrefix}.downstream_cx_upgrades_active`, -1);
      if (this.endpointKey) this.env.upgradeActive(this.endpointKey, -1);
    }
    // flush what was already written (e.g. a close frame), then close; destroy if the peer does not finish
    const soft = (s: net.Socket | undefined) => {
      if (!s || s.destroyed) return;
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    };
    if (this.ds.kind === "upgrade") {
      if (side === "downstream") this.ds.socket.destroy();
      else soft(this.ds.socket);
    } else if (!this.ds.res.writableFinished) {
      this.ds.res.destroy();
    }
    if (this.upSocket) {
      if (side === "upstream") this.upSocket.destroy();
      else soft(this.upSocket);
    }
    this.upstreamReq?.destroy();
  }

  /** The filter reset the stream (close_stream, trap without reply): no further callbacks; drop both sides. */
  protected destroyAll(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    if (this.upgraded) {
      this.upgraded = false;
      this.env.stats.gaugeAdd(`http.${this.env.statPrefix}.downstream_cx_upgrades_active`, -1);
      if (this.endpointKey) this.env.upgradeActive(this.endpointKey, -1);
    }
    if (this.ds.kind === "upgrade") this.ds.socket.destroy();
    else this.ds.res.destroy();
    this.upSocket?.destroy();
    this.upstreamReq?.destroy();
    if (this.lifecycle && !this.lifecycle.ended) this.lifecycle.reset("filter_reset");
    this.detach();
  }

  /** The process was killed (RunningProxy.crash): both sockets destroyed, no filter callback at all (a dead process
   *  runs no on_log/on_done, so the filter releases nothing). */
  kill(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    if (this.ds.kind === "upgrade") this.ds.socket.destroy();
    else this.ds.res.destroy();
    this.upSocket?.destroy();
    this.upstreamReq?.destroy();
    this.detach();
  }

  /** Proxy shutdown. */
  abort(): void {
    this.finish("proxy_shutdown", "local");
    if (this.ds.kind === "upgrade") this.ds.socket.destroy();
    this.upSocket?.destroy();
  }

  protected armIdle(): void {
    const ms = this.routeEntry?.idleTimeoutMs ?? this.env.hcm.streamIdleTimeoutMs;
    if (ms <= 0) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => this.streamReset("stream_idle_timeout"), ms);
      this.idleTimer.unref();
    }
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.responseTimer) clearTimeout(this.responseTimer);
  }
}
