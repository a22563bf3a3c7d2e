import {
  FleetRecord, decodeFleet, encodeFleet, hex16, slotsOf, sumRange, grantSize, PodRange, LEASE_LIVE, LEASE_NONE,
  Grant, decodeGrant, encodeGrant, returnSize,
} from "../../assembly/core/fleet";
import { EtcdKv, setOwnIfUnchangedRequest, createIfAbsentRequest } from "../../assembly/core/etcd";

function kv(key: string, value: string): EtcdKv {
  const k = new EtcdKv();
  k.key = key;
  k.value = value;
  return k;
}

describe("fleet record (shared data)", () => {
  it("round-trips; empty reads as no lease; anything else malformed is null", () => {
    const r = new FleetRecord();
    r.state = LEASE_LIVE;
    r.id = 0x3fffffffffffffff;
    r.granted = 12;
    r.sinceMs = 1700000000000;
    const b = encodeFleet(r);
    expect(b.byteLength).toBe(24);
    const d = decodeFleet(changetype<usize>(b), b.byteLength);
    expect(d).not.toBeNull();
    expect(d!.state).toBe(LEASE_LIVE);
    expect(d!.id).toBe(0x3fffffffffffffff);
    expect(d!.granted).toBe(12);
    expect(d!.sinceMs).toBe(1700000000000);
    const empty = decodeFleet(0, 0);
    expect(empty!.state).toBe(LEASE_NONE);
    expect(decodeFleet(changetype<usize>(b), 23)).toBeNull();
    store<u8>(changetype<usize>(b), 3, 3); // unknown state
    expect(decodeFleet(changetype<usize>(b), 24)).toBeNull();
    store<u8>(changetype<usize>(b), 2, 1); // another kind
    expect(decodeFleet(changetype<usize>(b), 24)).toBeNull();
  });
});

describe("fleet arithmetic", () => {
  it("lease ids as 16 lower-case hex digits", () => {
    expect(hex16(0)).toBe("0000000000000000");
    expect(hex16(0x18ed52b9b74b5cb0)).toBe("18ed52b9b74b5cb0");
  });
  it("slot counts: decimal only, at most 9 digits", () => {
    expect(slotsOf("0")).toBe(0);
    expect(slotsOf("123456789")).toBe(123456789);
    expect(slotsOf("")).toBe(-1);
    expect(slotsOf("-1")).toBe(-1);
    expect(slotsOf("1e3")).toBe(-1);
    expect(slotsOf("1234567890")).toBe(-1);
  });
  it("a range sums every holder; a malformed value counts as the whole cap (never over-admit)", () => {
    const kvs = [kv("p/pod/x/a", "3"), kv("p/pod/x/b", "4")];
    const r = new PodRange();
    sumRange(kvs, "p/pod/x/b", 10, r);
    expect(r.sum).toBe(7);
    expect(r.mine).toBe(4);
    expect(r.bad).toBe(0);
    kvs.push(kv("p/pod/x/c", "junk"));
    sumRange(kvs, "p/pod/x/z", 10, r);
    expect(r.sum).toBe(17);
    expect(r.mine).toBe(0);
    expect(r.bad).toBe(1);
    expect(r.mineBad).toBe(false);
    expect(grantSize(10, r.sum, 4)).toBe(0);
    sumRange(kvs, "p/pod/x/c", 10, r); // our own value unreadable: flagged, never used as a base
    expect(r.mineBad).toBe(true);
    expect(r.mine).toBe(0);
  });
  it("grants a block, cut to what the cap leaves; 0 at or over the cap", () => {
    expect(grantSize(10, 0, 4)).toBe(4);
    expect(grantSize(10, 7, 4)).toBe(3);
    expect(grantSize(10, 10, 4)).toBe(0);
    expect(grantSize(10, 12, 4)).toBe(0);
    expect(grantSize(1, 0, 1000)).toBe(1);
  });
});

describe("fleet grants (shared data) and returns", () => {
  it("a grant round-trips; empty reads as nothing granted; malformed is null", () => {
    const g = new Grant();
    g.lease = 0x123456789abcdef;
    g.granted = 7;
    g.busyUntilMs = 1700000000123;
    const b = encodeGrant(g);
    const d = decodeGrant(changetype<usize>(b), b.byteLength);
    expect(d).not.toBeNull();
    expect(d!.lease).toBe(0x123456789abcdef);
    expect(d!.granted).toBe(7);
    expect(d!.busyUntilMs).toBe(1700000000123);
    expect(decodeGrant(0, 0)!.granted).toBe(0);
    expect(decodeGrant(changetype<usize>(b), 20)).toBeNull();
    // a fleet record is not a grant (kind byte)
    const r = encodeFleet(new FleetRecord());
    expect(decodeGrant(changetype<usize>(r), r.byteLength)).toBeNull();
  });

  it("returns all slots when none is used, the surplus above one block when more than two blocks are free", () => {
    expect(returnSize(0, 0, 4)).toBe(0);
    expect(returnSize(5, 0, 4)).toBe(5);
    expect(returnSize(5, 5, 4)).toBe(0);
    expect(returnSize(5, 7, 4)).toBe(0);   // used above the grant (fail-open admissions): nothing to return
    expect(returnSize(12, 4, 4)).toBe(0);  // 8 free = 2 blocks: kept
    expect(returnSize(13, 4, 4)).toBe(5);  // 9 free: keep one block
    expect(returnSize(3, 1, 1)).toBe(0);   // clients (block 1): 2 free = 2 blocks: kept
    expect(returnSize(4, 1, 1)).toBe(2);   // 3 free: keep 1
    expect(returnSize(4, 1, 0)).toBe(3);   // scarce mode (block 0): every free slot
  });

  it("builds the return txn (own key's mod revision; delete at 0) and the create-if-absent txn", () => {
    const put = setOwnIfUnchangedRequest("/p/pod/x/h", 42, "3", "7");
    expect(put).toBe('{"compare":[{"key":"L3AvcG9kL3gvaA==","target":"MOD","result":"EQUAL","mod_revision":"42"}],' +
      '"success":[{"request_put":{"key":"L3AvcG9kL3gvaA==","value":"Mw==","lease":"7"}}],"failure":[]}');
    const del = setOwnIfUnchangedRequest("/p/pod/x/h", 42, "0", "7");
    expect(del).toBe('{"compare":[{"key":"L3AvcG9kL3gvaA==","target":"MOD","result":"EQUAL","mod_revision":"42"}],' +
      '"success":[{"request_delete_range":{"key":"L3AvcG9kL3gvaA=="}}],"failure":[]}');
    expect(createIfAbsentRequest("/p/pod/x/h", "2", "9")).toBe('{"compare":[{"key":"L3AvcG9kL3gvaA==","target":"VERSION",' +
      '"result":"EQUAL","version":"0"}],"success":[{"request_put":{"key":"L3AvcG9kL3gvaA==","value":"Mg==","lease":"9"}}],' +
      '"failure":[]}');
  });
});
