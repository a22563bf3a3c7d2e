// Public entry of the proxy-wasm host emulator (Envoy 1.30–1.36, see ../../../docs/emulator-checklist.md).
export * from "./api.ts";
export { EnvoyProcess, PluginHandleImpl } from "./process.ts";
export { StreamImpl } from "./stream.ts";
export { SharedDataStore } from "./shared_data.ts";
export { StatsStore } from "./stats.ts";
export { parsePairs, encodePairsBytes } from "./memory.ts";
