// A scripted stand-in for the host emulator's PluginHandle: records every call the proxy makes and answers with
// StepResults chosen by the test. Lets the proxy's plumbing be tested without the host or the filter.
import type {
  DownstreamConnection, FilterStream, HeaderList, HostCallCounts, PluginHandle, StepResult, StreamEvents,
} from "../host/api.ts";

export type FakeCall =
  | { op: "decodeHeaders"; headers: HeaderList; endStream: boolean }
  | { op: "decodeData"; data: Uint8Array; endStream: boolean }
  | { op: "encodeHeaders"; headers: HeaderList; endStream: boolean; details?: string }
  | { op: "encodeData"; data: Uint8Array; endStream: boolean }
  | { op: "setUpstream"; address: string }
  | { op: "setRoute"; clusterName?: string; routeName?: string }
  | { op: "complete" }
  | { op: "reset"; reason: string };

export interface FakeScript {
  decodeHeaders?(h: HeaderList, eos: boolean, s: FakeStream): StepResult;
  decodeData?(d: Uint8Array, eos: boolean, s: FakeStream): StepResult;
  encodeHeaders?(h: HeaderList, eos: boolean, s: FakeStream): StepResult;
  encodeData?(d: Uint8Array, eos: boolean, s: FakeStream): StepResult;
}

const OK: StepResult = { kind: "continue" };

export class FakeStream implements FilterStream {
  readonly calls: FakeCall[] = [];
  events: StreamEvents = {};
  ended = false;
  constructor(
    readonly contextId: number,
    readonly worker: number,
    readonly conn: DownstreamConnection,
    private readonly script: FakeScript,
  ) {}
  private check(op: string): void {
    if (this.ended) throw new Error(`${op} after the stream ended`);
  }
  setUpstream(info: { address: string }): void {
    this.calls.push({ op: "setUpstream", address: info.address });
  }
  setRoute(info: { clusterName?: string; routeName?: string }): void {
    this.calls.push({ op: "setRoute", clusterName: info.clusterName, routeName: info.routeName });
  }
  decodeHeaders(headers: HeaderList, endStream: boolean): StepResult {
    this.check("decodeHeaders");
    this.calls.push({ op: "decodeHeaders", headers, endStream });
    const r = this.script.decodeHeaders?.(headers, endStream, this) ?? OK;
    if (r.kind === "localReply" || r.kind === "reset") this.ended = true;
    return r;
  }
  decodeData(data: Uint8Array, endStream: boolean): StepResult {
    this.check("decodeData");
    this.calls.push({ op: "decodeData", data: Uint8Array.from(data), endStream });
    return this.script.decodeData?.(data, endStream, this) ?? OK;
  }
  encodeHeaders(headers: HeaderList, endStream: boolean, details?: string): StepResult {
    this.check("encodeHeaders");
    this.calls.push({ op: "encodeHeaders", headers, endStream, details });
    return this.script.encodeHeaders?.(headers, endStream, this) ?? OK;
  }
  encodeData(data: Uint8Array, endStream: boolean): StepResult {
    this.check("encodeData");
    this.calls.push({ op: "encodeData", data: Uint8Array.from(data), endStream });
    return this.script.encodeData?.(data, endStream, this) ?? OK;
  }
  complete(): void {
    this.check("complete");
    this.calls.push({ op: "complete" });
    this.ended = true;
  }
  reset(reason: string): void {
    this.check("reset");
    this.calls.push({ op: "reset", reason });
    this.ended = true;
  }
  ops(): string[] {
    return this.calls.map((c) => c.op + ("endStream" in c ? `(${c.endStream ? 1 : 0})` : ""));
  }
}

export class FakePlugin implements PluginHandle {
  readonly name = "fake";
  readonly streams: FakeStream[] = [];
  private nextId = 2;
  constructor(readonly workers: number, public script: FakeScript = {}) {}
  newStream(worker: number, conn: DownstreamConnection): FilterStream {
    const s = new FakeStream(this.nextId++, worker, conn, this.script);
    this.streams.push(s);
    return s;
  }
  vmFailed(): boolean {
    return false;
  }
  trapOnNextHostCall(): void {}
  hostCalls(): HostCallCounts {
    return { get: () => 0, all: () => ({}), reset: () => {} };
  }
  memoryBytes(): number {
    return 0;
  }
  remove(): void {}
}
