// proxy_http_call and proxy_get_status (Envoy 1.30–1.36). Sources: cpp-host src/exports.cc :: exports::http_call,
// get_status (both act on contextOrEffectiveContext()->root_context()); envoy context.cc :: Context::httpCall,
// getStatus. The request itself and the callbacks are in ../http_call.ts.
import { R, parsePairs } from "../memory.ts";
import type { HeaderList } from "../api.ts";
import type { Ctx } from "../types.ts";
import type { Vm } from "../vm.ts";

type F = (...a: number[]) => number | void;

/** ContextBase::root_context(): a stream's root; a root (or the VM context) is its own */
export const rootOf = (c: Ctx): Ctx => (c.kind === "stream" ? c.root! : c);

export function envHttpImports(vm: Vm): Record<string, F> {
  const u = (x: number) => x >>> 0;
  return {
    proxy_http_call(up, ul, hp, hl, bp, bl, tp, tl, timeout, tokenPtr) {
      const root = rootOf(vm.ctxOrEffective());
      const mem = vm.mem;
      const cluster = mem.str(u(up), u(ul));
      const body = mem.bytes(u(bp), u(bl));
      const hdrs = mem.bytes(u(hp), u(hl));
      const trls = mem.bytes(u(tp), u(tl));
      if (cluster === null || body === null || hdrs === null || trls === null) return R.InvalidMemoryAccess;
      // exports::http_call writes token 0 first, "to verify the memory before starting the async operation"
      if (!mem.setU32(u(tokenPtr), 0)) return R.InvalidMemoryAccess;
      // Context::httpCall(…, int timeout_milliseconds, …): the u32 word as a C int
      const timeoutMs = timeout | 0;
      if (timeoutMs < 0) return R.BadArgument;
      const calls = vm.proc.httpCalls;
      if (!calls.hasCluster(cluster)) return R.BadArgument;
      // buildRequestHeaderMapFromPairs: keys lower-cased (LowerCaseString); malformed pairs parse as empty
      const headers: HeaderList = parsePairs(hdrs).map(([k, v]) => [k.toLowerCase(), v]);
      const has = (k: string) => headers.some(([n]) => n === k);
      // Path(), Method(), Host() — Host() is the :authority entry; a plain `host` header does not count
      if (!has(":path") || !has(":method") || !has(":authority")) return R.BadArgument;
      if (body.length > 0) { // setContentLength replaces whatever the module sent
        const i = headers.findIndex(([n]) => n === "content-length");
        if (i >= 0) {
          headers[i] = ["content-length", String(body.length)];
          for (let j = headers.length - 1; j > i; j--) if (headers[j][0] === "content-length") headers.splice(j, 1);
        } else headers.push(["content-length", String(body.length)]);
      }
      void parsePairs(trls); // message->trailers(...) is set, but AsyncRequestImpl never sends request trailers
      const token = vm.nextHttpCallId(); // consumed even when send() fails below
      if (!calls.send(vm, root, cluster, headers, body, timeoutMs, token)) return R.InternalFailure;
      mem.setU32(u(tokenPtr), token);
      return R.Ok;
    },
    proxy_get_status(codePtr, rp, rl) {
      const root = rootOf(vm.ctxOrEffective());
      if (!vm.mem.setU32(u(codePtr), root.statusCode)) return R.InvalidMemoryAccess;
      return vm.copyOut(Buffer.from(root.statusMessage, "utf8"), u(rp), u(rl));
    },
  };
}
