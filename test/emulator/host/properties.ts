// proxy_get_property (§6): path split on \0, availability per callback (§6.3), CEL value encoding (§6.2).
import { R, encodePairsBytes, utf8Enc } from "./memory.ts";
import { hmByteSize, hmGet } from "./headers.ts";
import { encodeMetadata, encodeNode } from "./protobuf.ts";
import type { DownstreamConnection, HeaderList } from "./api.ts";
import type { Ctx } from "./types.ts";
import type { Vm } from "./vm.ts";

export type PV =
  | { t: "str"; v: string }
  | { t: "bytes"; v: Uint8Array }
  | { t: "int"; v: bigint }
  | { t: "bool"; v: boolean }
  | { t: "double"; v: number }
  | { t: "null" }
  | { t: "map"; v: Map<string, PV> }
  | { t: "list"; v: PV[] }
  | { t: "msg"; fields: Map<string, PV>; ser: () => Uint8Array };

const str = (v: string): PV => ({ t: "str", v });
const int = (v: number | bigint): PV => ({ t: "int", v: BigInt(v) });

export function jsonToPV(x: unknown): PV {
  if (x === null || x === undefined) return { t: "null" };
  if (typeof x === "string") return str(x);
  if (typeof x === "number") return { t: "double", v: x };
  if (typeof x === "boolean") return { t: "bool", v: x };
  if (Array.isArray(x)) return { t: "list", v: x.map(jsonToPV) };
  const m = new Map<string, PV>();
  for (const [k, v] of Object.entries(x as Record<string, unknown>)) m.set(k, jsonToPV(v));
  return { t: "map", v: m };
}

function headersPV(list: HeaderList): PV {
  const m = new Map<string, PV>();
  for (const [k, v] of list) {
    const prev = m.get(k);
    m.set(k, str(prev ? (prev as { v: string }).v + "," + v : v));
  }
  return { t: "map", v: m };
}

/** serializeValue: null → SerializationFailure */
export function serialize(v: PV): Uint8Array | null {
  switch (v.t) {
    case "str": return utf8Enc.encode(v.v);
    case "bytes": return v.v;
    case "int": {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, v.v), true);
      return b;
    }
    case "double": {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v.v, true);
      return b;
    }
    case "bool": return new Uint8Array([v.v ? 1 : 0]);
    case "null": return null;
    case "msg": return v.ser();
    case "map": {
      const pairs: Array<[Uint8Array, Uint8Array]> = [];
      for (const [k, x] of v.v) {
        const s = serialize(x);
        if (s === null) return null;
        pairs.push([utf8Enc.encode(k), s]);
      }
      return encodePairsBytes(pairs);
    }
    case "list": {
      const pairs: Array<[Uint8Array, Uint8Array]> = [];
      for (const x of v.v) {
        const s = serialize(x);
        if (s === null) return null;
        pairs.push([s, new Uint8Array(0)]);
      }
      return encodePairsBytes(pairs);
    }
  }
}

function nodePV(vm: Vm): PV {
  const node = vm.proc.node;
  const fields = new Map<string, PV>();
  fields.set("id", str(node.id ?? ""));
  fields.set("cluster", str(node.cluster ?? ""));
  fields.set("metadata", jsonToPV(node.metadata ?? {}));
  return { t: "msg", fields, ser: () => encodeNode(node) };
}

function addrPV(a: string | undefined): PV | undefined {
  if (a === undefined) return undefined;
  const i = a.lastIndexOf(":");
  const port = i >= 0 ? Number(a.slice(i + 1)) : 0;
  const m = new Map<string, PV>([["address", str(a)], ["port", int(port)]]);
  return { t: "map", v: m };
}

/** ConnectionWrapper (§13.2): mtls and requested_server_name always; the TLS attributes only on a TLS connection,
 *  SAN attributes only when the certificate has one (the first is returned) */
function connectionPV(c: DownstreamConnection): PV {
  const t = c.tls;
  const m = new Map<string, PV>([["id", int(c.id)], ["mtls", { t: "bool", v: t?.peerCertificatePresented ?? false }],
    ["requested_server_name", str(t?.sni ?? "")]]);
  if (t) {
    m.set("tls_version", str(t.version));
    m.set("subject_local_certificate", str(t.subjectLocal));
    m.set("subject_peer_certificate", str(t.subjectPeer));
    const first = (k: string, l: string[]) => { if (l.length > 0) m.set(k, str(l[0])); };
    first("uri_san_local_certificate", t.uriSanLocal);
    first("uri_san_peer_certificate", t.uriSanPeer);
    first("dns_san_local_certificate", t.dnsSanLocal);
    first("dns_san_peer_certificate", t.dnsSanPeer);
    if (t.sha256PeerDigest !== "") m.set("sha256_peer_certificate_digest", str(t.sha256PeerDigest));
  }
  return { t: "map", v: m };
}

/** the value for the first path segment, or undefined (NotFound) */
function top(vm: Vm, ctx: Ctx, seg: string): PV | undefined {
  const minor = vm.proc.minor;
  const p = ctx.plugin;
  switch (seg) {
    case "plugin_name": return p ? str(p.name) : undefined;
    case "plugin_root_id": return p ? str(p.rootId) : undefined;
    case "plugin_vm_id": return p ? str(p.vmId) : undefined;
  }
  const s = ctx.stream;
  if (seg === "xds") {
    const m = new Map<string, PV>([["node", nodePV(vm)]]);
    if (s) {
      const cluster = s.route.clusterName ?? s.upstream?.clusterName;
      if (cluster !== undefined) m.set("cluster_name", str(cluster));
      if (s.route.routeName !== undefined) m.set("route_name", str(s.route.routeName));
    }
    return { t: "map", v: m };
  }
  if (minor <= 32 && seg === "node") return nodePV(vm);
  if (!s) return undefined;
  if (minor <= 32) {
    if (seg === "cluster_name") { const c = s.route.clusterName ?? s.upstream?.clusterName; return c === undefined ? undefined : str(c); }
    if (seg === "route_name") return s.route.routeName === undefined ? undefined : str(s.route.routeName);
  }
  switch (seg) {
    case "source": return addrPV(s.conn.sourceAddress);
    case "destination": return addrPV(s.conn.destinationAddress);
    case "connection_id": return int(s.conn.id);
    case "connection": return connectionPV(s.conn);
    case "upstream": {
      if (!s.upstream) return undefined;
      const u = addrPV(s.upstream.port !== undefined && !/:\d+$/.test(s.upstream.address)
        ? `${s.upstream.address}:${s.upstream.port}` : s.upstream.address)!;
      return u;
    }
    case "request": {
      const m = new Map<string, PV>();
      const h = s.constMap(0);
      if (h) {
        const path = hmGet(h, ":path");
        if (path !== undefined) {
          m.set("path", str(path));
          const q = path.indexOf("?");
          m.set("url_path", str(q >= 0 ? path.slice(0, q) : path));
          m.set("query", str(q >= 0 ? path.slice(q + 1) : ""));
        }
        const opt = (k: string, name: string) => {
          const v = hmGet(h, name);
          if (v !== undefined) m.set(k, str(v));
        };
        opt("host", ":authority"); opt("scheme", ":scheme"); opt("method", ":method");
        opt("referer", "referer"); opt("useragent", "user-agent"); opt("id", "x-request-id");
        m.set("headers", headersPV(h));
      }
      if (s.headersSeen) {
        m.set("time", int(BigInt(Math.round(s.startMs * 1e6))));
        m.set("protocol", str(s.conn.protocol === "HTTP/2" ? "HTTP/2" : s.conn.protocol));
        const cl = h ? hmGet(h, "content-length") : undefined;
        const size = s.reqBodyBytes > 0 || cl === undefined ? s.reqBodyBytes : Number(cl);
        m.set("size", int(size));
        m.set("total_size", int(size + (s.reqMap ? hmByteSize(s.reqMap) : 0)));
      }
      if (s.logPhase) m.set("duration", int(BigInt(Math.round((s.endMono - s.startMono) * 1e6))));
      return { t: "map", v: m };
    }
    case "response": {
      const m = new Map<string, PV>();
      if (s.responseCode !== undefined) m.set("code", int(s.responseCode));
      if (s.codeDetails !== undefined) m.set("code_details", str(s.codeDetails));
      const h = s.constMap(2);
      if (h) m.set("headers", headersPV(h));
      if (s.responseCode !== undefined) {
        m.set("size", int(s.respBodyBytes));
        m.set("flags", int(0));
      }
      const t = s.constMap(3);
      if (t) m.set("trailers", headersPV(t));
      return { t: "map", v: m };
    }
    case "metadata": {
      const md = s.dynamicMetadata;
      const fm = new Map<string, PV>();
      for (const [ns, obj] of md) fm.set(ns, jsonToPV(obj));
      return { t: "msg", fields: new Map([["filter_metadata", { t: "map", v: fm }]]), ser: () => encodeMetadata(md) };
    }
    case "filter_state": {
      const m = new Map<string, PV>();
      for (const [k, v] of s.filterState) m.set(k, { t: "bytes", v });
      return { t: "map", v: m };
    }
  }
  const fs = s.filterState.get("wasm." + seg);
  return fs ? { t: "bytes", v: fs } : undefined;
}

const WHOLE_ACTIVATION = new Set(["request", "response", "connection", "upstream", "source", "destination", "xds"]);

export function getProperty(vm: Vm, ctx: Ctx, pathBytes: Uint8Array): { r: R; v?: Uint8Array } {
  let path = Buffer.from(pathBytes).toString("utf8");
  if (path.endsWith("\0")) path = path.slice(0, -1);
  const segs = path.split("\0");
  if (ctx.kind !== "stream" && segs[0] !== "xds" && !segs[0].startsWith("plugin_") && !(segs[0] === "node" && vm.proc.minor <= 32)) {
    return { r: R.NotFound };
  }
  if (ctx.kind !== "stream" && segs[0] === "xds" && segs[1] !== "node") return { r: R.NotFound };
  let v = top(vm, ctx, segs[0]);
  if (v === undefined) return { r: R.NotFound };
  if (segs.length === 1 && WHOLE_ACTIVATION.has(segs[0])) return { r: R.SerializationFailure };
  for (let i = 1; i < segs.length && v; i++) {
    const seg: string = segs[i];
    const cur: PV = v;
    if (cur.t === "map") v = cur.v.get(seg);
    else if (cur.t === "msg") v = cur.fields.get(seg);
    else if (cur.t === "list") v = /^\d+$/.test(seg) ? cur.v[Number(seg)] : undefined;
    else v = undefined;
  }
  if (v === undefined) return { r: R.NotFound };
  const out = serialize(v);
  if (out === null) return { r: R.SerializationFailure };
  return { r: R.Ok, v: out };
}

export function headersToMap(list: HeaderList): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of list) m.set(k, v);
  return m;
}
