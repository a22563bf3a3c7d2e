// RFC 6455 frame builders and a split iterator (Envoy hands body callbacks arbitrary TCP chunks, envoy-host.md §8.2).
import { randomBytes } from "node:crypto";

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;                 // default true
  mask?: boolean | Uint8Array;   // true = random key; a 4-byte key; default false
  rsv?: number;                  // 3 bits
}

export function buildFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === "string" ? Buffer.from(spec.payload, "utf8") : Buffer.from(spec.payload ?? []);
  const fin = spec.fin ?? true;
  const maskKey = spec.mask === true ? randomBytes(4) : spec.mask instanceof Uint8Array ? Buffer.from(spec.mask) : null;
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + (maskKey ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f);
  head[1] = (maskKey ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127);
  if (lenBytes === 2) head.writeUInt16BE(len, 2);
  if (lenBytes === 8) head.writeBigUInt64BE(BigInt(len), 2);
  let body = payload;
  if (maskKey) {
    maskKey.copy(head, 2 + lenBytes);
    body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i] ^ maskKey[i & 3];
  }
  return Buffer.concat([head, body]);
}

export const textFrame = (text: string, mask: boolean | Uint8Array = true): Buffer =>
  buildFrame({ opcode: Opcode.text, payload: text, mask });

export const binaryFrame = (data: Uint8Array, mask: boolean | Uint8Array = true): Buffer =>
  buildFrame({ opcode: Opcode.binary, payload: data, mask });

export function closeFrame(code?: number, reason = "", mask: boolean | Uint8Array = true): Buffer {
  const payload = code === undefined ? Buffer.alloc(0) : Buffer.concat([u16(code), Buffer.from(reason, "utf8")]);
  return buildFrame({ opcode: Opcode.close, payload, mask });
}

export const pingFrame = (data = "", mask: boolean | Uint8Array = true): Buffer =>
  buildFrame({ opcode: Opcode.ping, payload: data, mask });

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

/** Every way of cutting `bytes` into two chunks: [a, b] for each split point 0..len. */
export function* splitsInTwo(bytes: Uint8Array): Generator<[Uint8Array, Uint8Array]> {
  for (let i = 0; i <= bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
}

/** Cut `bytes` into chunks of `size` bytes (the last may be shorter). */
export function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += Math.max(1, size)) out.push(bytes.subarray(i, i + Math.max(1, size)));
  return out;
}

/** A WebSocket client handshake request, for raw-socket tests. */
export function upgradeRequest(path: string, host: string, extra: Record<string, string> = {}): string {
  const key = randomBytes(16).toString("base64");
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
  ];
  return lines.join("\r\n") + "\r\n\r\n";
}
