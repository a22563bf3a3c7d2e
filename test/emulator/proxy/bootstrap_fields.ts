// FieldReader: strict readers for single bootstrap fields (allowed keys, lists, strings, ports, durations, addresses).
import type { SocketAddress } from "./bootstrap_types.ts";

export type Obj = Record<string, unknown>;

/** "300s", "0.25s", {seconds, nanos} → milliseconds. */
export function durationMs(v: unknown): number | undefined {
  if (typeof v === "string") {
    const m = /^(\d+)(\.\d{1,9})?s$/.exec(v.trim());
    if (!m) return undefined;
    return Number(m[1]) * 1000 + (m[2] ? Math.round(Number(m[2]) * 1000) : 0);
  }
  if (v && typeof v === "object") {
    const o = v as Obj;
    const s = Number(o.seconds ?? 0);
    const n = Number(o.nanos ?? 0);
    if (Number.isFinite(s) && Number.isFinite(n)) return s * 1000 + Math.round(n / 1e6);
  }
  return undefined;
}

/** Collects every problem (path: why) instead of stopping at the first. */
export class FieldReader {
  problems: string[] = [];

  protected err(path: string, why: string): void {
    this.problems.push(`${path}: ${why}`);
  }

  /** Check v is an object whose keys are all in `allowed`; report every other key. */
  protected obj(path: string, v: unknown, allowed: string[]): Obj | undefined {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      this.err(path, "expected an object");
      return undefined;
    }
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.err(path ? `${path}.${k}` : k, "field not supported by the loopback proxy");
    }
    return o;
  }

  protected list(path: string, v: unknown): unknown[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.err(path, "expected a list");
      return [];
    }
    return v;
  }

  protected str(path: string, v: unknown, required = false): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.err(path, "required");
      return undefined;
    }
    if (typeof v !== "string") {
      this.err(path, "expected a string");
      return undefined;
    }
    return v;
  }

  protected port(path: string, v: unknown): number {
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65535) {
      this.err(path, "expected a port number 0..65535");
      return 0;
    }
    return n;
  }

  protected dur(path: string, v: unknown, dflt: number): number {
    if (v === undefined) return dflt;
    const ms = durationMs(v);
    if (ms === undefined) {
      this.err(path, `expected a duration like "300s"`);
      return dflt;
    }
    return ms;
  }

  protected socketAddress(path: string, v: unknown): SocketAddress | undefined {
    const a = this.obj(path, v, ["socket_address"]);
    if (!a) return undefined;
    const s = this.obj(`${path}.socket_address`, a.socket_address, ["address", "port_value", "protocol"]);
    if (!s) return undefined;
    if (s.protocol !== undefined && s.protocol !== "TCP") this.err(`${path}.socket_address.protocol`, "only TCP");
    return { address: this.str(`${path}.socket_address.address`, s.address, true) ?? "", port: this.port(`${path}.socket_address.port_value`, s.port_value) };
  }

  protected any(path: string, v: unknown, type: string, allowed: string[]): Obj | undefined {
    const o = this.obj(path, v, ["@type", ...allowed]);
    if (!o) return undefined;
    if (o["@type"] !== type) this.err(`${path}.@type`, `expected ${type}`);
    return o;
  }
}
