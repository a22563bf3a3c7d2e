// proxy_http_call and the call-response data (fleet module only; docs/emulator-checklist.md "Fleet groundwork: HTTP
// calls"). Raw imports, every status checked. The response's headers (map 6) and body (buffer 4) exist only inside
// proxy_on_http_call_response.
import * as imp from "@solo-io/proxy-runtime/imports";
import { encodePairs, getBuffer, headerString, outString, OK } from "./abi";
import { utf8Encode } from "../core/utf8";

export const MAP_HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
export const BUF_HTTP_CALL_RESPONSE_BODY: i32 = 4;
// No module-level buffers: the local module imports this file through filter/fleet.ts (calls folded away), and a
// top-level initializer would run in it too.

/** Last proxy_http_call status (OK, BadArgument for an unknown cluster, InternalFailure, …). */
export let httpCallStatus: u32 = 0;

/** POST `body` to `path` on the Envoy cluster `cluster`. Returns the call's token, or 0 when Envoy refused the call
 *  (then no response callback will come; httpCallStatus says why). */
export function httpPost(cluster: string, path: string, body: string, timeoutMs: u32): u32 {
  const c = utf8Encode(cluster);
  const headers = encodePairs([":method", "POST", ":path", path, ":authority", cluster]);
  const b = utf8Encode(body);
  const trailers = encodePairs(new Array<string>(0));
  const token = new ArrayBuffer(4);
  const tp = changetype<usize>(token);
  httpCallStatus = imp.proxy_http_call(changetype<usize>(c), c.byteLength, changetype<usize>(headers), headers.byteLength,
    changetype<usize>(b), b.byteLength, changetype<usize>(trailers), trailers.byteLength, timeoutMs, tp);
  if (httpCallStatus != OK) return 0;
  return load<u32>(tp);
}

/** Inside proxy_on_http_call_response: the response's :status (0 when there is none: a reset). */
export function callStatus(): u32 {
  const s = headerString(MAP_HTTP_CALL_RESPONSE_HEADERS, utf8Encode(":status"));
  if (s === null) return 0;
  const n = I32.parseInt(s);
  return n > 0 && n < 1000 ? u32(n) : 0;
}

/** Inside proxy_on_http_call_response: the body (at most `max` bytes; "" when absent or unreadable). */
export function callBody(size: u32, max: u32): string {
  if (size == 0) return "";
  if (getBuffer(BUF_HTTP_CALL_RESPONSE_BODY, 0, size < max ? size : max) != OK) return "";
  return outString();
}

export function continueRequest(): u32 {
  return imp.proxy_continue_stream(0);
}

export function continueResponse(): u32 {
  return imp.proxy_continue_stream(1);
}
