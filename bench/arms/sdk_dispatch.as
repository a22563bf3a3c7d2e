// Comparison arm: the SDK's own dispatcher (@solo-io/proxy-runtime 0.1.8), a filter that only Continues.
// `export *` brings the SDK's proxy_on_* exports, malloc and free (toolchain.md §6 item 18, §7): every stream goes
// through ensureContext / getContext and their eager debug strings (context_map.keys().join, O(live contexts)).
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext } from "@solo-io/proxy-runtime";

class PassStream extends Context {
  constructor(id: u32, root: PassRoot) { super(id, root); }
}

class PassRoot extends RootContext {
  createContext(id: u32): Context { return new PassStream(id, this); }
  // never call super.onConfigure: 0.1.8 passes the size as an out-pointer (toolchain.md §6 item 8)
  onConfigure(size: usize): bool { return true; }
}

registerRootContext((id: u32): RootContext => new PassRoot(id), "ws_governor");
