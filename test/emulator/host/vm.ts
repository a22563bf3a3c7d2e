// One VM instance (base, canary, main-thread or worker): instantiate with strict linking, restricted mode during
// start-up and allocator calls (§1.2, §1.5), context ids (§2.2), failed state after a trap (§3.3), per-VM metric ids
// (§5.1), after-VM-call actions (§7.1) and the effective context (§9).
import { ContextTable } from "./context_table.ts";
import { PluginLoadError } from "./api.ts";
import { Mem, R } from "./memory.ts";
import { buildImports } from "./imports/index.ts";
import { Ctx, LEVELS, type CompiledCode, type PluginRt, type ProcessCore } from "./types.ts";
import type { Stat } from "./stats.ts";
import type { TickTarget } from "./timers.ts";

/** a trap raised by the host (restricted_callback, trapOnNextHostCall) */
export class HostTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RuntimeError";
  }
}
class StartSectionHostCall extends Error {}

const STARTUP_BASE = ["proxy_log", "fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get",
  "fd_prestat_get", "fd_prestat_dir_name", "clock_time_get", "random_get"];
const ALLOC_ALLOWED = new Set(["proxy_log", "fd_write", "clock_time_get"]);

type GuestFn = (a?: number, b?: number, c?: number, d?: number, e?: number) => unknown;

export interface VmGroupLike {
  vmId: string;
  vmConfiguration: Uint8Array;
  environment: Record<string, string>;
}

export class Vm {
  instance!: WebAssembly.Instance;
  mem!: Mem;
  readonly contexts = new ContextTable<Ctx>();
  readonly vmCtx: Ctx;
  readonly roots = new Map<PluginRt, Ctx>();
  /** plugins whose on_vm_start/on_configure returned true on this VM (filter installed, §2.2 step 3) */
  readonly installed = new Set<PluginRt>();
  /** live streams per plugin: each holds the plugin handle, so a removed plugin's root lives on until they end (§13.5) */
  private readonly live = new Map<PluginRt, number>();
  private readonly removing = new Set<PluginRt>();
  /** called when a deferred root removal completed (the process may drop the VM group then) */
  onRootRemoved: (() => void) | undefined;
  private nextId = 1;
  failed = false;
  destroyed = false;
  current: Ctx;
  effective: Ctx | null = null;
  private depth = 0;
  restricted: Set<string> | null = null;
  private instantiating = false;
  trapNext = false;
  /** send_local_response was called during the current top-level callback (stopNextIteration) */
  stopNext = false;
  lastStop = false;
  private after: Array<() => void> = [];
  readonly counts = new Map<string, number>();
  readonly metrics = new Map<number, Stat>();
  readonly nextMetric = [0, 1, 2];
  private fns: Record<string, GuestFn | undefined> = {};
  malloc!: GuestFn;
  loadedAtMs: number;
  private tickTargets = new Map<Ctx, TickTarget>();

  constructor(readonly proc: ProcessCore, readonly code: CompiledCode, readonly group: VmGroupLike,
              readonly name: string, readonly worker: number) {
    this.vmCtx = new Ctx(0, "vm", null, null, group.vmId);
    this.current = this.vmCtx;
    this.contexts.set(0, this.vmCtx);
    this.loadedAtMs = proc.monoMs();
  }

  get abi01(): boolean {
    return this.code.abi === "0.1.0";
  }
  fn(name: string): GuestFn | undefined {
    return this.fns[name];
  }

  /** V8::link + instance creation; the wasm start section runs here (hostcalls from it are fatal, §1.2) */
  instantiate(): void {
    const imports = buildImports(this);
    this.instantiating = true;
    try {
      this.instance = new WebAssembly.Instance(this.code.module, imports);
    } catch (e) {
      if (e instanceof StartSectionHostCall) throw new PluginLoadError(e.message);
      if (e instanceof WebAssembly.RuntimeError || e instanceof HostTrap || e instanceof RangeError) {
        throw new PluginLoadError(`Failed to start base Wasm module: start function failed: Uncaught ${e.name}: ${e.message}`);
      }
      throw e;
    } finally {
      this.instantiating = false;
    }
    const ex = this.instance.exports as Record<string, unknown>;
    const memory = (ex.memory as WebAssembly.Memory | undefined) ?? this.importedMemory;
    this.mem = new Mem(memory ?? new WebAssembly.Memory({ initial: 0 }));
    for (const e of this.code.parsed.exports) if (e.kind === "func") this.fns[e.name] = ex[e.name] as GuestFn;
    if (this.code.allocator) this.malloc = this.fns[this.code.allocator]!;
  }
  importedMemory: WebAssembly.Memory | undefined;

  /** _initialize, then main(0,0) if exported, else _start — restricted mode on (§1.2). Throws PluginLoadError. */
  start(): void {
    const allowed = new Set(STARTUP_BASE);
    if (this.proc.minor >= 35) {
      allowed.add("fd_fdstat_get");
      allowed.add("fd_fdstat_set_flags");
    }
    this.restricted = allowed;
    try {
      const init = this.fns._initialize;
      if (init) this.invoke("_initialize", init, this.vmCtx);
      if (!this.failed) {
        if (this.fns.main) this.invoke("main", this.fns.main, this.vmCtx, 0, 0);
        else if (this.fns._start) this.invoke("_start", this.fns._start, this.vmCtx);
      }
    } finally {
      this.restricted = null;
    }
    if (this.failed) throw new PluginLoadError("Failed to start base Wasm VM: " + (this.failMessage ?? "trap"));
  }
  failMessage: string | undefined;

  /** prologue of every hostcall: counting, start-section check, test trap, restricted mode */
  enter(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    if (this.instantiating) {
      throw new StartSectionHostCall(`Hostcall ${name} from the Wasm start function (no context is set; Envoy would dereference null)`);
    }
    if (this.trapNext) {
      this.trapNext = false;
      throw new HostTrap("unreachable");
    }
    if (this.restricted !== null && !this.restricted.has(name)) throw new HostTrap("restricted_callback");
  }

  /** host → guest call with the context set; traps mark the VM failed. Returns the i32 result (0 if none). */
  invoke(fnName: string, fn: GuestFn, ctx: Ctx, a?: number, b?: number, c?: number, d?: number, e?: number): number {
    if (this.failed || this.destroyed) return 0;
    const prevCur = this.current, prevEff = this.effective;
    this.current = ctx;
    this.effective = null;
    const top = this.depth === 0;
    if (top) this.stopNext = false;
    this.depth++;
    let r: unknown = 0;
    try {
      r = fn(a, b, c, d, e);
    } catch (err) {
      this.onTrap(fnName, err);
      r = 0;
    } finally {
      this.depth--;
      this.current = prevCur;
      this.effective = prevEff;
    }
    if (top) {
      const stop = this.stopNext;
      this.stopNext = false;
      if (this.after.length) this.runAfter();
      this.lastStop = stop;
    }
    return typeof r === "number" ? r : 0;
  }

  /** test hook: how many times each existing export was entered through call() on this VM instance */
  readonly exportCalls = new Map<string, number>();

  /** call an export by name on a context if it exists; returns undefined when the export is absent */
  call(name: string, ctx: Ctx, a?: number, b?: number, c?: number, d?: number, e?: number): number | undefined {
    const f = this.fns[name];
    if (f) this.exportCalls.set(name, (this.exportCalls.get(name) ?? 0) + 1);
    if (!f) {
      this.lastStop = false;
      return undefined;
    }
    return this.invoke(name, f, ctx, a, b, c, d, e);
  }

  addAfter(action: () => void): void {
    this.after.push(action);
  }
  private runAfter(): void {
    while (this.after.length) {
      const acts = this.after;
      this.after = [];
      for (const a of acts) a();
    }
  }

  private onTrap(fnName: string, err: unknown): void {
    if (err instanceof StartSectionHostCall) throw err;
    if (!(err instanceof WebAssembly.RuntimeError || err instanceof HostTrap || err instanceof RangeError)) throw err;
    if (this.failed) return;
    this.failed = true;
    this.failMessage = `Function: ${fnName} failed: Uncaught ${err.name}: ${err.message}`;
    this.proc.emitLog({ level: "error", message: this.failMessage, line: this.failMessage, vm: this.name, contextId: this.current.id });
    for (const t of this.tickTargets.values()) this.proc.timers.clear(t);
    this.onFailed?.(this);
  }
  onFailed: ((vm: Vm) => void) | undefined;

  /** module allocator with the VM context current and allocator-restricted mode (§1.5); 0 on failure */
  alloc(size: number): number {
    const prevR = this.restricted, prevCur = this.current, prevEff = this.effective;
    this.restricted = ALLOC_ALLOWED;
    this.current = this.vmCtx;
    this.effective = null;
    this.depth++;
    let p = 0;
    try {
      p = (this.malloc(size) as number) >>> 0;
    } catch (err) {
      this.onTrap(this.code.allocator, err);
      p = 0;
    } finally {
      this.depth--;
      this.restricted = prevR;
      this.current = prevCur;
      this.effective = prevEff;
    }
    return p;
  }

  /** copy bytes out through the guest allocator and write (ptr,len) — copyToPointerSize */
  copyOut(data: Uint8Array, ptrPtr: number, lenPtr: number): R {
    const mem = this.mem;
    if (data.length === 0) return mem.setU32(ptrPtr, 0) && mem.setU32(lenPtr, 0) ? R.Ok : R.InvalidMemoryAccess;
    const p = this.alloc(data.length);
    if (p === 0 || !mem.write(p, data)) return R.InvalidMemoryAccess;
    return mem.setU32(ptrPtr, p) && mem.setU32(lenPtr, data.length) ? R.Ok : R.InvalidMemoryAccess;
  }
  /** same for a string written as latin1 (header values) without an intermediate buffer */
  copyOutLatin1(s: string, ptrPtr: number, lenPtr: number): R {
    const mem = this.mem;
    const n = s.length;
    if (n === 0) return mem.setU32(ptrPtr, 0) && mem.setU32(lenPtr, 0) ? R.Ok : R.InvalidMemoryAccess;
    const p = this.alloc(n);
    if (p === 0 || !mem.ok(p, n)) return R.InvalidMemoryAccess;
    mem.nb.write(s, p, "latin1");
    return mem.setU32(ptrPtr, p) && mem.setU32(lenPtr, n) ? R.Ok : R.InvalidMemoryAccess;
  }

  ctxOrEffective(): Ctx {
    return this.effective ?? this.current;
  }

  allocContextId(): number {
    return this.nextId++;
  }
  private nextHttpCall = 0;
  /** WasmBase::nextHttpCallId: per VM instance, 4, 8, 12 … (CalloutType::HttpCall = 0, kCalloutIncrement 4) */
  nextHttpCallId(): number {
    this.nextHttpCall = (this.nextHttpCall + 4) >>> 0;
    return this.nextHttpCall;
  }

  /** ContextBase::error: cpp-host's default aborts; Envoy's Context::error is ENVOY_LOG(trace, message) (§13.5) */
  hostError(message: string): void {
    if (this.proc.logLevel > 0) return;
    this.proc.emitLog({ level: "trace", message, line: message, vm: this.name, contextId: this.ctxOrEffective().id });
  }

  log(level: number, message: string, ctx: Ctx): void {
    if (level < this.proc.logLevel) return;
    const line = `wasm log${ctx.logPrefix}: ${message}`;
    this.proc.emitLog({ level: LEVELS[level], message, line, vm: this.name, contextId: ctx.id });
  }

  // ---- root contexts (§2.2) ----

  /** on_context_create(R,0) → on_vm_start → on_configure; returns false on `false` or a trap */
  createRoot(plugin: PluginRt): boolean {
    const id = this.allocContextId();
    const ctx = new Ctx(id, "root", plugin, null, this.group.vmId);
    ctx.root = ctx;
    this.contexts.set(id, ctx);
    this.roots.set(plugin, ctx);
    ctx.phase = "create";
    this.call("proxy_on_context_create", ctx, id, 0);
    ctx.created = true;
    ctx.phase = "vm_start";
    const vs = this.call("proxy_on_vm_start", ctx, id, this.group.vmConfiguration.length);
    ctx.phase = "";
    if (this.failed || vs === 0) return false;
    ctx.phase = "configure";
    const cf = this.call("proxy_on_configure", ctx, id, plugin.configuration.length);
    ctx.phase = "";
    const ok = !this.failed && cf !== 0;
    if (ok) this.installed.add(plugin);
    return ok;
  }

  streamStarted(plugin: PluginRt): void {
    this.live.set(plugin, (this.live.get(plugin) ?? 0) + 1);
  }
  streamEnded(plugin: PluginRt): void {
    const n = (this.live.get(plugin) ?? 1) - 1;
    this.live.set(plugin, n);
    if (n > 0 || !this.removing.has(plugin)) return;
    this.removing.delete(plugin);
    if (!this.failed) this.removeRoot(plugin); // a failed VM gets no more callbacks (§3.3)
    else this.roots.delete(plugin);
    this.onRootRemoved?.();
  }
  /** the plugin's configuration is gone: remove its root now, or when its last live stream ends (§13.5) */
  releasePlugin(plugin: PluginRt): void {
    this.installed.delete(plugin);
    if ((this.live.get(plugin) ?? 0) > 0) this.removing.add(plugin);
    else if (!this.failed) this.removeRoot(plugin);
    else this.roots.delete(plugin);
  }
  get pendingRemovals(): number {
    return this.removing.size;
  }

  /** plugin removal (§2.4): on_done(R); true → on_delete(R); false → wait for proxy_done() */
  removeRoot(plugin: PluginRt): void {
    const ctx = this.roots.get(plugin);
    if (!ctx) return;
    this.roots.delete(plugin);
    this.setTick(ctx, 0);
    const done = this.call("proxy_on_done", ctx, ctx.id);
    if (done === 0 && this.fn("proxy_on_done") && !this.failed) {
      ctx.awaitingDone = true;
      return;
    }
    this.call("proxy_on_delete", ctx, ctx.id);
    this.contexts.delete(ctx.id);
    this.proc.httpCalls.cancelFor(this, ctx); // ~Context cancels its outstanding http calls
  }

  setTick(root: Ctx, periodMs: number): void {
    let t = this.tickTargets.get(root);
    if (!t) {
      t = {
        fire: () => {
          if (this.failed || this.destroyed || !this.contexts.has(root.id)) return false;
          this.call("proxy_on_tick", root, root.id);
          return !this.failed && !this.destroyed;
        },
      };
      this.tickTargets.set(root, t);
    }
    this.proc.timers.set(t, this.worker === -2 ? 0 : periodMs); // the canary's timer dies with the canary
  }
  tickPeriod(root: Ctx): number {
    const t = this.tickTargets.get(root);
    return t ? this.proc.timers.period(t) : 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const t of this.tickTargets.values()) this.proc.timers.clear(t);
    this.proc.httpCalls.cancelFor(this);
  }

  // ---- metrics (§5) ----
  defineMetric(type: number, name: string): number {
    const stat = this.proc.stats.stat("wasmcustom." + name, type as 0 | 1 | 2);
    this.nextMetric[type] += 4;
    const id = this.nextMetric[type];
    this.metrics.set(id, stat);
    return id;
  }
}
