// Entry of build/ws-governor-lean.wasm (compiled with FRAMES=0): the local module without frame inspection and without
// proxy_on_request_body / proxy_on_response_body. Envoy enters a module only through the exports it has
// (envoy-host.md §2.1: every callback export is optional), so with this module no request or response body chunk, and
// no WebSocket message after the 101, ever crosses into Wasm. Configurations with frames.enabled are refused.
export { proxy_abi_version_0_2_1, malloc, free, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
         proxy_on_tick, proxy_on_request_headers, proxy_on_response_headers, proxy_on_delete } from "./index";
