// Probe modules inside the loopback proxy (test/emulator/proxy): one worker VM, the proxy driven by a bootstrap
// derived from envoy/envoy.yaml, raw HTTP/1.1 (and TLS) clients so tests control every header line.
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { parse as parseYaml } from "yaml";
import { EnvoyProcess, encodePairsBytes, type PluginHandleImpl } from "../host/index.ts";
import type { ProcessOptions } from "../host/api.ts";
import { DEFAULT_CONFIG_PATH, startProxy, type ProxyOptions, type RunningProxy } from "../proxy/index.ts";
import { Probe, RES } from "./build.ts";

export const PROP_PTR = 512; // (ptr,len) of property i at PROP_PTR + 8i

type Doc = { static_resources: { listeners: Array<{ filter_chains: Array<Record<string, unknown> & { filters: Array<{ typed_config: Record<string, unknown> }> }> }> } };

/** envoy/envoy.yaml as an object, its Wasm filter unwrapped from the ExtensionWithMatcher (a probe sees every
 *  request, plain ones too); `hcm` / `chain` edit the HCM typed_config and the filter chain */
export function bootstrap(edit: { hcm?: Record<string, unknown>; chain?: Record<string, unknown> } = {}): object {
  const doc = parseYaml(readFileSync(DEFAULT_CONFIG_PATH, "utf8")) as Doc;
  const chain = doc.static_resources.listeners[0].filter_chains[0];
  const hcm = chain.filters[0].typed_config as { http_filters: Array<{ typed_config?: { extension_config?: object } }> };
  hcm.http_filters = hcm.http_filters.map((f) => f.typed_config?.extension_config ?? f);
  Object.assign(chain.filters[0].typed_config, edit.hcm ?? {});
  Object.assign(chain, edit.chain ?? {});
  return doc;
}

/** on_request_headers reads each property path (dotted) into slot i / PROP_PTR+8i, runs `extra`, then answers
 *  200 "ok" itself (StopIteration, as §13.1 requires) — or returns Continue when `forward` */
export function propertyProbe(paths: string[], o: { extra?: (p: Probe) => string; forward?: boolean } = {}): Probe {
  const p = new Probe();
  const calls = paths.map((path, i) =>
    p.store(i, `(call $proxy_get_property ${p.s(path.split(".").join("\0"))} (i32.const ${PROP_PTR + 8 * i}) (i32.const ${PROP_PTR + 8 * i + 4}))`)).join("\n");
  const reply = `(drop (call $proxy_send_local_response (i32.const 200) ${p.s("")} ${p.s("ok")} ${p.s(encodePairsBytes([]))} (i32.const -1))) (i32.const 1)`;
  p.on("proxy_on_request_headers", `${calls}\n${o.extra ? o.extra(p) : ""}\n${o.forward ? "(i32.const 0)" : reply}`);
  return p;
}

export interface InProxy {
  proxy: RunningProxy;
  proc: EnvoyProcess;
  h: PluginHandleImpl;
  /** property i after the last request: status (WasmResult) and bytes */
  prop(i: number): { status: number; value: Buffer };
  u32(addr: number): number;
  close(): Promise<void>;
}

export async function startInProxy(wasm: Uint8Array, config: object, o: Partial<ProxyOptions> = {},
                                   popts: ProcessOptions = {}): Promise<InProxy> {
  const proc = new EnvoyProcess({ concurrency: 1, virtualTime: false, ...popts });
  const h = proc.addPlugin({ wasm }) as PluginHandleImpl;
  const proxy = await startProxy({ config, process: proc, plugin: h, concurrency: 1, listenerPortOverride: 0, adminPortOverride: 0, ...o });
  const mem = () => {
    const m = h.vm(0).mem;
    m.refresh();
    return m;
  };
  return {
    proxy, proc, h,
    u32: (addr) => mem().dv.getUint32(addr, true),
    prop: (i) => {
      const m = mem();
      const status = m.dv.getUint32(RES + 4 * i, true);
      const ptr = m.dv.getUint32(PROP_PTR + 8 * i, true), len = m.dv.getUint32(PROP_PTR + 8 * i + 4, true);
      return { status, value: Buffer.from(status === 0 && len > 0 ? m.bytes(ptr, len)! : new Uint8Array(0)) };
    },
    close: () => proxy.close(),
  };
}

/** one raw HTTP/1.1 exchange: writes `head` (CRLF line ends added), resolves with the response text once the head and
 *  content-length body arrived, or the socket closed, or a 101 head arrived */
export function rawExchange(port: number, lines: string[], o: { tls?: tls.ConnectionOptions } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: net.Socket = o.tls ? tls.connect({ port, host: "127.0.0.1", ...o.tls }) : net.connect(port, "127.0.0.1");
    let buf = "";
    const done = () => {
      s.destroy();
      resolve(buf);
    };
    const timer = setTimeout(() => done(), 3000);
    s.on(o.tls ? "secureConnect" : "connect", () => s.write(lines.join("\r\n") + "\r\n\r\n"));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const m = /content-length: *(\d+)/i.exec(buf.slice(0, end));
      if (/^HTTP\/1\.1 101/.test(buf) || (m && buf.length >= end + 4 + Number(m[1]))) {
        clearTimeout(timer);
        done();
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      if (buf) resolve(buf);
      else reject(e);
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(buf);
    });
  });
}

export const statusLine = (resp: string): string => resp.split("\r\n")[0];
