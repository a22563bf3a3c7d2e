// Headers and body of a local reply (§7.4): Utility::prepareLocalReply as the filter sees it.
import type { HeaderList } from "./api.ts";
import { hmAdd, hmGet, hmRemove, hmReplace } from "./headers.ts";

export interface LocalReplyReq {
  code: number;
  body: Uint8Array;
  headers: HeaderList;
  grpcStatus?: number; // undefined → derived from the HTTP code
  details: string;
}

export const FAIL_STREAM: LocalReplyReq = { code: 503, body: new Uint8Array(0), headers: [], grpcStatus: 14, details: "wasm_fail_stream" };

/** Grpc::Utility::httpToGrpcStatus */
export function httpToGrpc(code: number): number {
  switch (code) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

function percentEncode(b: Uint8Array): string {
  let out = "";
  for (const c of b) {
    if (c < 0x20 || c > 0x7e || c === 0x25) out += "%" + c.toString(16).toUpperCase().padStart(2, "0");
    else out += String.fromCharCode(c);
  }
  return out;
}

export function buildLocalReply(req: LocalReplyReq, requestHeaders: HeaderList | null): { headers: HeaderList; body: Uint8Array } {
  const h: HeaderList = [[":status", String(req.code)]];
  for (const [k, v] of req.headers) hmAdd(h, k.toLowerCase(), v);
  let body = req.body;
  const ct = requestHeaders ? hmGet(requestHeaders, "content-type") : undefined;
  const isGrpc = ct !== undefined && ct.startsWith("application/grpc");
  if (isGrpc) {
    hmReplace(h, ":status", "200");
    hmReplace(h, "content-type", "application/grpc");
    hmReplace(h, "grpc-status", String(req.grpcStatus ?? httpToGrpc(req.code)));
    if (body.length) hmReplace(h, "grpc-message", percentEncode(body));
    hmRemove(h, "content-length");
    body = new Uint8Array(0);
  } else if (body.length > 0) {
    hmReplace(h, "content-length", String(body.length));
    if (hmGet(h, "content-type") === undefined) hmAdd(h, "content-type", "text/plain");
  } else {
    hmRemove(h, "content-length");
    hmRemove(h, "content-type");
  }
  if (requestHeaders && hmGet(requestHeaders, ":method") === "HEAD") body = new Uint8Array(0);
  return { headers: h, body };
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const o = new Uint8Array(a.length + b.length);
  o.set(a, 0);
  o.set(b, a.length);
  return o;
}
