// One Envoy process (§2.2, §3): per vm_key a base VM, a configuration canary per plugin key, a main-thread VM and N
// worker VMs; process-global shared data and stats; failure policies and FAIL_RELOAD (§3.3); ticks (§3.4).
import { createHash } from "node:crypto";
import {
  HostDefectError, PluginLoadError, type DownstreamConnection, type HostDefect, type EnvoyProcessApi, type FilterStream, type HostCallCounts,
  type HttpCallCluster, type LogEntry, type PluginHandle, type PluginOptions, type ProcessOptions,
} from "./api.ts";
import { HttpCallClient } from "./http_call.ts";
import { exportCheck, linkCheck } from "./imports/index.ts";
import { SharedDataStore } from "./shared_data.ts";
import { StatsStore } from "./stats.ts";
import { StreamImpl } from "./stream.ts";
import { TickScheduler } from "./timers.ts";
import { Ctx, LEVELS, type Abi, type CompiledCode, type NodeInfo, type PluginRt, type ProcessCore } from "./types.ts";
import { Vm, type VmGroupLike } from "./vm.ts";
import { parseModule } from "./wasm_parse.ts";

const toBytes = (x: string | Uint8Array | undefined): Uint8Array =>
  x === undefined ? new Uint8Array(0) : typeof x === "string" ? Buffer.from(x, "utf8") : x;

class VmGroup implements VmGroupLike {
  base!: Vm;
  main: Vm | null = null;
  workers: Vm[] = [];
  canaried = new Set<string>();
  plugins = new Set<PluginRt>();
  constructor(readonly key: string, readonly vmId: string, readonly vmConfiguration: Uint8Array,
              readonly environment: Record<string, string>, readonly code: CompiledCode, readonly runtime: string) {}
}

export class EnvoyProcess implements EnvoyProcessApi, ProcessCore {
  readonly minor: number;
  readonly logLevel: number;
  readonly sharedData = new SharedDataStore();
  readonly stats: StatsStore;
  readonly timers: TickScheduler;
  readonly node: NodeInfo;
  readonly logs: LogEntry[] = [];
  readonly concurrency: number;
  private readonly virtual: boolean;
  private readonly baseMs: () => number;
  private offsetMs = 0;
  /** §13.4: wall-clock steps (NTP, VM migration); not seen by timers or monotonic time */
  private wallStepMs = 0;
  private readonly defectList: HostDefect[] = [];
  private readonly monoStart = process.hrtime.bigint();
  private readonly groups = new Map<string, VmGroup>();
  private readonly codeCache = new Map<string, CompiledCode>();
  private readonly maxLogs: number;
  readonly random: () => number;
  /** proxy_http_call: clusters and outstanding requests */
  readonly httpCalls: HttpCallClient;

  constructor(readonly opts: ProcessOptions = {}) {
    this.minor = Number((opts.envoyVersion ?? "1.36").split(".")[1]);
    this.logLevel = LEVELS.indexOf(opts.logLevel ?? "info");
    this.concurrency = opts.concurrency ?? 2;
    this.node = opts.node ?? {};
    this.stats = new StatsStore(opts.statsTags ?? [], opts.useAllDefaultTags ?? true);
    this.stats.registerCustomNamespace("wasmcustom");
    this.virtual = opts.virtualTime ?? true;
    const clock = opts.clock;
    const frozen = Date.now();
    this.baseMs = clock ? () => clock.nowMs() : this.virtual ? () => frozen : () => Date.now();
    this.timers = new TickScheduler(this.virtual, () => this.monoMs());
    this.maxLogs = opts.maxLogEntries ?? 10000;
    this.random = opts.random ?? Math.random;
    this.httpCalls = new HttpCallClient(opts.clusters ?? {});
  }

  /** a cluster proxy_http_call can name (the loopback proxy registers its bootstrap clusters here) */
  setCluster(name: string, cluster: HttpCallCluster): void {
    this.httpCalls.setCluster(name, cluster);
  }
  /** resolves once every outstanding proxy_http_call was answered (callback delivered) or cancelled */
  httpCallsIdle(): Promise<void> {
    return this.httpCalls.idle();
  }
  get pendingHttpCalls(): number {
    return this.httpCalls.size;
  }

  /** wall clock (§13.4): proxy_get_current_time_nanoseconds, WASI realtime, request.time */
  nowMs(): number {
    return this.baseMs() + this.offsetMs + this.wallStepMs;
  }
  /** steady clock in ms for timers and backoffs: never affected by stepWallClock */
  monoMs(): number {
    return this.baseMs() + this.offsetMs;
  }
  monoNs(): bigint {
    return this.virtual ? BigInt(Math.round(this.offsetMs * 1e6)) + 1_000_000_000n
      : process.hrtime.bigint() - this.monoStart;
  }
  /** §13.4: step the wall clock forward (ms > 0) or backward (ms < 0), as an NTP step would */
  stepWallClock(ms: number): void {
    this.wallStepMs += ms;
  }
  get wallClockStepMs(): number {
    return this.wallStepMs;
  }

  // ---- §13.1 module defects ----
  get defects(): readonly HostDefect[] {
    return this.defectList;
  }
  recordDefect(d: HostDefect): void {
    this.defectList.push(d);
    // Envoy itself would not log this (it goes on with undefined behaviour); the entry makes the defect visible in
    // every harness that prints the logs
    this.emitLog({ level: "critical", message: d.message, line: `wasm defect: ${d.message}`, vm: d.vm, contextId: d.contextId });
  }
  /** returns the defects recorded so far and forgets them (for tests that provoke one on purpose) */
  takeDefects(): HostDefect[] {
    return this.defectList.splice(0);
  }
  assertNoDefects(): void {
    if (this.defectList.length > 0) throw new HostDefectError([...this.defectList]);
  }
  emitLog(e: LogEntry): void {
    this.logs.push(e);
    if (this.logs.length > this.maxLogs + 1000) this.logs.splice(0, this.logs.length - this.maxLogs);
    this.opts.onLog?.(e);
  }

  advance(ms: number): void {
    if (!this.virtual) throw new Error("advance() needs virtualTime: true");
    const until = this.monoMs() + ms;
    this.timers.runUntil(until, (t) => {
      this.offsetMs = t - this.baseMs();
    });
  }
  /** Every VM's tick now, without moving the virtual clock (timers.ts fireAllNow: a test affordance). */
  tickAll(): void {
    this.timers.fireAllNow();
  }
  close(): void {
    this.timers.close();
    this.httpCalls.close(); // outstanding calls cancelled, pooled connections closed
    if ((this.opts.defects ?? "fail") === "fail") this.assertNoDefects();
  }

  private compile(wasm: Uint8Array): CompiledCode {
    const hash = createHash("sha256").update(wasm).digest("hex");
    const cached = this.codeCache.get(hash);
    if (cached) return cached;
    let parsed;
    let module: WebAssembly.Module;
    try {
      module = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
      parsed = parseModule(wasm);
    } catch (e) {
      throw new PluginLoadError(`Failed to load Wasm code: ${(e as Error).message}`);
    }
    let abi: Abi | undefined;
    for (const e of parsed.exports) {
      if (e.kind !== "func") continue;
      if (e.name === "proxy_abi_version_0_1_0") abi = "0.1.0";
      else if (e.name === "proxy_abi_version_0_2_0") abi = "0.2.0";
      else if (e.name === "proxy_abi_version_0_2_1") abi = "0.2.1";
      if (abi) break;
    }
    if (!abi) throw new PluginLoadError("Missing or unknown Proxy-Wasm ABI version");
    linkCheck(parsed, this.minor, abi);
    const code = { bytes: wasm, module, parsed, abi } as CompiledCode;
    this.codeCache.set(hash, code);
    return code;
  }

  /** a new VM instance (clone): instantiate + _initialize/main/_start; counts wasm.<runtime>.created/active */
  createVm(group: VmGroup, name: string, worker: number): Vm {
    const vm = new Vm(this, group.code, group, name, worker);
    vm.instantiate();
    if (!group.code.allocator) group.code.allocator = exportCheck(group.code.parsed, group.code.abi);
    vm.malloc = vm.fn(group.code.allocator)! as Vm["malloc"];
    vm.onRootRemoved = () => this.maybeDropGroup(group);
    this.stats.counter(`wasm.${group.runtime}.created`).value++;
    this.stats.gauge(`wasm.${group.runtime}.active`).value++;
    vm.start();
    return vm;
  }
  destroyVm(group: VmGroup, vm: Vm): void {
    if (vm.destroyed) return;
    vm.destroy();
    this.stats.gauge(`wasm.${group.runtime}.active`).value--;
  }

  addPlugin(p: PluginOptions): PluginHandle {
    if (p.failOpen !== undefined && p.failurePolicy !== undefined) {
      throw new PluginLoadError("only one of fail_open or failure_policy can be set");
    }
    if (p.failurePolicy !== undefined && p.failurePolicy !== "FAIL_CLOSED" && this.minor < 33) {
      throw new PluginLoadError(`failure_policy ${p.failurePolicy} does not exist before Envoy 1.33 (unknown field)`);
    }
    if (p.allowOnHeadersStopIteration && this.minor < 35) {
      throw new PluginLoadError("allow_on_headers_stop_iteration does not exist before Envoy 1.35 (unknown field)");
    }
    const name = p.name ?? "ws_governor";
    const rootId = p.rootId ?? "ws_governor";
    const vmId = p.vmId ?? "";
    const runtime = p.runtime ?? "envoy.wasm.runtime.v8";
    const configuration = toBytes(p.configuration);
    const vmConfiguration = toBytes(p.vmConfiguration);
    const failOpenField = p.failOpen ?? false;
    const plugin: PluginRt = {
      name, rootId, vmId, configuration, failOpenField,
      key: createHash("sha256").update(rootId).update("\0").update(configuration).update("\0").update(name + "||INBOUND").digest("hex"),
      policy: p.failurePolicy ?? (failOpenField ? "FAIL_OPEN" : "FAIL_CLOSED"),
      allowStop: p.allowOnHeadersStopIteration ?? false,
      reloadBackoffMs: p.reloadBackoffMs ?? 1000,
    };
    const withName = (e: unknown): never => {
      if (e instanceof PluginLoadError) {
        (e as PluginLoadError & { envoyError?: string }).envoyError = `Unable to create Wasm HTTP filter ${name}`;
      }
      throw e;
    };
    try {
      const code = this.compile(p.wasm);
      const gkey = createHash("sha256").update(vmId).update("\0").update(vmConfiguration).update("\0")
        .update(code.bytes).digest("hex");
      let group = this.groups.get(gkey);
      if (!group) {
        const g = new VmGroup(gkey, vmId, vmConfiguration, p.environment ?? {}, code, runtime);
        g.base = this.createVm(g, "base", -3);
        this.groups.set(gkey, g);
        group = g;
      }
      if (!group.canaried.has(plugin.key)) {
        const canary = this.createVm(group, "canary", -2);
        const ok = canary.createRoot(plugin);
        this.destroyVm(group, canary); // no on_done / on_delete
        if (!ok) {
          if (group.plugins.size === 0) this.dropGroup(group);
          throw new PluginLoadError(`Unable to create Wasm HTTP filter ${name}`);
        }
        group.canaried.add(plugin.key);
      }
      group.main ??= this.createVm(group, "main", -1);
      group.main.createRoot(plugin);
      for (let i = 0; i < this.concurrency; i++) {
        group.workers[i] ??= this.createVm(group, `worker-${i}`, i);
        group.workers[i].createRoot(plugin);
      }
      group.plugins.add(plugin);
      return new PluginHandleImpl(this, group, plugin);
    } catch (e) {
      return withName(e);
    }
  }

  maybeDropGroup(group: VmGroup): void {
    if (group.plugins.size > 0 || !this.groups.has(group.key)) return;
    if ([group.main, ...group.workers].some((vm) => vm && vm.pendingRemovals > 0)) return;
    this.dropGroup(group);
  }

  dropGroup(group: VmGroup): void {
    for (const vm of [group.base, group.main, ...group.workers]) if (vm) this.destroyVm(group, vm);
    this.groups.delete(group.key);
    if (![...this.groups.values()].some((g) => g.vmId === group.vmId)) this.sharedData.deleteVmId(group.vmId);
  }
}

export class PluginHandleImpl implements PluginHandle {
  private backoff: Array<number | undefined> = [];
  constructor(private readonly proc: EnvoyProcess, private readonly group: VmGroup, readonly plugin: PluginRt) {}

  get name(): string {
    return this.plugin.name;
  }
  get workers(): number {
    return this.group.workers.length;
  }
  /** test access to a VM instance: worker index, or "main" */
  vm(which: number | "main"): Vm {
    return which === "main" ? this.group.main! : this.group.workers[which];
  }
  /** test access: how often each export was entered (Vm.exportCalls: present exports only, as cpp-host never calls an
   *  absent one), summed over `workers` (default: every worker VM); the roots' proxy_on_tick is left out */
  entered(workers: number[] = [...Array(this.workers).keys()]): Record<string, number> {
    const n: Record<string, number> = {};
    for (const w of workers) {
      for (const [k, v] of this.vm(w).exportCalls) if (k !== "proxy_on_tick") n[k] = (n[k] ?? 0) + v;
    }
    return n;
  }
  /** what entered(workers) grew by since `before` (an earlier entered(workers)), exports that did not move left out */
  enteredSince(before: Record<string, number>, workers?: number[]): Record<string, number> {
    const d: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.entered(workers))) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0);
    return d;
  }
  rootContextId(which: number | "main"): number | undefined {
    return this.vm(which).roots.get(this.plugin)?.id;
  }

  newStream(worker: number, conn: DownstreamConnection): FilterStream {
    const proc = this.proc, plugin = this.plugin;
    let vm = this.group.workers[worker];
    if (!vm) throw new Error(`no worker ${worker}`);
    if (vm.failed && plugin.policy === "FAIL_RELOAD" && proc.minor >= 33) vm = this.maybeReload(worker);
    if (!vm.installed.has(plugin)) return new StreamImpl("passthrough", null, null, plugin, conn, worker, proc.minor);
    if (vm.failed) {
      const open = plugin.policy === "FAIL_OPEN" || plugin.failOpenField;
      return new StreamImpl(open ? "passthrough" : "failclosed", null, null, plugin, conn, worker, proc.minor);
    }
    const root = vm.roots.get(plugin)!;
    const id = vm.allocContextId();
    const ctx = new Ctx(id, "stream", plugin, root, this.group.vmId);
    vm.contexts.set(id, ctx);
    vm.streamStarted(plugin);
    return new StreamImpl("vm", vm, ctx, plugin, conn, worker, proc.minor);
  }

  /** FAIL_RELOAD (§3.3): a fresh VM once now − last load ≥ JitteredLowerBound backoff in [base, 1.5·base) */
  private maybeReload(worker: number): Vm {
    const proc = this.proc, group = this.group, old = group.workers[worker];
    const now = proc.monoMs();
    const base = this.plugin.reloadBackoffMs;
    this.backoff[worker] ??= base + Math.floor(proc.random() * base * 0.5);
    const stat = (s: string) => proc.stats.counter(`wasm.${this.plugin.name}.${s}`);
    if (now - old.loadedAtMs < this.backoff[worker]!) {
      stat("vm_reload_backoff").value++;
      return old;
    }
    this.backoff[worker] = undefined;
    try {
      const vm = proc.createVm(group, `worker-${worker}`, worker);
      for (const p of group.plugins) vm.createRoot(p);
      group.workers[worker] = vm;
      proc.destroyVm(group, old);
      stat("vm_reload_success").value++;
      return vm;
    } catch {
      old.loadedAtMs = now;
      stat("vm_reload_failure").value++;
      return old;
    }
  }

  vmFailed(worker: number): boolean {
    return this.group.workers[worker].failed;
  }
  trapOnNextHostCall(worker: number): void {
    this.group.workers[worker].trapNext = true;
  }
  hostCalls(worker: number): HostCallCounts {
    const vm = () => this.group.workers[worker];
    return {
      get: (name) => vm().counts.get(name) ?? 0,
      all: () => Object.fromEntries(vm().counts),
      reset: () => vm().counts.clear(),
    };
  }
  memoryBytes(worker: number): number {
    return this.group.workers[worker].mem.size;
  }
  /** the plugin's configuration is removed: roots without live streams get on_done/on_delete now, the others when
   *  their last stream ends (the streams hold the plugin handle, §13.5); the VMs (and the vm_id's shared data) go
   *  when no plugin and no such root is left */
  remove(): void {
    const g = this.group;
    if (!g.plugins.has(this.plugin)) return;
    for (const vm of [g.main, ...g.workers]) if (vm) vm.releasePlugin(this.plugin);
    g.plugins.delete(this.plugin);
    this.proc.maybeDropGroup(g);
  }
}
