import { IdTable } from "../../assembly/core/idtable";

class Box {
  constructor(public v: u32) {}
}

let seed: u32 = 0x2545f491;
function rnd(): u32 { // xorshift32
  seed ^= seed << 13;
  seed ^= seed >> 17;
  seed ^= seed << 5;
  return seed;
}

// The reference is a fixed array indexed by id, and nothing grows in the specs but the table itself: growing arrays
// and Maps trip rtrace false positives on AS 0.17 (ledger.spec.ts).
const N: u32 = 4096;

/** Every id below N is found with its reference object, or not found when the reference has none. */
function agrees(t: IdTable<Box>, ref: Array<Box | null>): bool {
  let n = 0;
  for (let id: u32 = 1; id < N; id++) {
    const want = unchecked(ref[id]);
    const got = t.find(id);
    if (want === null) {
      if (got !== null || t.has(id)) return false;
    } else {
      n++;
      if (got !== want || !t.has(id) || t.get(id).v != id) return false;
    }
  }
  return t.size == n;
}

describe("IdTable", () => {
  it("stores, finds, replaces and deletes by id", () => {
    const t = new IdTable<Box>();
    expect(t.size).toBe(0);
    expect(t.has(7)).toBe(false);
    expect(t.find(7)).toBeNull();
    const a = new Box(7);
    t.set(7, a);
    expect(t.has(7)).toBe(true);
    expect(t.get(7)).toBe(a);
    expect(t.size).toBe(1);
    const b = new Box(70);
    t.set(7, b); // replaced, not added
    expect(t.get(7)).toBe(b);
    expect(t.size).toBe(1);
    expect(t.delete(8)).toBe(false);
    expect(t.delete(7)).toBe(true);
    expect(t.delete(7)).toBe(false);
    expect(t.has(7)).toBe(false);
    expect(t.size).toBe(0);
  });

  it("ignores id 0, the mark of an empty slot", () => {
    const t = new IdTable<Box>();
    t.set(0, new Box(0));
    expect(t.size).toBe(0);
    expect(t.has(0)).toBe(false);
    expect(t.find(0)).toBeNull();
    expect(t.delete(0)).toBe(false);
    t.set(1, new Box(1));
    expect(t.has(0)).toBe(false);
  });

  it("keeps the objects it holds alive after the caller's references are gone", () => {
    const t = new IdTable<Box>();
    for (let i: u32 = 1; i <= 100; i++) t.set(i, new Box(i));
    for (let i = 0; i < 100; i++) new Box(999); // garbage that would reuse freed blocks
    let ok = true;
    for (let i: u32 = 1; i <= 100; i++) if (t.get(i).v != i) ok = false;
    expect(ok).toBe(true);
  });

  it("agrees with a reference over 20,000 random sets and deletes while growing and shrinking", () => {
    const t = new IdTable<Box>();
    const ref = new Array<Box | null>(N);
    for (let id: u32 = 0; id < N; id++) unchecked(ref[id] = null);
    let ok = true;
    for (let i = 0; i < 20000; i++) {
      const id = (rnd() % (N - 1)) + 1; // dense: many collisions, long probe runs, deletes inside runs
      if (rnd() % 3 == 0) {
        if (t.delete(id) != (unchecked(ref[id]) !== null)) ok = false;
        unchecked(ref[id] = null);
      } else {
        const b = new Box(id);
        t.set(id, b);
        unchecked(ref[id] = b);
      }
      if (i % 2000 == 1999 && !agrees(t, ref)) ok = false;
    }
    expect(ok).toBe(true);
    for (let id: u32 = 1; id < N; id++) {
      if (unchecked(ref[id]) === null) continue;
      if (!t.delete(id)) ok = false;
      unchecked(ref[id] = null);
    }
    expect(ok).toBe(true);
    expect(t.size).toBe(0);
    expect(agrees(t, ref)).toBe(true);
  });

  it("handles a run of consecutive ids held open while newer ids come and go (Envoy's context ids)", () => {
    const t = new IdTable<Box>();
    const ref = new Array<Box | null>(N);
    for (let id: u32 = 0; id < N; id++) unchecked(ref[id] = null);
    for (let id: u32 = 1; id <= 1000; id++) { const b = new Box(id); t.set(id, b); unchecked(ref[id] = b); }
    for (let id: u32 = 1001; id < N; id++) { // each new stream ends right after the next one starts
      const b = new Box(id);
      t.set(id, b);
      unchecked(ref[id] = b);
      if (id > 1001) { expect(t.delete(id - 1)).toBe(true); unchecked(ref[id - 1] = null); }
    }
    expect(agrees(t, ref)).toBe(true);
    for (let id: u32 = 1; id <= 1000; id += 2) { t.delete(id); unchecked(ref[id] = null); }
    expect(agrees(t, ref)).toBe(true);
  });
});
