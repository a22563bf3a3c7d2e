import {
  Clock, RateLease, RateRange, decodeClock, encodeClock, decodeRateLease, encodeRateLease, poolCount, poolCopy, poolBytes,
  poolLength, poolLeft, rateLeaseTtl, elapsedMs, clockTick, poolSweep, poolTake, poolSpent, poolAdd, sumRateRange,
  claimSize, parseU64, MAX_BLOCKS, RL_LIVE, RL_NONE,
} from "../../assembly/core/fleet_rate";
import { EtcdKv } from "../../assembly/core/etcd";

function kv(key: string, value: string, rev: i64, lease: string): EtcdKv {
  const k = new EtcdKv();
  k.key = key;
  k.value = value;
  k.modRevision = rev;
  k.lease = lease;
  return k;
}

function pool(): ArrayBuffer {
  return poolCopy(0, 0);
}

/** The pool as stored and read back (a round trip through its bytes). */
function reread(p: ArrayBuffer): ArrayBuffer {
  const b = poolBytes(p);
  const n = poolCount(changetype<usize>(b), b.byteLength);
  expect(n).toBe(poolLength(p));
  return poolCopy(changetype<usize>(b), n);
}

describe("fleet rate: time", () => {
  it("rate lease TTL = ⌈W + 2h + call timeout⌉ s: every key lives W + h after its creation", () => {
    expect(rateLeaseTtl(5000, 1, 1000)).toBe(8);
    expect(rateLeaseTtl(60000, 5, 250)).toBe(71);
    expect(rateLeaseTtl(1000, 1, 10)).toBe(4); // never below etcd's 2 s minimum
  });
  it("elapsed = max(wall difference, ticks × tick_ms): a clock stepped back or late ticks alone do not under-count", () => {
    expect(elapsedMs(10000, 5, 9000, 5, 100)).toBe(1000);  // no tick yet: wall
    expect(elapsedMs(8000, 15, 9000, 5, 100)).toBe(1000);  // wall stepped back: ticks
    expect(elapsedMs(12000, 6, 9000, 5, 100)).toBe(3000);  // late ticks: wall
  });
  it("the process clock advances once per tick period, whichever VM ticks, and at once when the wall clock went back", () => {
    const c = new Clock();
    expect(clockTick(c, 1000, 100)).toBe(true);
    expect(c.ticks).toBe(1);
    expect(clockTick(c, 1050, 100)).toBe(false); // another VM, same period
    expect(clockTick(c, 1100, 100)).toBe(true);
    expect(clockTick(c, 500, 100)).toBe(true);   // stepped back
    expect(c.ticks).toBe(3);
    expect(c.lastWall).toBe(500);
    const b = encodeClock(c);
    const d = decodeClock(changetype<usize>(b), b.byteLength);
    expect(d!.ticks).toBe(3);
    expect(decodeClock(0, 0)!.ticks).toBe(0);
    expect(decodeClock(changetype<usize>(b), 23)).toBeNull();
  });
});

describe("fleet rate: records", () => {
  it("the rate lease record round-trips; malformed is null", () => {
    const r = new RateLease();
    r.state = RL_LIVE;
    r.owner = 3;
    r.id = 0x7fffffffffffffff;
    r.sendWall = 1700000000000;
    r.sendTicks = 42;
    const b = encodeRateLease(r);
    const d = decodeRateLease(changetype<usize>(b), b.byteLength)!;
    expect(d.state).toBe(RL_LIVE);
    expect(d.owner).toBe(3);
    expect(d.id).toBe(0x7fffffffffffffff);
    expect(d.sendWall).toBe(1700000000000);
    expect(d.sendTicks).toBe(42);
    expect(decodeRateLease(0, 0)!.state).toBe(RL_NONE);
    store<u8>(changetype<usize>(b), 9, 3);
    expect(decodeRateLease(changetype<usize>(b), b.byteLength)).toBeNull();
  });
  it("a pool round-trips through its bytes; malformed (left > k, wrong length) is -1; zero bytes are empty", () => {
    const p = pool();
    poolAdd(p, 1000, 1, 4);
    poolAdd(p, 2000, 11, 3);
    poolTake(p);
    poolTake(p);
    const b = poolBytes(p);
    expect(b.byteLength).toBe(8 + 2 * 24);
    expect(poolCount(changetype<usize>(b), b.byteLength)).toBe(2);
    const d = reread(p);
    expect(poolLeft(d, 0)).toBe(2);
    expect(poolLeft(d, 1)).toBe(3);
    expect(poolCount(0, 0)).toBe(0);
    expect(poolCount(changetype<usize>(b), b.byteLength - 1)).toBe(-1);
    store<u32>(changetype<usize>(b) + 8, 9, 20); // left 9 > k 4
    expect(poolCount(changetype<usize>(b), b.byteLength)).toBe(-1);
  });
});

describe("fleet rate: the token pool", () => {
  it("tokens are spent oldest block first and expire unspent h after the claim's send", () => {
    const p = pool();
    poolAdd(p, 1000, 10, 2);
    poolAdd(p, 1500, 15, 2);
    expect(poolTake(p)).toBe(true);
    expect(poolTake(p)).toBe(true);
    expect(poolLeft(p, 0)).toBe(0);
    expect(poolTake(p)).toBe(true);
    expect(poolLeft(p, 1)).toBe(1);
    expect(poolSpent(p)).toBe(3);
    expect(poolSweep(p, 1999, 19, 100, 1000)).toBe(0);   // 999 ms after the first send
    expect(poolSweep(p, 2000, 19, 100, 1000)).toBe(0);   // the first block goes (spent): nothing expired unused
    expect(poolLength(p)).toBe(1);
    expect(poolSweep(p, 1600, 25, 100, 1000)).toBe(1);   // wall stepped back, but 10 ticks passed: the rest expires
    expect(poolLength(p)).toBe(0);
    expect(poolTake(p)).toBe(false);
  });
  it("an expired block behind a younger one goes too (claims of two VMs confirmed out of order)", () => {
    const p = pool();
    poolAdd(p, 1500, 15, 1); // confirmed first, sent later
    poolAdd(p, 1000, 10, 3);
    expect(poolSweep(p, 2100, 21, 100, 1000)).toBe(3);
    expect(poolLength(p)).toBe(1);
    expect(poolLeft(p, 0)).toBe(1);
  });
  it("a full pool drops its oldest block to take a new claim (unspent tokens count as expired)", () => {
    const p = pool();
    for (let i = 0; i < MAX_BLOCKS; i++) poolAdd(p, u64(i), 0, 2);
    expect(poolTake(p)).toBe(true); // from the oldest block: 1 left there
    expect(poolAdd(p, 99, 0, 5)).toBe(1);
    expect(poolLength(p)).toBe(MAX_BLOCKS);
    expect(poolLeft(p, MAX_BLOCKS - 1)).toBe(5);
    expect(poolLeft(p, 0)).toBe(2);
    expect(poolLength(reread(p))).toBe(MAX_BLOCKS);
  });
});

describe("fleet rate: claims", () => {
  it("a range sums the claims and counts distinct holders (this one included)", () => {
    const pre = "/p/rate/0/";
    const kvs = [
      kv(pre + "000000000000000a/1.5.0", "3", 12, "77"),
      kv(pre + "000000000000000a/1.5.1", "2", 9, "78"),
      kv(pre + "000000000000000b/2.5.0", "4", 15, "79"),
    ];
    const r = new RateRange();
    sumRateRange(kvs, pre, "000000000000000c", 20, r);
    expect(r.sum).toBe(9);
    expect(r.holders).toBe(3);
    sumRateRange(kvs, pre, "000000000000000a", 20, r);
    expect(r.holders).toBe(2);
    kvs.push(kv(pre + "000000000000000b/2.6.0", "x", 16, "79"));
    sumRateRange(kvs, pre, "000000000000000a", 20, r);
    expect(r.bad).toBe(1);
    expect(r.sum).toBe(29); // a malformed value counts as the whole limit
    sumRateRange(new Array<EtcdKv>(0), pre, "000000000000000a", 20, r);
    expect(r.sum).toBe(0);
    expect(r.holders).toBe(1);
  });
  it("claim size: the demand, at least 1, at most requests / (2 × holders), cut to the room left", () => {
    expect(claimSize(0, 1, 20, 0)).toBe(1);
    expect(claimSize(7, 1, 20, 0)).toBe(7);
    expect(claimSize(50, 1, 20, 0)).toBe(10);
    expect(claimSize(50, 3, 20, 0)).toBe(3);
    expect(claimSize(50, 30, 20, 0)).toBe(1);
    expect(claimSize(5, 1, 20, 18)).toBe(2);
    expect(claimSize(5, 1, 20, 20)).toBe(0);
    expect(claimSize(5, 1, 20, 25)).toBe(0);
  });
  it("lease ids: decimal int64 only", () => {
    expect(parseU64("7587869912456")).toBe(7587869912456);
    expect(parseU64("9223372036854775807")).toBe(9223372036854775807);
    expect(parseU64("")).toBe(0);
    expect(parseU64("12a")).toBe(0);
    expect(parseU64("18446744073709551615")).toBe(0);
  });
});
