// proxy_http_call as Envoy 1.30–1.36 runs it: Context::httpCall hands the request to the cluster's Http::AsyncClient,
// whose router sends it upstream; the answer comes back through Context::onHttpCallSuccess / onHttpCallFailure
// (envoy source/extensions/common/wasm/context.cc, source/common/http/async_client_impl.cc,
// source/common/router/router.cc). This module makes REAL HTTP/1.1 requests to the cluster's endpoints (loopback in
// the tests) and delivers proxy_on_http_call_response on the root context that made the call.
//
// What the module sees (docs/emulator-checklist.md "Fleet groundwork: HTTP calls"):
//   * a complete response, whatever its status (a 5xx too): (root, token, n headers incl. :status, body bytes, n trailers)
//   * the router's own local replies are complete responses as well (AsyncStreamImpl encodes them like upstream
//     answers): connect failure → 503 "upstream connect error or disconnect/reset before headers. …", timeout before
//     the response headers → 504 "upstream request timeout"
//   * a reset once the response headers arrived (upstream closes mid-body, timeout after the headers) →
//     onFailure(Reset): (root, token, 0, 0, 0), proxy_get_status = 11 (BrokenConnection) "reset" inside the callback
import http from "node:http";
import type { HeaderList, HttpCallCluster } from "./api.ts";
import { RESPONSE_INLINE, mergedPairs } from "./header_merge.ts";
import type { Ctx } from "./types.ts";
import type { Vm } from "./vm.ts";

export interface HttpCallResponse {
  headers: HeaderList;
  body: Uint8Array;
  /** null: the response had no trailers (Envoy's ResponseMessage::trailers() is nullptr → map 7 unavailable) */
  trailers: HeaderList | null;
}

interface Pending {
  vm: Vm;
  root: Ctx;
  token: number;
  req: http.ClientRequest | null;
  timers: NodeJS.Timeout[];
  done: boolean;
}

interface ClusterRt {
  endpoints: Array<{ host: string; port: number }>;
  connectTimeoutMs: number;
  rr: number;
}

const text = (s: string) => Buffer.from(s, "latin1");
const CONNECT_ERROR = "upstream connect error or disconnect/reset before headers. ";

/** Http::Utility::sendLocalReply as the router produces it for the async client: :status, content-length,
 *  content-type text/plain (no date/server: those are the HCM's, and the async client has no HCM) */
function routerReply(code: number, body: string): HttpCallResponse {
  const b = text(body);
  const headers: HeaderList = [[":status", String(code)]];
  if (b.length > 0) headers.push(["content-length", String(b.length)], ["content-type", "text/plain"]);
  return { headers, body: b, trailers: null };
}

export class HttpCallClient {
  private readonly clusters = new Map<string, ClusterRt>();
  private readonly pending = new Set<Pending>();
  private waiters: Array<() => void> = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private closed = false;

  constructor(clusters: Record<string, HttpCallCluster> = {}) {
    for (const [name, c] of Object.entries(clusters)) this.setCluster(name, c);
  }

  setCluster(name: string, c: HttpCallCluster): void {
    this.clusters.set(name, { endpoints: c.endpoints.map((e) => ({ ...e })), connectTimeoutMs: c.connectTimeoutMs ?? 5000, rr: 0 });
  }
  /** ClusterManager::getThreadLocalCluster(name) != nullptr */
  hasCluster(name: string): boolean {
    return this.clusters.has(name);
  }
  get size(): number {
    return this.pending.size;
  }
  idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** AsyncClient::send. false: the request completed inside send() (no endpoint: the router's inline 503 "no
   *  healthy upstream"); Envoy then returns nullptr, httpCall answers InternalFailure and the deferred onSuccess finds
   *  no handler, so the module gets no callback. */
  send(vm: Vm, root: Ctx, cluster: string, headers: HeaderList, body: Uint8Array, timeoutMs: number, token: number): boolean {
    const c = this.clusters.get(cluster);
    if (!c || c.endpoints.length === 0 || this.closed) return false;
    const ep = c.endpoints[c.rr++ % c.endpoints.length];
    const p: Pending = { vm, root, token, req: null, timers: [], done: false };
    this.pending.add(p);

    // HTTP/1 request encoder: request line from :method/:path, :authority as host, other pseudo-headers dropped.
    // AsyncStreamImpl::sendHeaders adds x-envoy-internal: true; the router (suppress_envoy_headers false in the async
    // client's router config) adds x-envoy-expected-rq-timeout-ms when there is a timeout (FilterUtility::finalTimeout).
    const get = (k: string) => headers.find(([n]) => n === k)?.[1];
    const flat: string[] = ["host", get(":authority") ?? ""];
    for (const [k, v] of headers) if (!k.startsWith(":") && k !== "host") flat.push(k, v);
    flat.push("x-envoy-internal", "true");
    if (timeoutMs > 0) flat.push("x-envoy-expected-rq-timeout-ms", String(timeoutMs));
    const sentAt = performance.now();
    let connected = false;
    let gotHeaders = false;
    const req = http.request({
      host: ep.host, port: ep.port, method: get(":method"), path: get(":path"),
      headers: flat as unknown as http.OutgoingHttpHeaders, setHost: false, agent: this.agent,
    });
    p.req = req;
    const timer = (ms: number, f: () => void) => {
      const t = setTimeout(f, ms);
      t.unref();
      p.timers.push(t);
    };
    timer(c.connectTimeoutMs, () => {
      if (!connected) req.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT_CONNECT" }));
    });
    req.on("socket", (s) => {
      if (!s.connecting) connected = true;
      else s.once("connect", () => { connected = true; });
    });
    if (timeoutMs > 0) {
      // Router::onResponseTimeout: before the response headers → local reply 504; after them the async stream is
      // reset (AsyncStreamImpl::sendLocalReply once encoded_response_headers_) → onFailure(Reset)
      timer(timeoutMs, () => {
        if (p.done) return;
        req.destroy();
        this.deliver(p, gotHeaders ? null : routerReply(504, "upstream request timeout"));
      });
    }
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (p.done) return;
      if (gotHeaders) return this.deliver(p, null);
      if (!connected) {
        // Router::onUpstreamReset before a connection: 503 with the reset reason (same text as the loopback proxy's
        // router; the transport failure reason text for ECONNREFUSED is UNVERIFIED, envoy-host.md §12)
        const reason = err.code === "ETIMEDOUT_CONNECT" ? "connection timeout" : "remote connection failure";
        const tfr = err.code === "ECONNREFUSED" ? "delayed connect error: 111" : err.code === "ETIMEDOUT_CONNECT" ? "" : err.message;
        return this.deliver(p, routerReply(503, `${CONNECT_ERROR}reset reason: ${reason}` + (tfr ? `, transport failure reason: ${tfr}` : "")));
      }
      this.deliver(p, routerReply(503, `${CONNECT_ERROR}reset reason: connection termination`));
    });
    req.on("response", (res) => {
      gotHeaders = true;
      const serviceMs = Math.max(0, Math.round(performance.now() - sentAt));
      // the HTTP/1 client codec's map (inline headers merged, §13.3) + Router::onUpstreamHeaders' service time
      const hdrs: HeaderList = [[":status", String(res.statusCode ?? 0)], ...mergedPairs(res.rawHeaders, RESPONSE_INLINE),
        ["x-envoy-upstream-service-time", String(serviceMs)]];
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        if (p.done) return;
        const tr: HeaderList = [];
        for (let i = 0; i + 1 < res.rawTrailers.length; i += 2) tr.push([res.rawTrailers[i].toLowerCase(), res.rawTrailers[i + 1]]);
        this.deliver(p, { headers: hdrs, body: new Uint8Array(Buffer.concat(chunks)), trailers: tr.length ? tr : null });
      });
      res.on("error", () => { if (!p.done) this.deliver(p, null); });
      res.on("close", () => {
        if (!res.complete && !p.done) this.deliver(p, null); // reset after the headers → onFailure(Reset)
      });
    });
    req.end(body.length > 0 ? Buffer.from(body) : undefined); // request trailers are not sent (AsyncRequestImpl::initialize TODO)
    return true;
  }

  /** Context::onHttpCallSuccess (response) / onHttpCallFailure (null) on the root context that made the call */
  private deliver(p: Pending, resp: HttpCallResponse | null): void {
    if (p.done) return;
    p.done = true;
    for (const t of p.timers) clearTimeout(t);
    this.pending.delete(p);
    try {
      const { vm, root } = p;
      // ~Context cancels outstanding requests (no callback); a failed VM gets no callback (ContextBase::isFailed)
      if (vm.failed || vm.destroyed || vm.contexts.get(root.id) !== root || !vm.fn("proxy_on_http_call_response")) return;
      if (resp) {
        root.httpCallResponse = resp;
        // queued before the callback runs, so the response is gone before actions the module queued (continue_stream)
        vm.addAfter(() => { root.httpCallResponse = null; });
        vm.call("proxy_on_http_call_response", root, root.id, p.token, resp.headers.length, resp.body.length,
          resp.trailers?.length ?? 0);
      } else {
        root.statusCode = 11; // BrokenConnection; stays for later calls (only the message is reset)
        root.statusMessage = "reset";
        vm.addAfter(() => { root.statusMessage = ""; });
        vm.call("proxy_on_http_call_response", root, root.id, p.token, 0, 0, 0);
      }
    } finally {
      this.checkIdle();
    }
  }

  /** requests of a root context that went away (on_delete), or of a whole VM (destroyed): cancelled, no callback */
  cancelFor(vm: Vm, root?: Ctx): void {
    for (const p of [...this.pending]) {
      if (p.vm !== vm || (root && p.root !== root)) continue;
      p.done = true;
      for (const t of p.timers) clearTimeout(t);
      this.pending.delete(p);
      p.req?.destroy();
    }
    this.checkIdle();
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.pending]) this.cancelFor(p.vm);
    this.agent.destroy();
  }

  private checkIdle(): void {
    if (this.pending.size > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
