import { gcra, intervalUs, ceilSeconds, RateDecision } from "../../assembly/core/rate";

const d = new RateDecision();

describe("GCRA rate limit", () => {
  it("computes the emission interval", () => {
    expect(intervalUs(60000, 50)).toBe(1200000);
    expect(intervalUs(1000, 3)).toBe(333333);
    expect(intervalUs(1, 1000000)).toBe(1);
  });
  it("allows exactly `burst` requests at one instant, then rejects", () => {
    const t = intervalUs(60000, 50);
    let tat: u64 = 0;
    const now: u64 = 1_000_000_000_000;
    for (let i = 0; i < 50; i++) {
      gcra(tat, now, t, 50, d);
      expect(d.allowed).toBe(true);
      expect(d.remaining).toBe(49 - i);
      tat = d.newTat;
    }
    gcra(tat, now, t, 50, d);
    expect(d.allowed).toBe(false);
    expect(d.retryAfterUs).toBe(t);           // one interval until the next request passes
    expect(ceilSeconds(d.retryAfterUs)).toBe(2); // 1.2 s rounds up
    expect(d.newTat).toBe(tat);               // a rejection does not change the state
  });
  it("lets one request through per interval after the burst (no window edge)", () => {
    const t: u64 = 1000000;
    const now: u64 = 5_000_000_000;
    let tat: u64 = 0;
    gcra(tat, now, t, 2, d); tat = d.newTat;
    gcra(tat, now, t, 2, d); tat = d.newTat;
    gcra(tat, now, t, 2, d); expect(d.allowed).toBe(false);
    gcra(tat, now + t - 1, t, 2, d); expect(d.allowed).toBe(false);
    expect(d.retryAfterUs).toBe(1);
    gcra(tat, now + t, t, 2, d); expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(0);
  });
  it("refills to full after burst·T of silence", () => {
    const t: u64 = 1000;
    gcra(0, 10_000_000, t, 10, d);
    const tat = d.newTat;
    gcra(tat, 10_000_000 + 10 * t, t, 10, d);
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(9);
  });
  it("a clock stepped back (stored TAT beyond reach): one request now, then one per T; no stall, no new burst", () => {
    const t: u64 = 1000;
    const hour: u64 = 3_600_000_000;
    let tat: u64 = 0;
    const now: u64 = 10 * hour;
    for (let i = 0; i < 3; i++) { gcra(tat, now, t, 3, d); tat = d.newTat; } // burst used up
    const back = now - hour;
    gcra(tat, back, t, 3, d);
    expect(d.allowed).toBe(true, "not stalled for an hour");
    expect(d.remaining).toBe(0, "no fresh burst");
    tat = d.newTat;
    gcra(tat, back, t, 3, d);
    expect(d.allowed).toBe(false);
    expect(d.retryAfterUs).toBe(t);
    gcra(tat, back + t, t, 3, d);
    expect(d.allowed).toBe(true);
    gcra(u64.MAX_VALUE - 5, 1_000_000, t, 3, d);
    expect(d.allowed).toBe(true, "a corrupt far-future value does not lock the key");
    expect(d.remaining).toBe(0);
  });
  it("a clock stepped forward refills at most one burst", () => {
    const t: u64 = 1000;
    let tat: u64 = 0;
    const now: u64 = 5_000_000;
    for (let i = 0; i < 4; i++) { gcra(tat, now, t, 4, d); tat = d.newTat; }
    const fwd = now + 3_600_000_000;
    let n = 0;
    for (let i = 0; i < 10; i++) { gcra(tat, fwd, t, 4, d); if (d.allowed) { n++; tat = d.newTat; } }
    expect(n).toBe(4);
  });
  it("a TAT just past reach (VMs reading the clock a moment apart) is an ordinary rejection", () => {
    gcra(1_000_000 + 3000 + 500, 1_000_000, 1000, 3, d);
    expect(d.allowed).toBe(false);
  });
  it("rounds Retry-After up and never to 0", () => {
    expect(ceilSeconds(0)).toBe(1);
    expect(ceilSeconds(1)).toBe(1);
    expect(ceilSeconds(1000000)).toBe(1);
    expect(ceilSeconds(1000001)).toBe(2);
  });
});
