// Local check of envoy-host §13.1 for the frame tests, until the emulator flags it itself: a body callback that
// called proxy_close_stream must return StopIterationNoBuffer (3); Continue there makes Envoy run the router on a
// destroyed stream. Wraps the in-process host emulator (Vm.call and the stream's closeStream hostcall) and records
// every violation in `closeDefects`. If the emulator's internals moved (it is being rewritten), the guard is not
// installed and installCloseGuard() says why; the emulator then enforces the rule itself.
export const closeDefects: string[] = [];

type AnyFn = (this: Record<string, unknown>, ...a: unknown[]) => unknown;
let state: string | undefined;

export async function installCloseGuard(): Promise<string> {
  if (state !== undefined) return state;
  try {
    // computed specifiers: the typecheck must not depend on emulator internals that may be renamed
    const host = "../emulator/host/";
    type Mod = Record<string, { prototype?: Record<string, unknown> } | undefined>;
    const vmMod = (await import(host + "vm.ts")) as unknown as Mod;
    const srMod = (await import(host + "stream_reply.ts")) as unknown as Mod;
    const vmP = vmMod.Vm?.prototype;
    const srP = srMod.StreamReplies?.prototype;
    if (typeof vmP?.call !== "function" || typeof srP?.closeStream !== "function") {
      return (state = "not installed: the emulator has no Vm.call / StreamReplies.closeStream");
    }
    const call = vmP.call as AnyFn;
    const closeStream = srP.closeStream as AnyFn;
    srP.closeStream = function (this: Record<string, unknown>, ...a: unknown[]) {
      const vm = this.vm as Record<string, unknown> | undefined;
      if (vm) vm.__wsgClosed = true;
      return closeStream.apply(this, a);
    };
    vmP.call = function (this: Record<string, unknown>, name: unknown, ...a: unknown[]) {
      const depth = (this.__wsgDepth as number | undefined) ?? 0;
      if (depth === 0) this.__wsgClosed = false;
      this.__wsgDepth = depth + 1;
      let r: unknown;
      try {
        r = call.call(this, name, ...a);
      } finally {
        this.__wsgDepth = depth;
      }
      if (depth === 0 && this.__wsgClosed && /^proxy_on_(request|response)_body$/.test(String(name)) && r !== 3) {
        closeDefects.push(`${String(name)} returned ${String(r)} after proxy_close_stream (must be 3, StopIterationNoBuffer)`);
      }
      return r;
    };
    return (state = "installed");
  } catch (e) {
    return (state = `not installed: ${(e as Error).message}`);
  }
}
