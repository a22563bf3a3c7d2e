// Probe modules and helpers for the proxy_http_call conformance tests (http_call*.test.ts): a probe that makes
// calls from on_request_headers (or on_tick), records what each proxy_on_http_call_response saw, and optionally resumes
// the paused stream from the root via proxy_set_effective_context + proxy_continue_stream; a tiny node:http server on
// 127.0.0.1 (port 0) for the other end.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { encodePairsBytes, parsePairs, type PluginHandleImpl } from "../host/index.ts";
import type { HeaderList } from "../host/api.ts";
import { Probe } from "./build.ts";
import { bytesAt, u32 } from "./helpers.ts";

export const STREAM_ID = 300;   // the stream context id, stored by on_request_headers
export const TOKENS = 304;      // token_ptr of call i: TOKENS + 4i
export const CALLBACKS = 600;   // number of proxy_on_http_call_response calls so far
export const REC = 2048;        // record of callback n at REC + 128n (32 u32 fields, see CallRecord)
const TMP = 700;                // scratch for ptr/len outputs

export interface CallSpec {
  cluster?: string;              // default "etcd"
  headers?: HeaderList;          // default GET / on :authority etcd
  body?: string;
  trailers?: HeaderList;
  timeoutMs?: number;            // raw u32 word; default 1000
  tokenPtr?: number;             // default TOKENS + 4i
}
export interface ProbeSpec {
  calls?: CallSpec[];            // made in order from on_request_headers (or on_tick); default one default call
  /** on_request_headers return value; default 1 (StopIteration → StopAll while the call is outstanding) */
  ret?: number;
  /** make the calls from the root context in proxy_on_tick (period tickMs set in on_configure) */
  tickMs?: number;
  abi?: "0_1_0" | "0_2_0" | "0_2_1";
  /** make the calls in proxy_on_configure (every VM: canary, main, workers) */
  fromConfigure?: boolean;
  /** in the callback: set_effective_context(stored stream id) then continue_stream(0) */
  resume?: boolean;
}

export const ETCD_GET: HeaderList = [[":method", "GET"], [":path", "/v3/kv/range"], [":authority", "etcd"]];

const enc = (l: HeaderList) => encodePairsBytes(l.map(([k, v]) => [Buffer.from(k, "latin1"), Buffer.from(v, "latin1")]));

export function callExpr(p: Probe, c: CallSpec, i: number): string {
  return `(call $proxy_http_call ${p.s(c.cluster ?? "etcd")} ${p.s(enc(c.headers ?? ETCD_GET))} ${p.s(c.body ?? "")} ` +
    `${p.s(enc(c.trailers ?? []))} (i32.const ${c.timeoutMs ?? 1000}) (i32.const ${c.tokenPtr ?? TOKENS + 4 * i}))`;
}

/** slots: 2i = result of call i, 2i+1 = its token; 20..24 = what a stream callback sees outside the http-call callback
 *  (get_buffer_bytes(4), get_header_map_value(6), get_header_map_pairs(6) + len, get_status code) */
export function httpCallProbe(o: ProbeSpec = {}): Uint8Array {
  const p = new Probe({ abi: o.abi });
  const calls = (o.calls ?? [{}]).map((c, i) =>
    `${p.store(2 * i, callExpr(p, c, i))} ${p.store(2 * i + 1, `(i32.load (i32.const ${c.tokenPtr !== undefined && c.tokenPtr < 65536 * 2 ? c.tokenPtr : TOKENS + 4 * i}))`)}`).join("\n");
  const outside = `${p.store(20, `(call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (i32.const 100) (i32.const ${TMP}) (i32.const ${TMP + 4}))`)}
    ${p.store(21, `(call $proxy_get_header_map_value (i32.const 6) ${p.s(":status")} (i32.const ${TMP}) (i32.const ${TMP + 4}))`)}
    ${p.store(22, `(call $proxy_get_header_map_pairs (i32.const 6) (i32.const ${TMP}) (i32.const ${TMP + 4}))`)}
    ${p.store(23, `(i32.load (i32.const ${TMP + 4}))`)}
    (drop (call $proxy_get_status (i32.const ${TMP + 8}) (i32.const ${TMP}) (i32.const ${TMP + 4})))
    ${p.store(24, `(i32.load (i32.const ${TMP + 8}))`)}`;
  if (o.fromConfigure) {
    p.on("proxy_on_configure", `${calls} (i32.const 1)`);
    p.on("proxy_on_request_headers", `(i32.store (i32.const ${STREAM_ID}) (local.get $p0)) ${outside} (i32.const ${o.ret ?? 0})`);
  } else if (o.tickMs) {
    p.on("proxy_on_configure", `(drop (call $proxy_set_tick_period_milliseconds (i32.const ${o.tickMs}))) (i32.const 1)`);
    p.on("proxy_on_tick", `(drop (call $proxy_set_tick_period_milliseconds (i32.const 0))) ${calls}`);
    p.on("proxy_on_request_headers", `(i32.store (i32.const ${STREAM_ID}) (local.get $p0)) ${outside} (i32.const ${o.ret ?? 0})`);
  } else {
    p.on("proxy_on_request_headers", `(i32.store (i32.const ${STREAM_ID}) (local.get $p0)) ${outside} ${calls} (i32.const ${o.ret ?? 1})`);
  }
  const f = (i: number, e: string) => `(i32.store (i32.add (local.get $b) (i32.const ${4 * i})) ${e})`;
  const at = (i: number) => `(i32.add (local.get $b) (i32.const ${4 * i}))`;
  p.on("proxy_on_http_call_response", `(local $b i32)
    (local.set $b (i32.add (i32.const ${REC}) (i32.mul (i32.load (i32.const ${CALLBACKS})) (i32.const 128))))
    (i32.store (i32.const ${CALLBACKS}) (i32.add (i32.load (i32.const ${CALLBACKS})) (i32.const 1)))
    ${f(0, "(local.get $p0)")} ${f(1, "(local.get $p1)")} ${f(2, "(local.get $p2)")} ${f(3, "(local.get $p3)")} ${f(4, "(local.get $p4)")}
    ${f(5, `(call $proxy_get_header_map_value (i32.const 6) ${p.s(":status")} ${at(6)} ${at(7)})`)}
    ${f(8, `(call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (local.get $p3) ${at(9)} ${at(10)})`)}
    ${f(11, `(call $proxy_get_header_map_pairs (i32.const 6) ${at(12)} ${at(13)})`)}
    ${f(14, `(call $proxy_get_header_map_pairs (i32.const 7) ${at(15)} ${at(16)})`)}
    ${f(17, `(call $proxy_get_status ${at(18)} ${at(19)} ${at(20)})`)}
    ${f(21, `(call $proxy_set_buffer_bytes (i32.const 4) (i32.const 0) (i32.const 0) ${p.s("x")})`)}
    ${f(22, `(call $proxy_add_header_map_value (i32.const 6) ${p.s("a")} ${p.s("b")})`)}
    ${f(23, `(call $proxy_get_header_map_size (i32.const 6) ${at(31)})`)}
    ${f(24, `(call $proxy_get_buffer_status (i32.const 4) ${at(25)} ${at(26)})`)}
    ${f(27, `(call $proxy_get_header_map_value (i32.const 7) ${p.s("x-t")} ${at(28)} ${at(29)})`)}
    ${o.resume ? `${f(30, "(call $proxy_set_effective_context (i32.load (i32.const " + STREAM_ID + ")))")}
      (drop (call $proxy_continue_stream (i32.const 0)))` : ""}`);
  return p.build();
}

export interface CallRecord {
  root: number; token: number; nHeaders: number; bodyLen: number; nTrailers: number;
  statusR: number; status: string; bodyR: number; body: string; headers: HeaderList; trailers: HeaderList;
  getStatusR: number; statusCode: number; statusMessage: string;
  setBufferR: number; addHeaderR: number; headerSizeR: number; bufferStatusR: number; bufferStatusLen: number;
  trailerValueR: number; effectiveR: number;
}

/** what callback n recorded on VM `w` */
export function record(h: PluginHandleImpl, w: number | "main", n: number): CallRecord {
  const g = (i: number) => u32(h, w, REC + 128 * n + 4 * i);
  const str = (r: number, pi: number) => (r === 0 && g(pi + 1) > 0 ? Buffer.from(bytesAt(h, w, g(pi), g(pi + 1))).toString("latin1") : "");
  const pairs = (pi: number) => (g(pi + 1) > 0 ? parsePairs(bytesAt(h, w, g(pi), g(pi + 1))) : []);
  return {
    root: g(0), token: g(1), nHeaders: g(2), bodyLen: g(3), nTrailers: g(4),
    statusR: g(5), status: str(g(5), 6), bodyR: g(8), body: str(g(8), 9), headers: pairs(12), trailers: pairs(15),
    getStatusR: g(17), statusCode: g(18), statusMessage: str(g(17), 19),
    setBufferR: g(21), addHeaderR: g(22), headerSizeR: g(23), bufferStatusR: g(24), bufferStatusLen: g(25),
    trailerValueR: g(27), effectiveR: g(30),
  };
}
export const callbacks = (h: PluginHandleImpl, w: number | "main"): number => u32(h, w, CALLBACKS);

// ---- the other end: a node:http server on 127.0.0.1, port 0 ----

export interface Seen { method: string; url: string; headers: HeaderList; body: string; trailers: HeaderList }
export interface TestServer { port: number; seen: Seen[]; close(): Promise<void> }

export async function testServer(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const pairs = (raw: string[]): HeaderList => {
        const out: HeaderList = [];
        for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
        return out;
      };
      const s: Seen = { method: req.method ?? "", url: req.url ?? "", headers: pairs(req.rawHeaders),
        body: Buffer.concat(chunks).toString("latin1"), trailers: pairs(req.rawTrailers) };
      seen.push(s);
      handler(req, res, s);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}

/** a loopback port nothing listens on (bound, then closed) */
export async function deadPort(): Promise<number> {
  const s = await testServer(() => {});
  await s.close();
  return s.port;
}
