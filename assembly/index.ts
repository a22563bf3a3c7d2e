import "./host/abort";
export { malloc, free } from "@solo-io/proxy-runtime/malloc";
export function proxy_abi_version_0_2_0(): void {}
