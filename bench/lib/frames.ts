// WebSocket frames for the frame-inspection bench (RFC 6455 §5.2) and a byte counter for proxy_get_buffer_bytes.
import { Vm } from "../../test/emulator/host/vm.ts";

/** one binary frame, FIN set; masked = client→server */
export function frame(payloadLen: number, masked: boolean, seed = 7): Uint8Array {
  const ext = payloadLen < 126 ? 0 : payloadLen < 65536 ? 2 : 8;
  const head = 2 + ext + (masked ? 4 : 0);
  const f = new Uint8Array(head + payloadLen);
  f[0] = 0x82;
  f[1] = (masked ? 0x80 : 0) | (ext === 0 ? payloadLen : ext === 2 ? 126 : 127);
  const dv = new DataView(f.buffer);
  if (ext === 2) dv.setUint16(2, payloadLen);
  if (ext === 8) dv.setBigUint64(2, BigInt(payloadLen));
  const key = [0x37, 0xfa, 0x21, 0x3d];
  if (masked) f.set(key, 2 + ext);
  for (let i = 0; i < payloadLen; i++) {
    const b = (i * 31 + seed) & 0xff;
    f[head + i] = masked ? b ^ key[i & 3] : b;
  }
  return f;
}

/** `count` frames of `payloadLen` bytes back to back, as one chunk a codec would hand over */
export function chunk(payloadLen: number, count: number, masked: boolean): { data: Uint8Array; frames: number } {
  const one = frame(payloadLen, masked);
  const data = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) data.set(one, i * one.length);
  return { data, frames: count };
}

/** counts bytes the host copies into any VM through proxy_get_buffer_bytes while installed */
export class CopyCounter {
  bytes = 0;
  private restore: (() => void) | null = null;
  install(): void {
    if (this.restore) return;
    const proto = Vm.prototype as unknown as {
      enter(name: string): void;
      copyOut(data: Uint8Array, p: number, l: number): unknown;
    };
    const enter = proto.enter, copyOut = proto.copyOut;
    let current = "";
    const self = this;
    proto.enter = function (this: Vm, name: string): void {
      current = name;
      return enter.call(this, name);
    };
    proto.copyOut = function (this: Vm, data: Uint8Array, p: number, l: number): unknown {
      if (current === "proxy_get_buffer_bytes") self.bytes += data.length;
      current = "";
      return copyOut.call(this, data, p, l);
    };
    this.restore = () => {
      proto.enter = enter;
      proto.copyOut = copyOut;
    };
  }
  uninstall(): void {
    this.restore?.();
    this.restore = null;
  }
}

/** counts host→VM callbacks (proxy_on_*) of every VM while installed */
export class CallbackCounter {
  total = 0;
  /** host → VM calls of the allocator (Envoy's malloc callbacks for the values it returns); not in total */
  allocs = 0;
  private restore: (() => void) | null = null;
  install(): void {
    if (this.restore) return;
    const proto = Vm.prototype as unknown as { invoke: (...a: unknown[]) => number; alloc: (n: number) => number };
    const invoke = proto.invoke, alloc = proto.alloc;
    const self = this;
    proto.invoke = function (this: Vm, ...a: unknown[]): number {
      self.total++;
      return invoke.apply(this, a);
    };
    proto.alloc = function (this: Vm, n: number): number {
      self.allocs++;
      return alloc.call(this, n);
    };
    this.restore = () => { proto.invoke = invoke; proto.alloc = alloc; };
  }
  uninstall(): void {
    this.restore?.();
    this.restore = null;
  }
}
