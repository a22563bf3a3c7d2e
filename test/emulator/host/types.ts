// Internal types shared by the host modules.
import type { FailurePolicy, HostDefect, LogEntry, LogLevel } from "./api.ts";
import type { SharedDataStore } from "./shared_data.ts";
import type { StatsStore } from "./stats.ts";
import type { ParsedModule } from "./wasm_parse.ts";
import type { StreamImpl } from "./stream.ts";
import type { TickScheduler } from "./timers.ts";
import type { HttpCallClient, HttpCallResponse } from "./http_call.ts";

export type Abi = "0.1.0" | "0.2.0" | "0.2.1";

export const LEVELS: LogLevel[] = ["trace", "debug", "info", "warn", "error", "critical"];

export interface CompiledCode {
  bytes: Uint8Array;
  module: WebAssembly.Module;
  parsed: ParsedModule;
  abi: Abi;
  allocator: "malloc" | "proxy_on_memory_allocate";
}

export interface NodeInfo { id?: string; cluster?: string; metadata?: Record<string, unknown> }

/** What a VM needs from the process. */
export interface ProcessCore {
  readonly minor: number; // Envoy 1.<minor>
  readonly logLevel: number;
  readonly sharedData: SharedDataStore;
  readonly stats: StatsStore;
  readonly timers: TickScheduler;
  readonly node: NodeInfo;
  /** wall clock, ms (§13.4) */
  nowMs(): number;
  /** steady clock, ms (timers, backoff) */
  monoMs(): number;
  monoNs(): bigint;
  emitLog(e: LogEntry): void;
  recordDefect(d: HostDefect): void;
  /** proxy_http_call: clusters and outstanding requests (http_call.ts) */
  readonly httpCalls: HttpCallClient;
}

/** One filter config ("plugin") as the host keeps it. */
export interface PluginRt {
  name: string;
  rootId: string;
  vmId: string;
  configuration: Uint8Array;
  key: string;
  failOpenField: boolean;
  policy: FailurePolicy;
  allowStop: boolean;
  reloadBackoffMs: number;
}

export type CtxKind = "vm" | "root" | "stream";

export class Ctx {
  created = false;
  /** root contexts: which start-up callback runs (buffer 7 availability, §2.2) */
  phase: "" | "create" | "vm_start" | "configure" = "";
  stream: StreamImpl | null = null;
  /** root: on_done returned false during shutdown, waiting for proxy_done() */
  awaitingDone = false;
  /** root: the response being delivered to proxy_on_http_call_response (buffer 4, maps 6/7); null outside it
   *  (Envoy's Context::http_call_response_) */
  httpCallResponse: HttpCallResponse | null = null;
  /** root: proxy_get_status (Context::status_code_ / status_message_) */
  statusCode = 0;
  statusMessage = "";
  readonly logPrefix: string;
  constructor(readonly id: number, readonly kind: CtxKind, readonly plugin: PluginRt | null,
              public root: Ctx | null, vmId: string) {
    const parts = kind === "stream" ? [plugin!.name, plugin!.rootId, vmId]
      : [plugin ? plugin.rootId : "", vmId];
    this.logPrefix = parts.filter((p) => p !== "").map((p) => " " + p).join("");
  }
}
