// env.* hostcalls that do not touch the HTTP stream: shared data and queues (§4), metrics (§5), ticks and time (§3.4),
// effective context (§9), proxy_done, foreign functions, gRPC callouts (no gRPC clusters in the emulator).
import { R, utf8Dec } from "../memory.ts";
import type { Vm } from "../vm.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type F = (...a: any[]) => number | void;

export function envMiscImports(vm: Vm): Record<string, F> {
  const u = (x: number) => x >>> 0;
  const sd = vm.proc.sharedData;
  const vmId = vm.group.vmId;
  return {
    proxy_get_shared_data(kp, kl, rp, rl, casPtr) {
      const key = vm.mem.str(u(kp), u(kl));
      if (key === null) return R.InvalidMemoryAccess;
      const e = sd.get(vmId, key);
      if (!e) return R.NotFound;
      const r = vm.copyOut(e.value, u(rp), u(rl));
      if (r !== R.Ok) return r;
      if (!vm.mem.setU32(u(casPtr), e.cas)) return R.InvalidMemoryAccess;
      sd.afterGet?.(vmId, key, vm.name);
      return R.Ok;
    },
    proxy_set_shared_data(kp, kl, vp, vl, cas) {
      const key = vm.mem.str(u(kp), u(kl));
      const val = vm.mem.bytes(u(vp), u(vl));
      if (key === null || val === null) return R.InvalidMemoryAccess;
      return sd.set(vmId, key, val, u(cas), vm.name) === "ok" ? R.Ok : R.CasMismatch;
    },
    proxy_register_shared_queue(np, nl, tokenPtr) {
      const name = vm.mem.str(u(np), u(nl));
      if (name === null) return R.InvalidMemoryAccess;
      const root = vm.ctxOrEffective().root ?? vm.vmCtx;
      const token = sd.register(vmId, name, {
        notify: (t) => setImmediate(() => {
          if (!vm.failed && !vm.destroyed && vm.contexts.has(root.id)) vm.call("proxy_on_queue_ready", root, root.id, t);
        }),
      });
      return vm.mem.setU32(u(tokenPtr), token) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_resolve_shared_queue(vp, vl, np, nl, tokenPtr) {
      const id = vm.mem.str(u(vp), u(vl)), name = vm.mem.str(u(np), u(nl));
      if (id === null || name === null) return R.InvalidMemoryAccess;
      const t = sd.resolve(id === "" ? vmId : id, name);
      if (t === undefined) return R.NotFound;
      return vm.mem.setU32(u(tokenPtr), t) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_enqueue_shared_queue(token, p, l) {
      const q = sd.queue(u(token));
      if (!q) return R.NotFound;
      const data = vm.mem.bytes(u(p), u(l));
      if (data === null) return R.InvalidMemoryAccess;
      q.items.push(data);
      q.owner.notify(q.token);
      return R.Ok;
    },
    proxy_dequeue_shared_queue(token, rp, rl) {
      const q = sd.queue(u(token));
      if (!q) return R.NotFound;
      const item = q.items.shift();
      if (!item) return R.Empty;
      return vm.copyOut(item, u(rp), u(rl));
    },

    // ---- metrics (§5) ----
    proxy_define_metric(type, np, nl, idPtr) {
      if (u(type) > 2) return R.BadArgument;
      const name = vm.mem.str(u(np), u(nl));
      if (name === null) return R.InvalidMemoryAccess;
      const id = vm.defineMetric(u(type), name);
      return vm.mem.setU32(u(idPtr), id) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_increment_metric(id: number, delta: bigint) {
      const t = u(id) & 3;
      if (t === 2 || t === 3) return R.BadArgument;
      const s = vm.metrics.get(u(id));
      if (!s) return R.NotFound;
      if (t === 0) {
        if (delta <= 0n) return R.BadArgument;
        s.value = BigInt.asUintN(64, s.value + delta);
      } else {
        s.value = BigInt.asUintN(64, s.value + delta); // gauge: add, or sub(-delta)
      }
      return R.Ok;
    },
    proxy_record_metric(id: number, value: bigint) {
      const s = vm.metrics.get(u(id));
      if (!s) return R.NotFound;
      const v = BigInt.asUintN(64, value);
      if (s.type === 0) s.value = BigInt.asUintN(64, s.value + v);
      else if (s.type === 1) s.value = v;
      else s.samples.push(Number(v));
      return R.Ok;
    },
    proxy_get_metric(id, rp) {
      const t = u(id) & 3;
      if (t === 2 || t === 3) return R.BadArgument;
      const s = vm.metrics.get(u(id));
      if (!s) return R.NotFound;
      return vm.mem.setU64(u(rp), s.value) ? R.Ok : R.InvalidMemoryAccess;
    },

    // ---- time, ticks, contexts ----
    proxy_set_tick_period_milliseconds(ms) {
      const root = vm.ctxOrEffective().root;
      if (root) vm.setTick(root, u(ms));
      return R.Ok;
    },
    proxy_get_current_time_nanoseconds(rp) {
      return vm.mem.setU64(u(rp), nanos(vm.proc.nowMs())) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_set_effective_context(id) {
      const c = vm.contexts.get(u(id));
      if (!c) return R.BadArgument;
      vm.effective = c;
      return R.Ok;
    },
    proxy_done() {
      const c = vm.ctxOrEffective();
      if (c.kind !== "root" || !c.awaitingDone) return R.NotFound;
      c.awaitingDone = false;
      vm.addAfter(() => {
        vm.call("proxy_on_delete", c, c.id);
        vm.contexts.delete(c.id);
        vm.proc.httpCalls.cancelFor(vm, c); // ~Context cancels its outstanding http calls
      });
      return R.Ok;
    },
    proxy_call_foreign_function(np, nl, ap, al, rp, rl) {
      const name = vm.mem.str(u(np), u(nl));
      if (name === null || vm.mem.bytes(u(ap), u(al)) === null) return R.InvalidMemoryAccess;
      if (name === "clear_route_cache" && vm.proc.minor >= 33) {
        vm.ctxOrEffective().stream?.clearRouteCache();
        return vm.copyOut(new Uint8Array(0), u(rp), u(rl));
      }
      return R.NotFound; // compress/uncompress/verify_signature/… are not emulated (see docs/emulator-checklist.md)
    },

    // ---- callouts: proxy_http_call / proxy_get_status live in env_http.ts; gRPC has no clusters here ----
    proxy_grpc_call() {
      return R.ParseFailure; // unknown cluster
    },
    proxy_grpc_stream() {
      return R.ParseFailure;
    },
    proxy_grpc_send() {
      return R.NotFound;
    },
    proxy_grpc_cancel() {
      return R.NotFound;
    },
    proxy_grpc_close() {
      return R.NotFound;
    },
    envoy_resolve_dns(ap, al, tokenPtr) {
      if (vm.mem.bytes(u(ap), u(al)) === null) return R.InvalidMemoryAccess;
      return vm.mem.setU32(u(tokenPtr), 1) ? R.Ok : R.InvalidMemoryAccess; // no answer is ever delivered
    },
    pthread_equal(a, b) {
      return a === b ? 1 : 0;
    },
    emscripten_notify_memory_growth() {},
  };
}

export const decodeUtf8 = (b: Uint8Array) => utf8Dec.decode(b);

/** ms (possibly fractional) → integer ns without going through a double above 2^53 (which would lose the last ms). */
function nanos(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1000000n + BigInt(Math.round((ms - whole) * 1e6));
}
