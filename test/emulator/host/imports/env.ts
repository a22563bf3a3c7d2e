// env.* hostcalls acting on contexts and streams: logging, properties, header maps, buffers, stream control, local
// replies (§1.3, §2.6, §6, §7, §8.5, §9). Every function returns a WasmResult (§1.6).
import { R, parsePairs, pairsSize, writePairs } from "../memory.ts";
import { hmAdd, hmByteSize, hmGet, hmRemove, hmReplace } from "../headers.ts";
import { getProperty } from "../properties.ts";
import type { Vm } from "../vm.ts";
import type { HeaderList } from "../api.ts";
import type { Ctx } from "../types.ts";
import { rootOf } from "./env_http.ts";

type F = (...a: number[]) => number | void;

export function envStreamImports(vm: Vm): Record<string, F> {
  const u = (x: number) => x >>> 0;
  const minor = vm.proc.minor;
  /** add / replace / remove on a header map (§1.3): checks, key lower-cased, route-cache clear on request headers */
  const mutateHeader = (type: number, kp: number, kl: number, vp: number, vl: number,
                        op: (map: HeaderList, k: string, v: string) => void): number => {
    if (u(type) > 7) return R.BadArgument;
    const k = vm.mem.latin1(u(kp), u(kl)), v = vm.mem.latin1(u(vp), u(vl));
    if (k === null || v === null) return R.InvalidMemoryAccess;
    const s = vm.ctxOrEffective().stream;
    const map = s ? s.mutableMap(u(type)) : null;
    if (!map) return R.BadArgument;
    op(map, k.toLowerCase(), v);
    s!.headersModified(u(type));
    return R.Ok;
  };
  return {
    proxy_log(level, ptr, len) {
      if (u(level) > 5) return R.BadArgument;
      const msg = vm.mem.str(u(ptr), u(len));
      if (msg === null) return R.InvalidMemoryAccess;
      vm.log(level, msg, vm.ctxOrEffective());
      return R.Ok;
    },
    proxy_get_log_level(retPtr) {
      return vm.mem.setU32(u(retPtr), vm.proc.logLevel) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_get_property(pathPtr, pathLen, retPtrPtr, retLenPtr) {
      const path = vm.mem.bytes(u(pathPtr), u(pathLen));
      if (path === null) return R.InvalidMemoryAccess;
      const res = getProperty(vm, vm.ctxOrEffective(), path);
      if (res.r !== R.Ok) return res.r;
      return vm.copyOut(res.v!, u(retPtrPtr), u(retLenPtr));
    },
    proxy_set_property(pathPtr, pathLen, valPtr, valLen) {
      const path = vm.mem.bytes(u(pathPtr), u(pathLen));
      const val = vm.mem.bytes(u(valPtr), u(valLen));
      if (path === null || val === null) return R.InvalidMemoryAccess;
      const s = vm.ctxOrEffective().stream;
      if (!s) return R.NotFound;
      s.filterState.set("wasm." + Buffer.from(path).toString("utf8"), val);
      return R.Ok;
    },

    // ---- header maps ----
    proxy_get_header_map_value(type, kp, kl, rp, rl) {
      if (u(type) > 7) return R.BadArgument;
      const key = vm.mem.latin1(u(kp), u(kl));
      if (key === null) return R.InvalidMemoryAccess;
      const c = vm.ctxOrEffective(), s = c.stream;
      const map = constMap(c, u(type));
      if (!map) return s && s.logPhase ? R.NotFound : R.BadArgument;
      const v = hmGet(map, key.toLowerCase());
      if (v === undefined) {
        if (vm.abi01) return vm.copyOutLatin1("", u(rp), u(rl));
        return R.NotFound;
      }
      return vm.copyOutLatin1(v, u(rp), u(rl));
    },
    proxy_get_header_map_pairs(type, rp, rl) {
      if (u(type) > 7) return R.BadArgument;
      const map = constMap(vm.ctxOrEffective(), u(type));
      const mem = vm.mem;
      if (!map || map.length === 0) return mem.setU32(u(rp), 0) && mem.setU32(u(rl), 0) ? R.Ok : R.InvalidMemoryAccess;
      const size = pairsSize(map);
      const p = vm.alloc(size);
      if (p === 0 || !mem.ok(p, size)) return R.InvalidMemoryAccess;
      writePairs(mem, p, map);
      return mem.setU32(u(rp), p) && mem.setU32(u(rl), size) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_set_header_map_pairs(type, ptr, len) {
      if (u(type) > 7) return R.BadArgument;
      const data = vm.mem.bytes(u(ptr), u(len));
      if (data === null) return R.InvalidMemoryAccess;
      const s = vm.ctxOrEffective().stream;
      const map = s ? s.mutableMap(u(type)) : null;
      if (!map) return R.BadArgument;
      map.length = 0;
      for (const [k, v] of parsePairs(data)) hmAdd(map, k.toLowerCase(), v);
      s!.headersModified(u(type));
      return R.Ok;
    },
    proxy_add_header_map_value(type, kp, kl, vp, vl) {
      return mutateHeader(type, kp, kl, vp, vl, hmAdd);
    },
    proxy_replace_header_map_value(type, kp, kl, vp, vl) {
      return mutateHeader(type, kp, kl, vp, vl, hmReplace);
    },
    proxy_remove_header_map_value(type, kp, kl) {
      return mutateHeader(type, kp, kl, 0, 0, (map, k) => hmRemove(map, k));
    },
    proxy_get_header_map_size(type, rp) {
      if (u(type) > 7) return R.BadArgument;
      if (u(type) >= 4) return R.BadArgument; // Context::getHeaderMapSize uses getMap(): nullptr for maps 4–7
      const s = vm.ctxOrEffective().stream;
      const map = s ? s.constMap(u(type)) : null;
      if (!map) return R.BadArgument;
      return vm.mem.setU32(u(rp), hmByteSize(map)) ? R.Ok : R.InvalidMemoryAccess;
    },

    // ---- buffers (§2.6, §8.5) ----
    proxy_get_buffer_bytes(type, start, max, rp, rl) {
      if (u(type) > 8) return R.BadArgument;
      const buf = getBuffer(vm, u(type));
      if (buf === null) return R.NotFound;
      const st = u(start);
      let len = u(max);
      if (st >= buf.length) len = 0;
      else if (st + len > buf.length) len = buf.length - st;
      return vm.copyOut(len > 0 ? buf.subarray(st, st + len) : buf.subarray(0, 0), u(rp), u(rl));
    },
    proxy_get_buffer_status(type, lp, fp) {
      if (u(type) > 8) return R.BadArgument;
      const buf = getBuffer(vm, u(type));
      if (buf === null) return R.NotFound;
      return vm.mem.setU32(u(lp), buf.length) && vm.mem.setU32(u(fp), 0) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_set_buffer_bytes(type, start, len, dp, dl) {
      const t = u(type);
      if (t > 8) return R.BadArgument;
      const buf = getBuffer(vm, t);
      if (buf === null) return R.NotFound;
      const data = vm.mem.bytes(u(dp), u(dl));
      if (data === null) return R.InvalidMemoryAccess;
      const s = vm.ctxOrEffective().stream;
      if ((t !== 0 && t !== 1) || !s) return R.BadArgument;
      const live = s.liveBody(t as 0 | 1);
      if (live === null) return R.BadArgument;
      const st = u(start), ln = u(len);
      let out: Uint8Array;
      if (st === 0) {
        const rest = live.subarray(Math.min(ln, live.length));
        out = new Uint8Array(data.length + rest.length);
        out.set(data, 0);
        out.set(rest, data.length);
      } else if (st >= live.length) {
        out = new Uint8Array(live.length + data.length);
        out.set(live, 0);
        out.set(data, live.length);
      } else return R.BadArgument;
      s.setLiveBody(t as 0 | 1, out);
      return R.Ok;
    },

    // ---- stream control (§2.7, §9) ----
    proxy_continue_stream(type) {
      const t = u(type);
      if (t === 3) return R.Unimplemented;
      if (t > 3) return R.BadArgument;
      const s = vm.ctxOrEffective().stream;
      if (s && t < 2) s.continueStream(t as 0 | 1);
      return R.Ok;
    },
    proxy_close_stream(type) {
      const t = u(type);
      if (t > 3) return R.BadArgument;
      const s = vm.ctxOrEffective().stream;
      if (s && t < 2) s.closeStream();
      return R.Ok;
    },
    proxy_continue_request() {
      vm.ctxOrEffective().stream?.continueStream(0);
      return R.Ok;
    },
    proxy_continue_response() {
      vm.ctxOrEffective().stream?.continueStream(1);
      return R.Ok;
    },
    proxy_clear_route_cache() {
      vm.ctxOrEffective().stream?.clearRouteCache();
      return R.Ok;
    },
    proxy_send_local_response(code, dp, dl, bp, bl, hp, hl, grpc) {
      const details = vm.mem.str(u(dp), u(dl));
      const body = vm.mem.bytes(u(bp), u(bl));
      const hdrs = vm.mem.bytes(u(hp), u(hl));
      if (details === null || body === null || hdrs === null) return R.InvalidMemoryAccess;
      const s = vm.ctxOrEffective().stream;
      let r = R.Ok;
      if (s) {
        r = s.sendLocalResponse({
          code: u(code), body, headers: parsePairs(hdrs),
          grpcStatus: minor >= 31 ? (u(grpc) <= 16 ? u(grpc) : undefined) : u(grpc),
          details: details.replace(/\s/g, "_"),
        });
      }
      vm.stopNext = true;
      return r;
    },
    proxy_get_configuration(rp, rl) {
      const root = vm.ctxOrEffective().root;
      return vm.copyOut(root?.plugin?.configuration ?? new Uint8Array(0), u(rp), u(rl));
    },
  };
}

/** Context::getConstMap: maps 0–3 from the stream; 6/7 = the root's http-call response (headers; trailers only if
 *  the response had some) while proxy_on_http_call_response runs (rootContext()->http_call_response_) */
function constMap(c: Ctx, type: number): HeaderList | null {
  if (type === 6 || type === 7) {
    const resp = rootOf(c).httpCallResponse;
    return resp ? (type === 6 ? resp.headers : resp.trailers) : null;
  }
  return c.stream ? c.stream.constMap(type) : null;
}

/** Context::getBuffer: null → NotFound; request/response body are always "present" (maybe empty); 4 = the root's
 *  http-call response body, only inside proxy_on_http_call_response (a string view: set_buffer_bytes → BadArgument) */
function getBuffer(vm: Vm, type: number): Uint8Array | null {
  const ctx = vm.ctxOrEffective();
  switch (type) {
    case 4:
      return rootOf(ctx).httpCallResponse?.body ?? null;
    case 0: case 1:
      return ctx.stream?.liveBody(type) ?? new Uint8Array(0);
    case 6:
      return vm.group.vmConfiguration;
    case 7: {
      const root = ctx.kind === "root" ? ctx : null;
      return root && (root.phase === "create" || root.phase === "configure") ? root.plugin!.configuration : null;
    }
    default:
      return null;
  }
}
