// Entry of build/ws-governor-fleet.wasm (compiled with FLEET=1): the local module's exports plus the HTTP call
// callback that fleet mode needs (docs/fleet.md §9). The local module has neither this export nor proxy_http_call.
import { onHttpCallResponse } from "./filter/fleet";
import { fleetViewResponse } from "./filter/fleet_view";

export * from "./index";

export function proxy_on_http_call_response(root: u32, token: u32, headers: u32, body: u32, trailers: u32): void {
  if (fleetViewResponse(root, token, body)) return; // a stats put or a metrics scrape (docs/fleet.md §6)
  onHttpCallResponse(root, token, headers, body);
}
