// CAS ledger (assembly/core/ledger.ts) over a fake SharedStore with Envoy's cas rules and injectable conflicts.
import { Outcome, Result, Beat, Watch, acquireCounter, acquirePod, release, reclaim, heartbeat, nextVmId, readCount, podKey, clientKey, bucketOf } from "../../assembly/core/ledger";
import { Ledger, Leases, encodeLedger, decodeLedger, encodeLeases, decodeLeases, fnv1a } from "../../assembly/core/codec";
import { SharedStore, ST_OK, ST_NOT_FOUND, ST_CAS_MISMATCH } from "../../assembly/core/store";

const CAP: i32 = 64;

export class FakeStore extends SharedStore {
  // fixed capacity, no push: growing arrays in specs trips rtrace false positives on AS 0.17
  keys: StaticArray<string> = new StaticArray<string>(CAP);
  vals: StaticArray<ArrayBuffer> = new StaticArray<ArrayBuffer>(CAP);
  cass: StaticArray<u32> = new StaticArray<u32>(CAP);
  n: i32 = 0;
  nextCas: u32 = 1;
  conflicts: i32 = 0;
  gets: i32 = 0;
  sets: i32 = 0;
  private held: ArrayBuffer = new ArrayBuffer(0);

  private find(key: string): i32 {
    for (let i = 0; i < this.n; i++) if (this.keys[i] == key) return i;
    return -1;
  }

  private fresh(): u32 {
    const c = this.nextCas;
    this.nextCas = this.nextCas + 1;
    if (this.nextCas == 0) this.nextCas = 1;
    return c;
  }

  get(key: string): u32 {
    this.gets++;
    const i = this.find(key);
    if (i < 0) { this.valuePtr = 0; this.valueLen = 0; this.cas = 0; return ST_NOT_FOUND; }
    this.held = this.vals[i].slice(0); // a copy owned by the store until the next get or done()
    this.valuePtr = changetype<usize>(this.held);
    this.valueLen = this.held.byteLength;
    this.cas = this.cass[i];
    return ST_OK;
  }

  set(key: string, value: ArrayBuffer, cas: u32): u32 {
    this.sets++;
    const i = this.find(key);
    if (i < 0) {
      this.keys[this.n] = key;
      this.vals[this.n] = value.slice(0);
      this.cass[this.n] = this.fresh();
      this.n++;
      return ST_OK;
    }
    if (this.conflicts > 0) {
      this.conflicts--;
      this.cass[i] = this.fresh(); // the other writer's set
    }
    if (cas != 0 && cas != this.cass[i]) return ST_CAS_MISMATCH;
    this.vals[i] = value.slice(0);
    this.cass[i] = this.fresh();
    return ST_OK;
  }

  setValue(key: string, cas: u32): u32 {
    return this.set(key, this.held, cas);
  }

  done(): void {
    this.held = new ArrayBuffer(0);
    this.valuePtr = 0;
    this.valueLen = 0;
  }

  /** test helpers */
  put(key: string, value: ArrayBuffer): void { this.set(key, value, 0); }
  raw(key: string): ArrayBuffer | null {
    const i = this.find(key);
    if (i < 0) return null;
    return this.vals[i];
  }
  casOf(key: string): u32 {
    const i = this.find(key);
    return i < 0 ? 0 : this.cass[i];
  }
}

// ---- helpers (module-level: AS has no closures) ----
const res = new Result();
let db = new FakeStore();

function emptyKey(key: string): void { db.put(key, new ArrayBuffer(0)); }

function ledgerOf(key: string): Ledger {
  const b = db.raw(key);
  expect(b).not.toBeNull();
  const l = decodeLedger(changetype<usize>(b as ArrayBuffer), (b as ArrayBuffer).byteLength);
  expect(l).not.toBeNull();
  return l as Ledger;
}

function provisionPods(n: i32): void {
  for (let i = 0; i < n; i++) emptyKey(podKey("t", i));
}

function ledgerWith(name: string, vm: u32, count: u32): ArrayBuffer {
  const l = new Ledger();
  l.name = name;
  if (count > 0) l.add(vm, count);
  return encodeLedger(l);
}

function leasesWith(vm: u32): Leases {
  const l = new Leases();
  l.beat(vm, 1, 0);
  return l;
}

function garbage(): ArrayBuffer {
  const b = new ArrayBuffer(6);
  store<u8>(changetype<usize>(b), 0x57);
  store<u8>(changetype<usize>(b), 1, 1);
  store<u8>(changetype<usize>(b), 1, 2);
  store<u8>(changetype<usize>(b), 0xff, 3);
  return b;
}

describe("acquireCounter", () => {
  it("admits up to the cap, then OverLimit without writing", () => {
    db = new FakeStore();
    emptyKey("k");
    for (let i: u32 = 0; i < 3; i++) {
      res.reset();
      acquireCounter(db, "k", 7, 3, false, 8, res);
      expect(res.outcome).toBe(Outcome.Admitted);
      expect(res.total).toBe(u64(i + 1));
    }
    const cas = db.casOf("k");
    res.reset();
    acquireCounter(db, "k", 9, 3, false, 8, res);
    expect(res.outcome).toBe(Outcome.OverLimit);
    expect(res.total).toBe(3);
    expect(db.casOf("k")).toBe(cas, "counters do not count rejections");
    const l = ledgerOf("k");
    expect(l.countOf(7)).toBe(3);
    expect(l.countOf(9)).toBe(0);
  });
  it("cap 0 is no cap; force (shadow) admits past the cap", () => {
    db = new FakeStore();
    emptyKey("k");
    for (let i = 0; i < 5; i++) { res.reset(); acquireCounter(db, "k", 1, 0, false, 8, res); }
    expect(ledgerOf("k").total()).toBe(5);
    res.reset();
    acquireCounter(db, "k", 2, 2, true, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.total).toBe(6);
  });
  it("retries CAS conflicts and counts them", () => {
    db = new FakeStore();
    emptyKey("k");
    db.conflicts = 5;
    res.reset();
    acquireCounter(db, "k", 1, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.retries).toBe(5);
    expect(ledgerOf("k").total()).toBe(1);
  });
  it("exhausted attempts → Contention, nothing written", () => {
    db = new FakeStore();
    emptyKey("k");
    db.conflicts = 8;
    res.reset();
    acquireCounter(db, "k", 1, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.Contention);
    expect(res.retries).toBe(7);
    expect(ledgerOf("k").total()).toBe(0);
  });
  it("missing key → Error (keys are only created at configure)", () => {
    db = new FakeStore();
    res.reset();
    acquireCounter(db, "nope", 1, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.Error);
    expect(db.raw("nope")).toBeNull();
  });
  it("a corrupt value counts as empty (corrupt++) and is rewritten", () => {
    db = new FakeStore();
    db.put("k", garbage());
    res.reset();
    acquireCounter(db, "k", 4, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.corrupt).toBe(1);
    expect(ledgerOf("k").countOf(4)).toBe(1);
  });
});

describe("acquirePod", () => {
  it("claims the hashed slot for a pod; counts rejections in the slot", () => {
    db = new FakeStore();
    provisionPods(8);
    const home = i32(fnv1a("pod-a") % 8);
    for (let i = 0; i < 2; i++) { res.reset(); acquirePod(db, "t", 8, "pod-a", -1, 3, 2, false, 8, res); }
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.slot).toBe(home);
    res.reset();
    acquirePod(db, "t", 8, "pod-a", -1, 3, 2, false, 8, res);
    expect(res.outcome).toBe(Outcome.OverLimit);
    const l = ledgerOf(podKey("t", home));
    expect(l.name).toBe("pod-a");
    expect(l.total()).toBe(2);
    expect(l.rejected).toBe(1);
  });
  it("probes past slots TAKEN by other pods with live counts; reuses a drained slot", () => {
    db = new FakeStore();
    provisionPods(4);
    const home = i32(fnv1a("pod-x") % 4);
    db.put(podKey("t", home), ledgerWith("other", 9, 2));
    res.reset();
    acquirePod(db, "t", 4, "pod-x", -1, 1, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.slot).toBe((home + 1) % 4);
    expect(ledgerOf(podKey("t", home)).name).toBe("other");
    // a drained slot (other name, no count) is claimed
    db = new FakeStore();
    provisionPods(4);
    db.put(podKey("t", home), ledgerWith("old", 9, 0));
    res.reset();
    acquirePod(db, "t", 4, "pod-x", -1, 1, 10, false, 8, res);
    expect(res.slot).toBe(home);
    expect(ledgerOf(podKey("t", home)).name).toBe("pod-x");
  });
  it("the hint is tried first", () => {
    db = new FakeStore();
    provisionPods(4);
    const hint = i32((fnv1a("pod-h") + 2) % 4);
    res.reset();
    acquirePod(db, "t", 4, "pod-h", hint, 1, 10, false, 8, res);
    expect(res.slot).toBe(hint);
  });
  it("every slot held by other pods → NoSlot", () => {
    db = new FakeStore();
    for (let i = 0; i < 3; i++) db.put(podKey("t", i), ledgerWith("p" + i.toString(), 5, 1));
    res.reset();
    acquirePod(db, "t", 3, "pod-z", -1, 1, 10, false, 8, res);
    expect(res.outcome).toBe(Outcome.NoSlot);
  });
  it("contention on the pod's slot is reported, not probed past", () => {
    db = new FakeStore();
    provisionPods(4);
    db.conflicts = 100;
    res.reset();
    acquirePod(db, "t", 4, "pod-c", -1, 1, 10, false, 3, res);
    expect(res.outcome).toBe(Outcome.Contention);
    expect(res.retries).toBe(2);
  });
});

describe("release", () => {
  it("removes exactly one share of the VM; a second release is an orphan, never negative", () => {
    db = new FakeStore();
    provisionPods(4);
    res.reset();
    acquirePod(db, "t", 4, "pod-a", -1, 6, 0, false, 8, res);
    const key = podKey("t", res.slot);
    res.reset();
    acquirePod(db, "t", 4, "pod-a", -1, 7, 0, false, 8, res);
    res.reset();
    release(db, key, "pod-a", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.total).toBe(1);
    res.reset();
    release(db, key, "pod-a", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Orphan);
    const l = ledgerOf(key);
    expect(l.total()).toBe(1);
    expect(l.countOf(7)).toBe(1);
  });
  it("a slot renamed to another pod → Orphan; missing key → Orphan; corrupt → Orphan + corrupt", () => {
    db = new FakeStore();
    db.put("s", ledgerWith("pod-b", 6, 1));
    res.reset();
    release(db, "s", "pod-a", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Orphan);
    expect(ledgerOf("s").total()).toBe(1);
    res.reset();
    release(db, "missing", "", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Orphan);
    db.put("g", garbage());
    res.reset();
    release(db, "g", "", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Orphan);
    expect(res.corrupt).toBe(1);
  });
  it("conflicts are retried; exhaustion → Contention (the caller keeps it pending)", () => {
    db = new FakeStore();
    db.put("c", ledgerWith("", 6, 2));
    db.conflicts = 3;
    res.reset();
    release(db, "c", "", 6, 4, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.retries).toBe(3);
    db.conflicts = 4;
    res.reset();
    release(db, "c", "", 6, 4, res);
    expect(res.outcome).toBe(Outcome.Contention);
    expect(ledgerOf("c").countOf(6)).toBe(1);
  });
});

describe("in place: counts change where they lie", () => {
  it("a release leaves the VM's entry at 0; its next admission reuses it without growing the value", () => {
    db = new FakeStore();
    db.put("s", ledgerWith("pod-é", 6, 1)); // a non-ASCII name is compared in its UTF-8 form
    const size = (db.raw("s") as ArrayBuffer).byteLength;
    res.reset();
    release(db, "s", "pod-é", 6, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.total).toBe(0);
    expect((db.raw("s") as ArrayBuffer).byteLength).toBe(size);
    expect(ledgerOf("s").vms.length).toBe(0); // readers skip a count of 0
    res.reset();
    release(db, "s", "pod-é", 6, 8, res); // 0 stays 0: an orphan, nothing written
    expect(res.outcome).toBe(Outcome.Orphan);
    db.put(podKey("t", 0), db.raw("s") as ArrayBuffer); // the pod table's slot 0 holds that value
    res.reset();
    acquirePod(db, "t", 1, "pod-é", 0, 6, 0, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.total).toBe(1);
    expect((db.raw(podKey("t", 0)) as ArrayBuffer).byteLength).toBe(size);
    expect(ledgerOf(podKey("t", 0)).countOf(6)).toBe(1);
  });
  it("a new entry drops the entries at 0; a rejection is counted in place", () => {
    db = new FakeStore();
    const l = new Ledger();
    l.name = "pod-a";
    l.add(1, 1); l.add(2, 1);
    db.put("p", encodeLedger(l));
    res.reset();
    release(db, "p", "pod-a", 1, 8, res); // vm 1 back at 0, in place
    const before = (db.raw("p") as ArrayBuffer).byteLength;
    db.put(podKey("t", 0), db.raw("p") as ArrayBuffer); // the pod table's slot 0 holds that value
    res.reset();
    acquirePod(db, "t", 1, "pod-a", 0, 3, 2, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.total).toBe(2);
    const k = podKey("t", 0);
    expect((db.raw(k) as ArrayBuffer).byteLength).toBe(before); // vm 1's 0 dropped, vm 3 added
    expect(ledgerOf(k).countOf(1)).toBe(0);
    expect(ledgerOf(k).countOf(3)).toBe(1);
    res.reset();
    acquirePod(db, "t", 1, "pod-a", 0, 4, 2, false, 8, res);
    expect(res.outcome).toBe(Outcome.OverLimit);
    expect((db.raw(k) as ArrayBuffer).byteLength).toBe(before);
    expect(ledgerOf(k).rejected).toBe(1);
  });
  it("a duplicate VM id is corrupt even when one of its counts is 0", () => {
    db = new FakeStore();
    const l = new Ledger();
    l.add(5, 1); l.add(6, 2);
    const b = encodeLedger(l);
    store<u32>(changetype<usize>(b) + 15 + 8, 5); // vm 6 → 5
    store<u32>(changetype<usize>(b) + 15 + 12, 0); // with count 0
    db.put("c", b);
    res.reset();
    acquireCounter(db, "c", 5, 0, false, 8, res);
    expect(res.outcome).toBe(Outcome.Admitted);
    expect(res.corrupt).toBe(1);
    expect(ledgerOf("c").total()).toBe(1); // rewritten fresh: the corrupt value counted as empty
  });
  it("reclaim sets the dead VMs' counts to 0 in place", () => {
    db = new FakeStore();
    const l = new Ledger();
    l.name = "pod-a";
    l.add(1, 3); l.add(2, 4);
    db.put("p", encodeLedger(l));
    const size = (db.raw("p") as ArrayBuffer).byteLength;
    res.reset();
    expect(reclaim(db, "p", leasesWith(2), 8, res)).toBe(3);
    expect((db.raw("p") as ArrayBuffer).byteLength).toBe(size);
    expect(ledgerOf("p").vms.length).toBe(1);
    expect(ledgerOf("p").total()).toBe(4);
  });
});

describe("reclaim, heartbeat, expiry", () => {
  it("reclaim removes the shares of VMs not in the live set and returns how many", () => {
    db = new FakeStore();
    const l = new Ledger();
    l.name = "pod-a";
    l.add(1, 3); l.add(2, 4); l.add(3, 1);
    db.put("p", encodeLedger(l));
    const live = new Leases();
    live.beat(2, 1, 0);
    res.reset();
    expect(reclaim(db, "p", live, 8, res)).toBe(4);
    const after = ledgerOf("p");
    expect(after.total()).toBe(4);
    expect(after.countOf(2)).toBe(4);
    expect(after.name).toBe("pod-a");
    res.reset();
    expect(reclaim(db, "p", live, 8, res)).toBe(0);
  });
  it("reclaim: -1 when attempts run out, 0 and corrupt++ on a corrupt value", () => {
    db = new FakeStore();
    db.put("p", ledgerWith("", 9, 2));
    db.conflicts = 3;
    res.reset();
    expect(reclaim(db, "p", leasesWith(1), 3, res)).toBe(-1);
    expect(ledgerOf("p").total()).toBe(2);
    db.put("g", garbage());
    res.reset();
    expect(reclaim(db, "g", leasesWith(1), 3, res)).toBe(0);
    expect(res.corrupt).toBe(1);
  });
  it("heartbeat registers, then refreshes (one VM)", () => {
    db = new FakeStore();
    const b = new Beat();
    const w = new Watch();
    heartbeat(db, "vms", 1, 3, w, 8, 0, b, "vmsr");
    expect(b.ok).toBe(true);
    expect(b.wasPresent).toBe(false);
    heartbeat(db, "vms", 1, 3, w, 8, 0, b, "vmsr");
    expect(b.ok).toBe(true);
    expect(b.wasPresent).toBe(true);
    expect(b.dead.length).toBe(0);
  });
  it("heartbeat over a corrupt table counts the reset before starting afresh; over a missing one it does not", () => {
    db = new FakeStore();
    const b = new Beat();
    heartbeat(db, "vms", 1, 3, new Watch(), 8, 0, b, "vmsr");
    expect(b.ok).toBe(true);
    expect(b.resets).toBe(0, "a missing table is the first registration, not a reset");
    expect(readCount(db, "vmsr")).toBe(0);
    db.put("vms", garbage());
    heartbeat(db, "vms", 2, 3, new Watch(), 8, 0, b, "vmsr");
    expect(b.ok).toBe(true);
    expect(b.resets).toBe(1);
    expect(readCount(db, "vmsr")).toBe(1);
    expect(b.live.vms.length).toBe(1, "the fresh table holds the resetting VM only");
    heartbeat(db, "vms", 1, 3, new Watch(), 8, 0, b, "vmsr");
    expect(b.wasPresent).toBe(false, "VM 1 is missing from the fresh table");
    expect(b.resets).toBe(0, "the table decoded: no second reset");
    expect(readCount(db, "vmsr")).toBe(1);
  });
  it("a VM whose value stays the same for lease_ticks beats of another is expired by exactly one beater", () => {
    db = new FakeStore();
    const b = new Beat();
    const w1 = new Watch(), w2 = new Watch(), w3 = new Watch();
    heartbeat(db, "vms", 2, 3, w2, 8, 0, b, "vmsr");
    heartbeat(db, "vms", 1, 3, w1, 8, 0, b, "vmsr"); // sees 2's value: quiet 0
    heartbeat(db, "vms", 1, 3, w1, 8, 0, b, "vmsr"); // quiet 1
    heartbeat(db, "vms", 1, 3, w1, 8, 0, b, "vmsr"); // quiet 2
    expect(b.dead.length).toBe(0, "two quiet beats are not yet expiry");
    heartbeat(db, "vms", 3, 3, w3, 8, 0, b, "vmsr");
    heartbeat(db, "vms", 1, 3, w1, 8, 0, b, "vmsr"); // quiet 3
    expect(b.dead.length).toBe(1, "unchanged for lease_ticks beats");
    expect(b.dead[0]).toBe(2);
    heartbeat(db, "vms", 3, 3, w3, 8, 0, b, "vmsr");
    expect(b.dead.length).toBe(0, "a second beater does not see the dead VM again");
    heartbeat(db, "vms", 2, 3, w2, 8, 0, b, "vmsr");
    expect(b.wasPresent).toBe(false, "the expired VM learns it was declared dead");
  });
  it("the sweeper learns what the dead VM had published as its gauge share", () => {
    db = new FakeStore();
    const b = new Beat();
    const w1 = new Watch(), w2 = new Watch();
    heartbeat(db, "vms", 2, 2, w2, 8, 41, b, "vmsr");
    heartbeat(db, "vms", 1, 2, w1, 8, 5, b, "vmsr");
    heartbeat(db, "vms", 1, 2, w1, 8, 5, b, "vmsr");
    expect(b.dead.length).toBe(0);
    heartbeat(db, "vms", 1, 2, w1, 8, 5, b, "vmsr");
    expect(b.dead.length).toBe(1);
    expect(b.deadGauge).toBe(41);
  });
  it("no VM that keeps beating is expired, however unevenly the VMs beat (no clock is read)", () => {
    db = new FakeStore();
    const b = new Beat();
    const w1 = new Watch(), w2 = new Watch();
    let dead = 0;
    for (let i = 0; i < 20; i++) {
      heartbeat(db, "vms", 1, 2, w1, 8, 0, b, "vmsr"); dead += b.dead.length;
      if (i % 2 == 0) { heartbeat(db, "vms", 2, 2, w2, 8, 0, b, "vmsr"); dead += b.dead.length; }
    }
    expect(dead).toBe(0);
  });
  it("heartbeat: missing or corrupt lease table → a fresh one; exhaustion → not ok", () => {
    db = new FakeStore();
    const b = new Beat();
    const w = new Watch();
    db.put("vms", garbage());
    heartbeat(db, "vms", 5, 3, w, 8, 0, b, "vmsr");
    expect(b.ok).toBe(true);
    const raw = db.raw("vms") as ArrayBuffer;
    const l = decodeLeases(changetype<usize>(raw), raw.byteLength);
    expect(l).not.toBeNull();
    expect((l as Leases).vms.length).toBe(1);
    db.conflicts = 4;
    heartbeat(db, "vms", 5, 3, w, 4, 0, b, "vmsr");
    expect(b.ok).toBe(false);
  });
  it("nextVmId: 1, 2, 3… across conflicts; 0 never used; exhaustion → 0", () => {
    db = new FakeStore();
    expect(nextVmId(db, "seq", 8)).toBe(1);
    expect(nextVmId(db, "seq", 8)).toBe(2);
    db.conflicts = 3;
    expect(nextVmId(db, "seq", 8)).toBe(3);
    const b = new ArrayBuffer(4);
    store<u32>(changetype<usize>(b), 0xffffffff);
    db.put("seq", b);
    expect(nextVmId(db, "seq", 8)).toBe(1, "wraps past 0");
    db.conflicts = 8;
    expect(nextVmId(db, "seq", 8)).toBe(0);
  });
  it("bucketOf stays in range and spreads keys", () => {
    let hit0 = 0;
    for (let i = 0; i < 1000; i++) {
      const b = bucketOf("client-" + i.toString(), 16);
      expect(b < 16).toBe(true);
      if (b == 0) hit0++;
    }
    expect(hit0 > 20 && hit0 < 120).toBe(true);
    expect(clientKey("wsg", 3)).toBe("wsg:cli:3");
  });
});
