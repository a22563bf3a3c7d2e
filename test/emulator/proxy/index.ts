// The Envoy-like loopback proxy (see proxy.ts). Entry point for tests, e2e targets and the demo.
export { startProxy, resolveWasmPath, ProxyStartError, DEFAULT_CONFIG_PATH, REPO_ROOT } from "./proxy.ts";
export type { ProxyOptions, RunningProxy, EndpointState, DemoState } from "./proxy.ts";
export { parseBootstrapYaml, readBootstrap, BootstrapError, durationMs } from "./bootstrap.ts";
export type { ProxyBootstrap, WasmFilterConfig } from "./bootstrap.ts";
export { parseStatsText } from "./stats.ts";
