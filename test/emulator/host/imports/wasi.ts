// WASI subset Envoy 1.30–1.36 provides under wasi_unstable and wasi_snapshot_preview1 (§1.4).
import { randomFillSync } from "node:crypto";
import type { Vm } from "../vm.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type F = (...a: any[]) => number | void;

const BADF = 8, FAULT = 21, INVAL = 28, NOENT = 44, NOSYS = 52, NOTSUP = 58;

export function wasiImports(vm: Vm, env: Record<string, string>): Record<string, F> {
  const u = (x: number) => x >>> 0;
  const envEntries = Object.entries(env).map(([k, v]) => Buffer.from(`${k}=${v}\0`, "utf8"));
  return {
    fd_write(fd, iovs, n, nwrittenPtr) {
      const mem = vm.mem;
      if (u(fd) !== 1 && u(fd) !== 2) return BADF;
      const parts: string[] = [];
      let total = 0;
      for (let i = 0; i < u(n); i++) {
        const base = u(iovs) + i * 8;
        const p = mem.getU32(base), l = mem.getU32(base + 4);
        if (p === null || l === null) return FAULT;
        const s = mem.str(p, l);
        if (s === null) return FAULT;
        parts.push(s);
        total += l;
      }
      let msg = parts.join("");
      if (msg.endsWith("\n")) msg = msg.slice(0, -1);
      vm.log(u(fd) === 1 ? 2 : 4, msg, vm.ctxOrEffective());
      return mem.setU32(u(nwrittenPtr), total) ? 0 : FAULT;
    },
    fd_read() {
      return NOSYS;
    },
    fd_seek() {
      return 0;
    },
    fd_close() {
      return 0;
    },
    fd_fdstat_get(fd, buf) {
      if (u(fd) !== 1 && u(fd) !== 2) return BADF;
      const mem = vm.mem;
      if (!mem.ok(u(buf), 24)) return FAULT;
      mem.setU64(u(buf), 0n);
      mem.setU64(u(buf) + 8, 64n);
      mem.setU64(u(buf) + 16, 0n);
      return 0;
    },
    fd_fdstat_set_flags() {
      return NOSYS;
    },
    environ_sizes_get(countPtr, sizePtr) {
      const size = envEntries.reduce((a, b) => a + b.length, 0);
      return vm.mem.setU32(u(countPtr), envEntries.length) && vm.mem.setU32(u(sizePtr), size) ? 0 : FAULT;
    },
    environ_get(arr, buf) {
      let p = u(buf);
      for (let i = 0; i < envEntries.length; i++) {
        if (!vm.mem.setU32(u(arr) + i * 4, p) || !vm.mem.write(p, envEntries[i])) return FAULT;
        p += envEntries[i].length;
      }
      return 0;
    },
    args_sizes_get(countPtr, sizePtr) {
      return vm.mem.setU32(u(countPtr), 0) && vm.mem.setU32(u(sizePtr), 0) ? 0 : FAULT;
    },
    args_get() {
      return 0;
    },
    clock_time_get(id: number, _precision: bigint, retPtr: number) {
      let t: bigint;
      if (u(id) === 0) t = nanos(vm.proc.nowMs());
      else if (u(id) === 1) t = vm.proc.monoNs();
      else return NOTSUP;
      return vm.mem.setU64(u(retPtr), t) ? 0 : FAULT;
    },
    random_get(buf, len) {
      if (u(len) > 65536) return INVAL;
      if (u(len) === 0) return 0;
      if (!vm.mem.ok(u(buf), u(len))) return FAULT;
      randomFillSync(vm.mem.u8, u(buf), u(len));
      return 0;
    },
    sched_yield() {
      return 0;
    },
    poll_oneoff() {
      return NOSYS;
    },
    proc_exit() {
      vm.hostError("wasi_unstable proc_exit");
    },
    path_open() {
      return NOENT;
    },
    fd_prestat_get() {
      return BADF;
    },
    fd_prestat_dir_name() {
      return NOSYS;
    },
  };
}

/** ms (possibly fractional) → integer ns without going through a double above 2^53 (which would lose the last ms). */
function nanos(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1000000n + BigInt(Math.round((ms - whole) * 1e6));
}
