// Protobuf binary encoding of the few messages a property read can return whole (§6.2): envoy.config.core.v3.Node
// {id=1, cluster=2, metadata=3 Struct}, envoy.config.core.v3.Metadata {filter_metadata=1 map<string, Struct>},
// google.protobuf.Struct/Value/ListValue.
import { utf8Enc } from "./memory.ts";
import type { NodeInfo } from "./types.ts";

class W {
  parts: number[] = [];
  varint(n: number): void {
    while (n > 127) {
      this.parts.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    this.parts.push(n);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
  }
  string(field: number, s: string): void {
    this.bytes(field, utf8Enc.encode(s));
  }
  double(field: number, d: number): void {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, d, true);
    for (const x of b) this.parts.push(x);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function value(x: unknown): Uint8Array {
  const w = new W();
  if (x === null || x === undefined) { w.tag(1, 0); w.varint(0); }
  else if (typeof x === "number") w.double(2, x);
  else if (typeof x === "string") w.string(3, x);
  else if (typeof x === "boolean") { w.tag(4, 0); w.varint(x ? 1 : 0); }
  else if (Array.isArray(x)) {
    const l = new W();
    for (const e of x) l.bytes(1, value(e));
    w.bytes(6, l.done());
  } else w.bytes(5, struct(x as Record<string, unknown>));
  return w.done();
}

export function struct(o: Record<string, unknown>): Uint8Array {
  const w = new W();
  for (const [k, v] of Object.entries(o)) {
    const e = new W();
    e.string(1, k);
    e.bytes(2, value(v));
    w.bytes(1, e.done());
  }
  return w.done();
}

export function encodeNode(n: NodeInfo): Uint8Array {
  const w = new W();
  if (n.id) w.string(1, n.id);
  if (n.cluster) w.string(2, n.cluster);
  if (n.metadata && Object.keys(n.metadata).length) w.bytes(3, struct(n.metadata));
  return w.done();
}

export function encodeMetadata(md: Map<string, Record<string, unknown>>): Uint8Array {
  const w = new W();
  for (const [ns, obj] of md) {
    const e = new W();
    e.string(1, ns);
    e.bytes(2, struct(obj));
    w.bytes(1, e.done());
  }
  return w.done();
}
