import {
  HolderStats, encodeStats, decodeStats, PublishRecord, encodePublish, decodePublish, publishDue, statsKey,
  statsPutRequest, scrapeRequest, parseRanges, FleetView, summarize, renderFleet, renderFleetDown,
} from "../../assembly/core/fleet_view";
import { EtcdKv } from "../../assembly/core/etcd";

function kv(key: string, value: string): EtcdKv {
  const k = new EtcdKv();
  k.key = key;
  k.value = value;
  return k;
}

const A = "00000000000000aa";
const B = "00000000000000bb";
const C = "00000000000000cc";

describe("fleet view: the published stats value", () => {
  it("round-trips counters and used per pod; a pod name with a newline is left out", () => {
    const st = new HolderStats();
    st.accepted = 12;
    st.rejected = 3;
    st.pods.push("pod-a"); st.used.push(4);
    st.pods.push("bad\nname"); st.used.push(9);
    st.pods.push("pod b/1"); st.used.push(0);
    const text = encodeStats(st);
    expect(text).toBe("1 12 3\n4 pod-a\n0 pod b/1\n");
    const d = new HolderStats();
    expect(decodeStats(text, d)).toBe(true);
    expect(d.accepted).toBe(12);
    expect(d.rejected).toBe(3);
    expect(d.pods.length).toBe(2);
    expect(d.pods[1]).toBe("pod b/1");
    expect(d.used[0]).toBe(4);
    expect(decodeStats("1 0 0\n", d)).toBe(true);
    expect(d.pods.length).toBe(0);
  });
  it("rejects other versions, bad numbers and cut values", () => {
    const d = new HolderStats();
    expect(decodeStats("", d)).toBe(false);
    expect(decodeStats("2 1 1\n", d)).toBe(false);
    expect(decodeStats("1 1\n", d)).toBe(false);
    expect(decodeStats("1 -1 1\n", d)).toBe(false);
    expect(decodeStats("1 1 1\nx pod\n", d)).toBe(false);
    expect(decodeStats("1 1 1\n3pod\n", d)).toBe(false);
    expect(decodeStats("1 1 1\n3 pod", d)).toBe(false);
    expect(decodeStats("1 1 1", d)).toBe(false);
    expect(decodeStats("1 1 1234567890123456789\n", d)).toBe(false);
    expect(decodeStats("1 1 1\n4294967296 pod\n", d)).toBe(false);
  });
});

describe("fleet view: who publishes", () => {
  it("the record round-trips; empty reads as never; another length is malformed", () => {
    const r = new PublishRecord();
    r.id = 0x3fffffffffffffff;
    r.lastMs = 1700000000000;
    const b = encodePublish(r);
    const d = decodePublish(changetype<usize>(b), b.byteLength);
    expect(d!.id).toBe(0x3fffffffffffffff);
    expect(d!.lastMs).toBe(1700000000000);
    expect(decodePublish(0, 0)!.lastMs).toBe(0);
    expect(decodePublish(changetype<usize>(b), 15)).toBeNull();
  });
  it("due after a period, on a new lease, or when the clock went back", () => {
    const r = new PublishRecord();
    r.id = 7;
    r.lastMs = 10000;
    expect(publishDue(r, 7, 14999, 5000)).toBe(false);
    expect(publishDue(r, 7, 15000, 5000)).toBe(true);
    expect(publishDue(r, 8, 10001, 5000)).toBe(true);
    expect(publishDue(r, 7, 9000, 5000)).toBe(true);
  });
});

describe("fleet view: requests and the scrape's answer", () => {
  it("a put under the lease; one txn with two range reads and no compare", () => {
    expect(statsKey("/w/", 0xab)).toBe("/w/stats/00000000000000ab");
    // "/w/stats/x" and "1 0 0\n" in base64
    expect(statsPutRequest("/w/stats/x", "1 0 0\n", 42)).toBe("{\"key\":\"L3cvc3RhdHMveA==\",\"value\":\"MSAwIDAK\",\"lease\":\"42\"}");
    // "/w/pod/" … "/w/pod0", "/w/stats/" … "/w/stats0"
    expect(scrapeRequest("/w/")).toBe("{\"compare\":[],\"success\":[" +
      "{\"request_range\":{\"key\":\"L3cvcG9kLw==\",\"range_end\":\"L3cvcG9kMA==\"}}," +
      "{\"request_range\":{\"key\":\"L3cvc3RhdHMv\",\"range_end\":\"L3cvc3RhdHMw\"}}],\"failure\":[]}");
  });
  it("reads the kvs of every response_range (etcd 3.4's answer; an empty range has no kvs)", () => {
    const text = "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[" +
      "{\"response_range\":{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L3AvcG9kL3gvMDAwMQ==\",\"create_revision\":\"2\"," +
      "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"Mw==\",\"lease\":\"857832601517072646\"}],\"count\":\"1\"}}," +
      "{\"response_range\":{\"header\":{\"revision\":\"3\"}}}]}";
    const out = new Array<Array<EtcdKv>>(0);
    expect(parseRanges(text, out)).toBe(true);
    expect(out.length).toBe(2);
    expect(out[0].length).toBe(1);
    expect(out[0][0].key).toBe("/p/pod/x/0001");
    expect(out[0][0].value).toBe("3");
    expect(out[1].length).toBe(0);
  });
  it("anything else is not an answer", () => {
    const out = new Array<Array<EtcdKv>>(0);
    expect(parseRanges("", out)).toBe(false);
    expect(parseRanges("{\"error\":\"x\",\"code\":14}", out)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_put\":{}}]}", out)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"!!\"}]}}]}", out)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_range\":{\"kvs\":{}}}]}", out)).toBe(false);
  });
});

describe("fleet view: sums and lines", () => {
  it("granted and active per pod over every holder; holders from both ranges; bad entries left out", () => {
    const pods = [kv("/w/pod/pod-a/" + A, "4"), kv("/w/pod/pod-a/" + B, "2"), kv("/w/pod/pod-b/" + A, "1"),
                  kv("/w/pod/pod-a/" + C, "junk"), kv("/w/pod/pod-a/xyz", "1")];
    const stats = [kv("/w/stats/" + A, "1 10 2\n3 pod-a\n1 pod-b\n"), kv("/w/stats/" + C, "1 5 0\n2 pod-a\n"),
                   kv("/w/stats/" + B, "garbage")];
    const v = new FleetView();
    summarize("/w/", pods, stats, v);
    expect(v.pods.length).toBe(2);
    expect(v.pods[0].pod).toBe("pod-a");
    expect(v.pods[0].granted).toBe(6);
    expect(v.pods[0].active).toBe(5);
    expect(v.pods[1].granted).toBe(1);
    expect(v.pods[1].active).toBe(1);
    expect(v.holders.length).toBe(3);
    expect(v.published.length).toBe(2);
    expect(v.bad).toBe(3);
    const text = renderFleet(v);
    expect(text).toBe(
      "# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 1\n" +
      "# TYPE ws_governor_fleet_holders gauge\nws_governor_fleet_holders 3\n" +
      "# TYPE ws_governor_fleet_granted gauge\n" +
      "ws_governor_fleet_granted{pod=\"pod-a\"} 6\nws_governor_fleet_granted{pod=\"pod-b\"} 1\n" +
      "# TYPE ws_governor_fleet_active gauge\n" +
      "ws_governor_fleet_active{pod=\"pod-a\"} 5\nws_governor_fleet_active{pod=\"pod-b\"} 1\n" +
      "# TYPE ws_governor_fleet_accepted_total counter\n" +
      "ws_governor_fleet_accepted_total{holder=\"" + A + "\"} 10\nws_governor_fleet_accepted_total{holder=\"" + C + "\"} 5\n" +
      "# TYPE ws_governor_fleet_rejected_total counter\n" +
      "ws_governor_fleet_rejected_total{holder=\"" + A + "\"} 2\nws_governor_fleet_rejected_total{holder=\"" + C + "\"} 0\n");
  });
  it("a pod only one range knows shows 0 in the other; labels are escaped; etcd down is one line", () => {
    const v = new FleetView();
    summarize("/w/", [kv("/w/pod/q\"x/" + A, "2")], [kv("/w/stats/" + B, "1 0 0\n7 other\n")], v);
    expect(v.pods[0].active).toBe(0);
    expect(v.pods[1].granted).toBe(0);
    expect(v.pods[1].active).toBe(7);
    expect(renderFleet(v).indexOf("ws_governor_fleet_granted{pod=\"q\\\"x\"} 2\n")).toBeGreaterThan(0);
    expect(renderFleetDown()).toBe("# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 0\n");
  });
});
