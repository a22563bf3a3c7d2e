// One HTTP/1.1 stream through [wasm filter, router]: the HCM + router part of the loopback proxy.
// Callback order follows envoy-host.md §2.3–§2.5 and §8.2:
//   plain:   decodeHeaders(eos = no body) [→ decodeData(chunk,false)… → decodeData(empty,true)]
//            → encodeHeaders → encodeData(chunk,false)… → encodeData(empty,true) → complete()
//   upgrade: decodeHeaders(eos=0) → encodeHeaders(101, eos=0) → decodeData/encodeData(chunk,false) per socket read
//            → client close: reset(); upstream close: encodeData(empty,false) then reset()
//   router local replies (404 route_not_found, 503 connect failure, 504 timeout) go through encodeHeaders/encodeData.
import http from "node:http";
import type net from "node:net";
import type { FilterStream, HeaderList, StepResult } from "../host/api.ts";
import type { ClusterConfig, HcmConfig, RouteEntry, SocketAddress } from "./bootstrap.ts";
import { finalResponseHeaders, headerValue, responseHead, responseHeadersForFilter, statusOf, upstreamRequestHeaders } from "./headers.ts";
import { lookupFor } from "./lb.ts";
import type { ProxyStats } from "./stats.ts";
import { EMPTY, ProxyStreamBase, type Downstream } from "./stream_base.ts";
import { skipsFilter } from "./matcher.ts";

export interface StreamEnv {
  readonly stats: ProxyStats;
  readonly statPrefix: string;
  readonly hcm: HcmConfig;
  readonly agent: http.Agent;
  route(headers: HeaderList): { vhost: string; route: RouteEntry } | undefined;
  cluster(name: string): ClusterConfig | undefined;
  pickEndpoint(cluster: ClusterConfig): SocketAddress | undefined;
  /** the endpoint's active request count (LEAST_REQUEST's rq_active) */
  requestActive(endpoint: string, delta: number): void;
  upgradeActive(endpoint: string, delta: number): void;
  forget(s: ProxyStream): void;
  nextConnectionId(): number;
}

const CONTINUE: StepResult = { kind: "continue" };

export class ProxyStream extends ProxyStreamBase {
  private pendingRequest?: (headers?: HeaderList) => void;
  private pendingResponse?: (headers?: HeaderList) => void;
  private startedAt = Date.now();

  constructor(env: StreamEnv, ds: Downstream, filter: FilterStream | undefined) {
    super(env, ds, filter);
    if (filter) filter.events = { onAsync: (r, dir) => this.onAsync(r, dir) };
  }

  private activeOn?: string;

  protected detach(): void {
    if (this.activeOn) this.env.requestActive(this.activeOn, -1);
    this.activeOn = undefined;
    this.env.forget(this);
  }

  // ---------------------------------------------------------------- request path

  start(headers: HeaderList, endStream: boolean): void {
    if (this.ds.kind === "upgrade") {
      this.ds.socket.pause();
      this.ds.socket.on("close", () => this.downstreamGone("downstream_remote_disconnect"));
      this.ds.socket.on("error", () => this.downstreamGone("downstream_remote_disconnect"));
    } else {
      this.ds.req.pause();
      this.ds.res.on("close", () => this.downstreamGone("downstream_remote_disconnect"));
    }
    // ExtensionWithMatcher + SkipFilter (matcher.ts): decided on the request headers the filter would see; a skipped
    // filter gets no stream callbacks, only its end (on_context_create lazily in Context::log → on_log/done/delete)
    if (this.filter && skipsFilter(this.env.hcm.wasm?.skipMatcher, headers)) this.filter = undefined;
    const r = this.filter ? this.filter.decodeHeaders(headers, endStream) : CONTINUE;
    this.afterDecodeHeaders(r, headers, endStream);
  }

  private afterDecodeHeaders(r: StepResult, headers: HeaderList, endStream: boolean): void {
    switch (r.kind) {
      case "continue":
        return this.routeAndForward(r.headers ?? headers, endStream);
      case "stop":
        this.pendingRequest = (h) => this.routeAndForward(h ?? headers, endStream);
        return;
      case "localReply":
        return this.writeLocalReply(r.reply);
      case "reset":
        return this.destroyAll();
    }
  }

  private routeAndForward(headers: HeaderList, endStream: boolean): void {
    if (this.finished) return;
    const match = this.env.route(headers);
    if (!match) return this.routerReply(404, "", "route_not_found");
    this.routeEntry = match.route;
    this.lifecycle?.setRoute({ routeName: match.route.name, clusterName: match.route.cluster });
    const cluster = this.env.cluster(match.route.cluster);
    if (!cluster) return this.routerReply(503, "cluster not found", "cluster_not_found");
    const ep = this.env.pickEndpoint(cluster);
    if (!ep) return this.routerReply(503, "no healthy upstream", "no_healthy_upstream");
    this.endpointKey = `${ep.address}:${ep.port}`;
    this.activeOn = this.endpointKey;
    this.env.requestActive(this.endpointKey, 1);
    this.lifecycle?.setUpstream({ address: this.endpointKey, port: ep.port, clusterName: cluster.name });
    this.env.stats.inc(`cluster.${cluster.name}.upstream_rq_total`);
    this.connectUpstream(headers, ep, cluster, endStream);
  }

  private connectUpstream(headers: HeaderList, ep: SocketAddress, cluster: ClusterConfig, endStream: boolean): void {
    const { method, path, flat } = upstreamRequestHeaders(headers);
    let connected = false;
    const req = http.request({
      host: ep.address,
      port: ep.port,
      method,
      path,
      headers: flat as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: this.isUpgrade ? false : this.env.agent,
      lookup: lookupFor(cluster.dnsLookupFamily) as unknown as http.RequestOptions["lookup"],
    });
    this.upstreamReq = req;
    const connectTimer = setTimeout(() => {
      if (!connected) req.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT_CONNECT" }));
    }, cluster.connectTimeoutMs);
    connectTimer.unref();
    req.on("socket", (s) => {
      const ok = () => {
        connected = true;
        clearTimeout(connectTimer);
      };
      if (!s.connecting) ok();
      else s.once("connect", ok);
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (this.finished) return;
      if (this.responseStarted) return this.streamReset("upstream_reset_after_response_started");
      if (!connected) {
        this.env.stats.inc(`cluster.${cluster.name}.upstream_cx_connect_fail`);
        const reason = err.code === "ETIMEDOUT_CONNECT" ? "connection timeout" : "remote connection failure";
        const tfr = err.code === "ECONNREFUSED" ? "delayed connect error: 111" : err.code === "ETIMEDOUT_CONNECT" ? "" : err.message;
        const body = `upstream connect error or disconnect/reset before headers. reset reason: ${reason}` + (tfr ? `, transport failure reason: ${tfr}` : "");
        const details = `upstream_reset_before_response_started{${reason}${tfr ? "|" + tfr : ""}}`.replace(/\s/g, "_");
        return this.routerReply(503, body, details);
      }
      const body = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
      this.routerReply(503, body, "upstream_reset_before_response_started{connection_termination}");
    });
    req.on("upgrade", (res, socket, head) => this.onUpstreamUpgrade(res, socket, head));
    req.on("response", (res) => this.onUpstreamResponse(res));
    if (this.ds.kind === "upgrade" || endStream) {
      req.end();
      this.armResponseTimeout();
      return;
    }
    // plain request with a body: decodeData per chunk, then the HTTP/1 end-of-message empty chunk with eos = 1
    const dreq = this.ds.req;
    dreq.on("data", (chunk: Buffer) => {
      const r = this.filter ? this.filter.decodeData(chunk, false) : CONTINUE;
      this.forwardRequestData(r, chunk);
    });
    dreq.on("end", () => {
      const r = this.filter ? this.filter.decodeData(EMPTY, true) : CONTINUE;
      this.forwardRequestData(r, EMPTY);
      if (!this.finished) req.end();
      this.armResponseTimeout();
    });
    dreq.resume();
  }

  private forwardRequestData(r: StepResult, chunk: Uint8Array): void {
    if (this.finished) return;
    if (r.kind === "continue") {
      const data = r.data ?? chunk;
      if (data.length === 0) return;
      if (this.upSocket) this.upSocket.write(data);
      else this.upstreamReq?.write(data);
    } else if (r.kind === "localReply") {
      if (this.responseStarted) this.streamReset("local_reply_after_response_started");
      else this.writeLocalReply(r.reply);
    } else if (r.kind === "reset") {
      this.destroyAll();
    }
  }

  private armResponseTimeout(): void {
    const t = this.routeEntry?.timeoutMs ?? 0;
    if (this.isUpgrade || t <= 0 || this.finished) return;
    this.responseTimer = setTimeout(() => {
      if (this.finished) return;
      if (!this.responseStarted) {
        this.upstreamReq?.destroy();
        this.routerReply(504, "upstream request timeout", "upstream_response_timeout");
      } else this.streamReset("upstream_response_timeout");
    }, t);
    this.responseTimer.unref();
  }

  // ---------------------------------------------------------------- response path

  private onUpstreamUpgrade(res: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    if (this.finished || this.ds.kind !== "upgrade") {
      socket.destroy();
      return;
    }
    this.upSocket = socket;
    socket.on("error", () => this.upstreamGone());
    socket.on("close", () => this.upstreamGone());
    socket.pause();
    const headers = responseHeadersForFilter(res.statusCode ?? 101, res.rawHeaders, Date.now() - this.startedAt);
    const r = this.filter ? this.filter.encodeHeaders(headers, false, "via_upstream") : CONTINUE;
    const go = (h: HeaderList) => {
      if (this.finished || this.ds.kind !== "upgrade") return;
      const out = finalResponseHeaders(h, true);
      this.responseStarted = true;
      this.ds.socket.write(responseHead(statusOf(h, 101), "Switching Protocols", out));
      this.upgraded = true;
      this.env.stats.inc(`http.${this.env.statPrefix}.downstream_cx_upgrades_total`);
      this.env.stats.gaugeAdd(`http.${this.env.statPrefix}.downstream_cx_upgrades_active`, 1);
      if (this.endpointKey) this.env.upgradeActive(this.endpointKey, 1);
      this.pipeUpgraded(head);
    };
    this.afterEncodeHeaders(r, headers, go);
  }

  private pipeUpgraded(upHead: Buffer): void {
    if (this.ds.kind !== "upgrade" || !this.upSocket) return;
    const down = this.ds.socket;
    const up = this.upSocket;
    this.armIdle();
    const fromClient = (chunk: Uint8Array) => {
      if (this.finished) return;
      this.armIdle();
      const r = this.filter ? this.filter.decodeData(chunk, false) : CONTINUE;
      this.forwardRequestData(r, chunk);
    };
    const fromUpstream = (chunk: Uint8Array) => {
      if (this.finished) return;
      this.armIdle();
      const r = this.filter ? this.filter.encodeData(chunk, false) : CONTINUE;
      this.forwardResponseData(r, chunk);
    };
    if (this.ds.head.length > 0) fromClient(this.ds.head);
    if (upHead.length > 0) fromUpstream(upHead);
    down.on("data", fromClient);
    up.on("data", fromUpstream);
    down.on("end", () => this.downstreamGone("downstream_remote_disconnect"));
    up.on("end", () => this.upstreamGone());
    down.resume();
    up.resume();
  }

  private forwardResponseData(r: StepResult, chunk: Uint8Array): void {
    if (this.finished) return;
    if (r.kind === "continue") {
      const data = r.data ?? chunk;
      if (data.length === 0) return;
      if (this.ds.kind === "upgrade") this.ds.socket.write(data);
      else this.ds.res.write(data);
    } else if (r.kind === "localReply" || r.kind === "reset") {
      this.streamReset(r.kind === "reset" ? r.details : "local_reply_after_response_started");
    }
  }

  private onUpstreamResponse(res: http.IncomingMessage): void {
    if (this.finished) {
      res.destroy();
      return;
    }
    if (this.responseTimer) clearTimeout(this.responseTimer);
    const status = res.statusCode ?? 502;
    const headers = responseHeadersForFilter(status, res.rawHeaders, Date.now() - this.startedAt);
    const method = this.ds.req.method ?? "GET";
    const bodyless = method === "HEAD" || status === 204 || status === 304 || headerValue(headers, "content-length") === "0";
    res.pause();
    const r = this.filter ? this.filter.encodeHeaders(headers, bodyless, "via_upstream") : CONTINUE;
    const go = (h: HeaderList) => {
      if (this.finished) return;
      this.writeHead(statusOf(h, status), finalResponseHeaders(h, false));
      if (bodyless) {
        this.upstreamDone = true;
        this.endResponse();
        res.resume();
        return;
      }
      res.on("data", (chunk: Buffer) => {
        const d = this.filter ? this.filter.encodeData(chunk, false) : CONTINUE;
        this.forwardResponseData(d, chunk);
      });
      res.on("end", () => {
        this.upstreamDone = true;
        const d = this.filter ? this.filter.encodeData(EMPTY, true) : CONTINUE;
        if (d.kind === "continue" && d.data && d.data.length > 0) this.forwardResponseData(d, EMPTY);
        if (d.kind === "continue") this.endResponse();
        else this.forwardResponseData(d, EMPTY);
      });
      res.on("error", () => this.streamReset("upstream_reset_after_response_started"));
      res.resume();
    };
    this.afterEncodeHeaders(r, headers, go);
  }

  private afterEncodeHeaders(r: StepResult, headers: HeaderList, go: (h: HeaderList) => void): void {
    switch (r.kind) {
      case "continue":
        return go(r.headers ?? headers);
      case "stop":
        this.pendingResponse = (h) => go(h ?? headers);
        return;
      case "localReply":
        // from on_response_headers: sent directly, the upstream response is discarded (§7.3)
        return this.writeLocalReply(r.reply);
      case "reset":
        return this.destroyAll();
    }
  }

  /** The router's own local reply, through the encoder path of the filter (§2.5 C/E). */
  private routerReply(status: number, body: string, details: string): void {
    if (this.finished) return;
    const bodyBytes = Buffer.from(body, "utf8");
    const headers: HeaderList = [[":status", String(status)]];
    if (bodyBytes.length > 0) headers.push(["content-length", String(bodyBytes.length)], ["content-type", "text/plain"]);
    const r = this.filter ? this.filter.encodeHeaders(headers, bodyBytes.length === 0, details) : CONTINUE;
    const go = (h: HeaderList) => {
      if (this.finished) return;
      this.writeHead(statusOf(h, status), finalResponseHeaders(h, false), this.isUpgrade);
      if (bodyBytes.length > 0) {
        const d = this.filter ? this.filter.encodeData(bodyBytes, true) : CONTINUE;
        if (d.kind !== "continue") return this.forwardResponseData(d, bodyBytes);
        this.writeBody(d.data ?? bodyBytes);
      }
      this.endResponse();
    };
    this.afterEncodeHeaders(r, headers, go);
  }


  // ---------------------------------------------------------------- events raised by the host

  private onAsync(r: StepResult, dir: "request" | "response"): void {
    if (this.finished) return;
    if (r.kind === "continue") {
      if (dir === "request" && this.pendingRequest) {
        const p = this.pendingRequest;
        this.pendingRequest = undefined;
        return p(r.headers);
      }
      if (dir === "response" && this.pendingResponse) {
        const p = this.pendingResponse;
        this.pendingResponse = undefined;
        return p(r.headers);
      }
      if (r.data) return dir === "request" ? this.forwardRequestData(r, EMPTY) : this.forwardResponseData(r, EMPTY);
      return;
    }
    if (r.kind === "localReply") {
      if (!this.responseStarted) {
        this.upstreamReq?.destroy();
        this.upSocket?.destroy();
        return this.writeLocalReply(r.reply);
      }
      return this.destroyAll();
    }
    if (r.kind === "reset") return this.destroyAll();
  }
}
