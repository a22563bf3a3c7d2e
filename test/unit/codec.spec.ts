// Shared-data value codecs (assembly/core/codec.ts): round trips, and corrupt/truncated/foreign bytes → null / -1.
import { Ledger, Leases, encodeLedger, decodeLedger, encodeRate, decodeRate, encodeLeases, decodeLeases, fnv1a, MAGIC, VERSION, KIND_SLOT, KIND_RATE, BEAT_GAUGE, beatGauge } from "../../assembly/core/codec";

function sample(): Ledger {
  const l = new Ledger();
  l.name = "ws-echo-0.é";
  l.rejected = 0x0102030405;
  l.add(3, 7);
  l.add(9, 1);
  return l;
}

function dec(b: ArrayBuffer, len: i32): Ledger | null { return decodeLedger(changetype<usize>(b), len); }

function poke(b: ArrayBuffer, at: i32, v: u8): ArrayBuffer {
  const c = b.slice(0);
  store<u8>(changetype<usize>(c) + at, v);
  return c;
}

function padded(b: ArrayBuffer): ArrayBuffer {
  const c = new ArrayBuffer(b.byteLength + 1);
  memory.copy(changetype<usize>(c), changetype<usize>(b), b.byteLength);
  return c;
}

describe("ledger values", () => {
  it("round trip: name (UTF-8), rejected counter, per-VM shares", () => {
    const b = encodeLedger(sample());
    const l = dec(b, b.byteLength);
    expect(l).not.toBeNull();
    if (l !== null) {
      expect(l.name).toBe("ws-echo-0.é");
      expect(l.rejected).toBe(0x0102030405);
      expect(l.total()).toBe(8);
      expect(l.countOf(3)).toBe(7);
      expect(l.countOf(9)).toBe(1);
      expect(l.countOf(4)).toBe(0);
    }
    expect(load<u8>(changetype<usize>(b))).toBe(MAGIC);
    expect(load<u8>(changetype<usize>(b), 1)).toBe(VERSION);
    expect(load<u8>(changetype<usize>(b), 2)).toBe(KIND_SLOT);
  });
  it("zero bytes = the provisioned empty ledger", () => {
    const l = decodeLedger(0, 0);
    expect(l).not.toBeNull();
    if (l !== null) { expect(l.total()).toBe(0); expect(l.name).toBe(""); }
  });
  it("every truncation and one extra byte → null", () => {
    const b = encodeLedger(sample());
    for (let n = 1; n < b.byteLength; n++) expect(dec(b, n)).toBeNull();
    const p = padded(b);
    expect(dec(p, p.byteLength)).toBeNull();
  });
  it("wrong magic, version or kind → null", () => {
    const b = encodeLedger(sample());
    expect(dec(poke(b, 0, 0x58), b.byteLength)).toBeNull();
    expect(dec(poke(b, 1, 2), b.byteLength)).toBeNull();
    expect(dec(poke(b, 2, KIND_RATE), b.byteLength)).toBeNull();
    const r = encodeRate(5);
    expect(dec(r, r.byteLength)).toBeNull();
  });
  it("vm id 0 or a duplicate vm → null; a zero count is dropped", () => {
    const l = new Ledger();
    l.add(5, 1);
    l.add(6, 2);
    const b = encodeLedger(l);
    const shares = 3 + 2 + 0 + 8 + 2;
    expect(dec(poke(b, shares, 0), b.byteLength)).toBeNull();      // vm 5 → 0
    expect(dec(poke(b, shares + 8, 5), b.byteLength)).toBeNull();  // vm 6 → 5 (duplicate)
    const z = dec(poke(b, shares + 4, 0), b.byteLength);           // count of vm 5 → 0
    expect(z).not.toBeNull();
    if (z !== null) { expect(z.vms.length).toBe(1); expect(z.total()).toBe(2); }
  });
  it("a name length beyond the value → null", () => {
    const b = encodeLedger(sample());
    expect(dec(poke(b, 3, 0xff), b.byteLength)).toBeNull();
    expect(dec(poke(b, 4, 0x7f), b.byteLength)).toBeNull();
  });
});

describe("rate values", () => {
  it("round trip; empty = 0", () => {
    const b = encodeRate(1700000000123456);
    expect(decodeRate(changetype<usize>(b), b.byteLength)).toBe(1700000000123456);
    expect(decodeRate(0, 0)).toBe(0);
  });
  it("truncated, padded, foreign or out-of-range values → -1", () => {
    const b = encodeRate(77);
    for (let n = 1; n < b.byteLength; n++) expect(decodeRate(changetype<usize>(b), n)).toBe(-1);
    const p = padded(b);
    expect(decodeRate(changetype<usize>(p), p.byteLength)).toBe(-1);
    const k = poke(b, 2, KIND_SLOT);
    expect(decodeRate(changetype<usize>(k), k.byteLength)).toBe(-1);
    const big = encodeRate(u64.MAX_VALUE);
    expect(decodeRate(changetype<usize>(big), big.byteLength)).toBe(-1);
    const l = encodeLedger(new Ledger());
    expect(decodeRate(changetype<usize>(l), l.byteLength)).toBe(-1);
  });
});

describe("lease values", () => {
  it("round trip of one VM; empty = no VM", () => {
    const l = new Leases();
    expect(l.beat(4, 1, 0)).toBe(false);
    expect(l.beat(4, 2, 7)).toBe(true);
    const b = encodeLeases(l);
    const d = decodeLeases(changetype<usize>(b), b.byteLength);
    expect(d).not.toBeNull();
    if (d !== null) {
      expect(d.vms.length).toBe(1);
      expect(d.vms[0]).toBe(4);
      expect(d.beats[0]).toBe(BEAT_GAUGE | u64(7) << 32 | 2);
      expect(beatGauge(d.beats[0])).toBe(7);
    }
    const e = decodeLeases(0, 0);
    expect(e).not.toBeNull();
    if (e !== null) expect(e.vms.length).toBe(0);
  });
  it("truncated, padded, vm 0 or a ledger value → null", () => {
    const l = new Leases();
    l.beat(4, 99, 0);
    const b = encodeLeases(l);
    for (let n = 1; n < b.byteLength; n++) expect(decodeLeases(changetype<usize>(b), n)).toBeNull();
    const p = padded(b);
    expect(decodeLeases(changetype<usize>(p), p.byteLength)).toBeNull();
    const z = poke(b, 5, 0);
    expect(decodeLeases(changetype<usize>(z), z.byteLength)).toBeNull();
    const g = encodeLedger(sample());
    expect(decodeLeases(changetype<usize>(g), g.byteLength)).toBeNull();
  });
  it("beat: the low 32 bits are the VM's beat number, the gauge share above them", () => {
    const l = new Leases();
    l.beat(1, 5000, 3);
    expect(u32(l.beats[0])).toBe(5000);
    l.beat(1, 5001, 3);
    expect(u32(l.beats[0])).toBe(5001);
    expect(beatGauge(l.beats[0])).toBe(3);
  });
  it("beat: the gauge share is clamped to 0…2^31−1; an older module's value (bit 63 clear) has none", () => {
    const l = new Leases();
    l.beat(1, 5000, -4);
    expect(beatGauge(l.beats[0])).toBe(0);
    l.beat(1, 6000, 0x1_0000_0000);
    expect(beatGauge(l.beats[0])).toBe(0x7fffffff);
    expect(beatGauge(1700000000000)).toBe(-1);
  });
});

describe("fnv1a", () => {
  it("is the 32-bit FNV-1a over UTF-16 code units, low byte first", () => {
    expect(fnv1a("")).toBe(0x811c9dc5);
    let h: u32 = 0x811c9dc5;
    h ^= 0x61; h *= 0x01000193; h ^= 0; h *= 0x01000193;
    expect(fnv1a("a")).toBe(h);
    expect(fnv1a("ab") != fnv1a("ba")).toBe(true);
  });
});
