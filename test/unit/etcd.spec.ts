import {
  prefixEndB64, rangePrefixRequest, putIfUnchangedRequest, leaseGrantRequest, leaseKeepaliveRequest, parseReply,
} from "../../assembly/core/etcd";

describe("etcd JSON gateway requests", () => {
  it("range over a prefix: range_end is the prefix with its last byte incremented", () => {
    expect(prefixEndB64("wsg/")).toBe("d3NnMA==");          // "wsg0"
    expect(prefixEndB64("")).toBe("AA==");                  // "\0": every key
    expect(rangePrefixRequest("wsg/")).toBe("{\"key\":\"d3NnLw==\",\"range_end\":\"d3NnMA==\"}");
  });
  it("a conditional put compares the range's mod revision with revision + 1 (LESS); both branches read the range", () => {
    expect(putIfUnchangedRequest("a/", 41, "a/x", "3", "7587"))
      .toBe("{\"compare\":[{\"key\":\"YS8=\",\"range_end\":\"YTA=\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"42\"}]," +
            "\"success\":[{\"request_put\":{\"key\":\"YS94\",\"value\":\"Mw==\",\"lease\":\"7587\"}}," +
            "{\"request_range\":{\"key\":\"YS8=\",\"range_end\":\"YTA=\"}}]," +
            "\"failure\":[{\"request_range\":{\"key\":\"YS8=\",\"range_end\":\"YTA=\"}}]}");
  });
  it("a txn's answer gives the range read by one of its ops (at header.revision)", () => {
    const r = parseReply("{\"header\":{\"revision\":\"12\"},\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"12\"}," +
      "\"kvs\":[{\"key\":\"YS94\",\"mod_revision\":\"11\",\"value\":\"Mw==\"}],\"count\":\"1\"}}]}");
    expect(r.ok).toBe(true);
    expect(r.succeeded).toBe(false);
    expect(r.ranged).toBe(true);
    expect(r.revision).toBe(12);
    expect(r.kvs.length).toBe(1);
    expect(r.kvs[0].key).toBe("a/x");
    expect(r.kvs[0].value).toBe("3");
    expect(r.kvs[0].modRevision).toBe(11);
    const put = parseReply("{\"header\":{\"revision\":\"13\"},\"succeeded\":true,\"responses\":[{\"response_put\":" +
      "{\"header\":{\"revision\":\"13\"}}},{\"response_range\":{\"header\":{\"revision\":\"13\"}}}]}");
    expect(put.succeeded).toBe(true);
    expect(put.ranged).toBe(true); // an empty range: no kvs
    expect(put.kvs.length).toBe(0);
  });
  it("lease grant and keepalive carry int64s as strings", () => {
    expect(leaseGrantRequest(10)).toBe("{\"TTL\":\"10\"}");
    expect(leaseKeepaliveRequest("7587866484386123333")).toBe("{\"ID\":\"7587866484386123333\"}");
  });
});

describe("etcd JSON gateway responses", () => {
  it("range: revision, keys and values decoded, mod revisions", () => {
    const r = parseReply("{\"header\":{\"cluster_id\":\"1\",\"revision\":\"17\"},\"kvs\":[{\"key\":\"YS94\",\"create_revision\":\"3\"," +
      "\"mod_revision\":\"15\",\"version\":\"2\",\"value\":\"Mw==\",\"lease\":\"7587\"}],\"count\":\"1\"}");
    expect(r.ok).toBe(true);
    expect(r.revision).toBe(17);
    expect(r.kvs.length).toBe(1);
    expect(r.kvs[0].key).toBe("a/x");
    expect(r.kvs[0].value).toBe("3");
    expect(r.kvs[0].modRevision).toBe(15);
    expect(r.kvs[0].lease).toBe("7587");
    const empty = parseReply("{\"header\":{\"revision\":\"5\"}}");
    expect(empty.ok).toBe(true);
    expect(empty.kvs.length).toBe(0);
  });
  it("txn: succeeded true or absent (false)", () => {
    expect(parseReply("{\"header\":{\"revision\":\"9\"},\"succeeded\":true,\"responses\":[]}").succeeded).toBe(true);
    const f = parseReply("{\"header\":{\"revision\":\"9\"}}");
    expect(f.ok).toBe(true);
    expect(f.succeeded).toBe(false);
  });
  it("lease grant and keepalive ({\"result\":…}); a gone lease has no TTL", () => {
    const g = parseReply("{\"header\":{\"revision\":\"2\"},\"ID\":\"7587866484386123333\",\"TTL\":\"10\"}");
    expect(g.ok).toBe(true);
    expect(g.leaseId).toBe("7587866484386123333");
    expect(g.ttl).toBe(10);
    const k = parseReply("{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"7587866484386123333\",\"TTL\":\"10\"}}");
    expect(k.ttl).toBe(10);
    const gone = parseReply("{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"7587866484386123333\"}}");
    expect(gone.ok).toBe(true);
    expect(gone.ttl).toBe(0);
  });
  it("malformed or error bodies are not ok, never a trap", () => {
    expect(parseReply("").ok).toBe(false);
    expect(parseReply("[]").ok).toBe(false);
    expect(parseReply("{\"error\":\"etcdserver: requested lease not found\",\"code\":5}").ok).toBe(false);
    expect(parseReply("{\"kvs\":[{\"key\":\"!!\"}]}").ok).toBe(false);
    expect(parseReply("{\"kvs\":{}}").ok).toBe(false);
    expect(parseReply("{\"header\":{\"revision\":\"12x\"}}").ok).toBe(false);
    expect(parseReply("{\"header\":{\"revision\":\"99999999999999999999\"}}").ok).toBe(false);
    expect(parseReply("{\"ID\":5}").ok).toBe(false);
  });
});
