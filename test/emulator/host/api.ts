// Contract between the proxy-wasm host emulator (test/emulator/host/) and its users: the Envoy-like proxy
// (test/emulator/proxy/), the filter tests (test/filter/), benchmarks (bench/) and the demo.
// Types only. The host implements them following the Envoy host specification (docs/emulator-checklist.md lists its rules); section numbers (§) refer to it.

export type EnvoyVersion = "1.30" | "1.31" | "1.32" | "1.33" | "1.34" | "1.35" | "1.36";
export type FailurePolicy = "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "critical";

/** Header list in Envoy's order; names lower-case; pseudo-headers first (§2.8). */
export type HeaderList = Array<[string, string]>;

export interface Clock {
  /** wall clock, ms since the epoch (may be virtual) */
  nowMs(): number;
}

export interface ProcessOptions {
  envoyVersion?: EnvoyVersion;           // default "1.36"
  concurrency?: number;                  // worker VMs, default 2 (Istio's default)
  node?: { id?: string; cluster?: string; metadata?: Record<string, unknown> }; // xds.node (§6.3)
  statsTags?: Array<{ tagName: string; regex: string }>; // bootstrap stats_config.stats_tags (§5.3)
  useAllDefaultTags?: boolean;           // default true
  clock?: Clock;                         // default: real time
  /** true: ticks are driven by advance(ms) on the virtual clock; false: real timers (proxy mode). default true */
  virtualTime?: boolean;
  logLevel?: LogLevel;                   // level of Envoy's `wasm` logger; default "info"
  onLog?: (e: LogEntry) => void;
  /** added: logs keeps at most this many entries (oldest dropped); default 10000 */
  maxLogEntries?: number;
  /** added: randomness for FAIL_RELOAD backoff jitter (JitteredLowerBound); default Math.random */
  random?: () => number;
  /** added (§13.1): "fail" (default) makes close()/assertNoDefects() throw HostDefectError when a module defect was
   *  recorded; "record" only records them (defects list, error log entry) */
  defects?: "fail" | "record";
  /** added (fleet groundwork): the Envoy clusters proxy_http_call can name, as the bootstrap's
   *  static_resources.clusters would give them (the loopback proxy registers its bootstrap clusters itself, with
   *  clusterOverrides applied). A name not here → BadArgument (Context::httpCall getThreadLocalCluster) */
  clusters?: Record<string, HttpCallCluster>;
}

/** An Envoy cluster as proxy_http_call reaches it: endpoints (IP or hostname), real HTTP/1.1 over the network. */
export interface HttpCallCluster {
  endpoints: Array<{ host: string; port: number }>;
  /** cluster connect_timeout; default 5000 ms */
  connectTimeoutMs?: number;
}

/** A module behaviour Envoy does not survive (§13.1): recorded instead of silently emulated. */
export interface HostDefect {
  kind: "continue_after_close_stream" | "continue_after_local_reply";
  /** the export that returned Continue, e.g. "proxy_on_request_body" */
  callback: string;
  returned: number;
  contextId: number;
  vm: string;
  message: string;
}

/** Thrown by close()/assertNoDefects() when the module had a defect (ProcessOptions.defects "fail"). */
export class HostDefectError extends Error {
  constructor(readonly defects: HostDefect[]) {
    super(`proxy-wasm module defect(s) Envoy would not survive (envoy-host.md §13.1):\n  ` +
      defects.map((d) => d.message).join("\n  "));
    this.name = "HostDefectError";
  }
}

export interface PluginOptions {
  wasm: Uint8Array;
  name?: string;                  // PluginConfig.name, default "ws_governor"
  rootId?: string;                // PluginConfig.root_id, default "ws_governor"
  vmId?: string;                  // vm_config.vm_id, default "" (as Istio)
  runtime?: string;               // default "envoy.wasm.runtime.v8"
  configuration?: string | Uint8Array;   // PLUGIN_CONFIGURATION (buffer 7)
  vmConfiguration?: string | Uint8Array; // VM_CONFIGURATION (buffer 6)
  failurePolicy?: FailurePolicy;  // 1.33+; default FAIL_CLOSED
  failOpen?: boolean;             // deprecated field; both set = config error (§3.3)
  reloadBackoffMs?: number;       // reload_config.backoff.base_interval, default 1000
  allowOnHeadersStopIteration?: boolean; // 1.35+
  environment?: Record<string, string>;  // vm_config.environment_variables.key_values
}

export interface LogEntry {
  level: LogLevel;
  message: string;       // the text the module logged
  line: string;          // as Envoy would print it: "wasm log <prefix>: <message>"
  vm: string;            // "canary" | "main" | "worker-<i>"
  contextId: number;
}

export interface LocalReply {
  status: number;
  headers: HeaderList;   // final headers the client receives (after Envoy's content-length/type rules, §7.4)
  body: Uint8Array;
  details: string;       // response code details (whitespace → "_")
}

/** Outcome of one decoder/encoder step, after every after-VM-call action ran. */
export type StepResult =
  | { kind: "continue"; headers?: HeaderList; data?: Uint8Array } // forward (possibly modified) headers/data
  | { kind: "stop" }                                              // paused / buffering: forward nothing now
  | { kind: "localReply"; reply: LocalReply }                     // send this to the client; stream then ends
  | { kind: "reset"; details: string };                           // reset the stream (close_stream, trap w/o reply…)

export interface DownstreamConnection {
  id: number;                    // connection.id
  /** "ip:port": the stream's remote address after the HCM's XFF logic (source.address, §13.2); port 0 when the
   *  address came from x-forwarded-for */
  sourceAddress: string;
  destinationAddress: string;    // "ip:port"
  protocol: "HTTP/1.1" | "HTTP/2";
  /** added (§13.2): the downstream TLS session; absent on plaintext connections */
  tls?: DownstreamTls;
}

/** Envoy's Ssl::ConnectionInfo as the connection.* properties expose it (§13.2) */
export interface DownstreamTls {
  version: string;                   // connection.tls_version, e.g. "TLSv1.3"
  peerCertificatePresented: boolean; // connection.mtls
  subjectPeer: string;               // RFC 2253; "" without a client certificate
  uriSanPeer: string[];              // connection.uri_san_peer_certificate = the first (NotFound if none)
  dnsSanPeer: string[];
  subjectLocal: string;
  uriSanLocal: string[];
  dnsSanLocal: string[];
  sha256PeerDigest: string;          // lower-case hex; "" without a client certificate
  sni: string;                       // connection.requested_server_name
}

/** Events the host raises outside a call from the proxy (e.g. close_stream or a local reply from on_tick via
 *  proxy_set_effective_context, §9; or a continue_stream after a pause). */
export interface StreamEvents {
  onAsync?(r: StepResult, direction: "request" | "response"): void;
}

/** One HTTP stream through [wasm filter, router]. The proxy is the HCM, codec and router; this is the filter manager
 *  part for the wasm filter. Methods must be called in an order Envoy could produce; the host enforces §2.3–§2.7. */
export interface FilterStream {
  readonly contextId: number;
  readonly worker: number;
  events: StreamEvents;
  /** properties the proxy learns as the stream progresses (§6.3 availability is enforced by the host) */
  setUpstream(info: { address: string; port?: number; clusterName?: string }): void;
  setRoute(info: { routeName?: string; clusterName?: string }): void;
  decodeHeaders(headers: HeaderList, endStream: boolean): StepResult;
  decodeData(data: Uint8Array, endStream: boolean): StepResult;
  /** upstream or router-generated response headers (router local replies such as 503 connect failure go here too) */
  encodeHeaders(headers: HeaderList, endStream: boolean, details?: string): StepResult;
  encodeData(data: Uint8Array, endStream: boolean): StepResult;
  /** the stream finished normally (both directions complete) → on_log, on_done, on_delete */
  complete(): void;
  /** downstream or upstream reset / connection close → on_log, on_done, on_delete */
  reset(reason: string): void;
  readonly ended: boolean;
  // ---- added (host conventions) ----
  // * after a `localReply` result the proxy writes the reply and then calls complete() (on_log/on_done/on_delete
  //   run then, as in Envoy once the reply is sent); after a `reset` result the host has already run them.
  // * LocalReply.headers starts with ":status" (Envoy's header map); the proxy skips pseudo-headers on the wire.
  /** request/response trailers (§2.3); the filter may modify them */
  decodeTrailers?(trailers: HeaderList): StepResult;
  encodeTrailers?(trailers: HeaderList): StepResult;
  /** dynamic metadata as another filter sets it: property metadata.filter_metadata.<ns>.<key> (§6.3) */
  setDynamicMetadata?(ns: string, obj: Record<string, unknown>): void;
  /** true when Envoy would hold the stream without answering (1.30–1.34 fail-closed, §2.5 F) */
  readonly hung?: boolean;
  /** number of request-header mutations/clear_route_cache calls (each clears Envoy's route cache) */
  readonly routeCacheClears?: number;
}

export interface StatsView {
  /** value of a stat by its full name, e.g. "wasmcustom.ws_governor.accepted_total"; undefined if not defined */
  get(name: string): number | undefined;
  /** histogram samples recorded so far */
  samples(name: string): number[] | undefined;
  renderText(): string;        // admin /stats
  renderPrometheus(): string;  // admin /stats/prometheus
}

export interface SharedDataView {
  get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined;
  keys(vmId: string): string[];
  /** test hook: called inside proxy_set_shared_data before the cas comparison; may mutate the store (e.g. another
   *  VM's write) to force a CasMismatch or a chosen interleaving. Return value ignored. */
  beforeSet?: (vmId: string, key: string, vm: string) => void;
  /** test hook: called after proxy_get_shared_data returned to the guest */
  afterGet?: (vmId: string, key: string, vm: string) => void;
}

export interface HostCallCounts {
  /** per import name, per VM instance since the last reset */
  get(name: string): number;
  all(): Record<string, number>;
  reset(): void;
}

export interface PluginHandle {
  readonly name: string;
  readonly workers: number;
  /** new HTTP stream on worker `worker` (the proxy picks the worker per downstream connection) */
  newStream(worker: number, conn: DownstreamConnection): FilterStream;
  /** true once that worker's VM trapped (§3.3) and was not reloaded */
  vmFailed(worker: number): boolean;
  /** test hook: the next hostcall made by that worker's VM traps, as a guest `unreachable` would */
  trapOnNextHostCall(worker: number): void;
  hostCalls(worker: number): HostCallCounts;
  /** linear memory size of that worker's VM instance, bytes */
  memoryBytes(worker: number): number;
  /** plugin removal: on_done / on_delete on every root context (§2.4) */
  remove(): void;
}

/** Thrown by addPlugin when Envoy would reject the configuration (load/link failure, on_vm_start/on_configure false in
 *  the canary, both fail_open and failure_policy set). `message` is Envoy's text where the reference gives it. */
export class PluginLoadError extends Error {}

export interface EnvoyProcessApi {
  addPlugin(p: PluginOptions): PluginHandle;
  readonly stats: StatsView;
  readonly sharedData: SharedDataView;
  readonly logs: LogEntry[];
  /** virtual time only: move the clock by ms and deliver every tick that falls due, per VM (§3.4) */
  advance(ms: number): void;
  /** stop real timers; then throws HostDefectError if a module defect was recorded (ProcessOptions.defects) */
  close(): void;
  /** added (§13.1): defects recorded so far */
  readonly defects?: readonly HostDefect[];
  /** added (§13.1): throws HostDefectError if any defect was recorded */
  assertNoDefects?(): void;
  /** added (§13.4): step the wall clock (proxy_get_current_time_nanoseconds, WASI realtime) by ms, forward or
   *  backward; ticks and monotonic time are not affected */
  stepWallClock?(ms: number): void;
  /** added (fleet groundwork): define or replace a cluster proxy_http_call can name */
  setCluster?(name: string, cluster: HttpCallCluster): void;
  /** added: resolves once no proxy_http_call is outstanding (every response, timeout or failure was delivered, or the
   *  call was cancelled) */
  httpCallsIdle?(): Promise<void>;
  /** added: number of outstanding proxy_http_call requests */
  readonly pendingHttpCalls?: number;
}
