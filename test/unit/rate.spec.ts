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
  it("treats an impossible stored TAT (corrupt, clock jump) as unused", () => {
    gcra(u64.MAX_VALUE - 5, 1_000_000, 1000, 3, d);
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(2);
  });
  it("rounds Retry-After up and never to 0", () => {
    expect(ceilSeconds(0)).toBe(1);
    expect(ceilSeconds(1)).toBe(1);
    expect(ceilSeconds(1000000)).toBe(1);
    expect(ceilSeconds(1000001)).toBe(2);
  });
});
