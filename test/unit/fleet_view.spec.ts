import {
  statsLine, publishDue, publishRecord, statsPutRequest, scrapeRequest, parseRanges, FleetView, summarize, renderFleet,
  renderFleetDown,
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

describe("fleet view: who publishes, and what", () => {
  it("one line per pod; a pod name with a newline is left out", () => {
    expect(statsLine("pod-a", 4)).toBe("4 pod-a\n");
    expect(statsLine("pod b/1", 0)).toBe("0 pod b/1\n");
    expect(statsLine("bad\nname", 9)).toBe("");
  });
  it("due when never published, unreadable, for another lease, after a period, or when the clock went back", () => {
    const r = publishRecord(7, 10000);
    const p = changetype<usize>(r);
    expect(r.byteLength).toBe(16);
    expect(publishDue(p, 16, 7, 14999, 5000)).toBe(false);
    expect(publishDue(p, 16, 7, 10000, 5000)).toBe(false);
    expect(publishDue(p, 16, 7, 15000, 5000)).toBe(true);
    expect(publishDue(p, 16, 8, 10001, 5000)).toBe(true);
    expect(publishDue(p, 16, 7, 9000, 5000)).toBe(true);
    expect(publishDue(0, 0, 7, 10001, 5000)).toBe(true);
    expect(publishDue(p, 15, 7, 10001, 5000)).toBe(true);
  });
});

describe("fleet view: requests and the scrape's answer", () => {
  it("a put under the lease; one txn with two range reads and no compare", () => {
    // "/w/stats/00000000000000ab" and "1 x\n" in base64
    expect(statsPutRequest("/w/", 0xab, "1 x\n")).toBe(
      "{\"key\":\"L3cvc3RhdHMvMDAwMDAwMDAwMDAwMDBhYg==\",\"value\":\"MSB4Cg==\",\"lease\":\"171\"}");
    // "/w/pod/" … "/w/pod0", "/w/stats/" … "/w/stats0"
    expect(scrapeRequest("/w/")).toBe("{\"compare\":[],\"success\":[" +
      "{\"request_range\":{\"key\":\"L3cvcG9kLw==\",\"range_end\":\"L3cvcG9kMA==\"}}," +
      "{\"request_range\":{\"key\":\"L3cvc3RhdHMv\",\"range_end\":\"L3cvc3RhdHMw\"}}],\"failure\":[]}");
  });
  it("reads the kvs of both response_range entries (etcd 3.4's answer; an empty range has no kvs)", () => {
    const text = "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[" +
      "{\"response_range\":{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L3AvcG9kL3gvMDAwMQ==\",\"create_revision\":\"2\"," +
      "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"Mw==\",\"lease\":\"857832601517072646\"}],\"count\":\"1\"}}," +
      "{\"response_range\":{\"header\":{\"revision\":\"3\"}}}]}";
    const a = new Array<EtcdKv>(0);
    const b = new Array<EtcdKv>(0);
    expect(parseRanges(text, a, b)).toBe(true);
    expect(a.length).toBe(1);
    expect(a[0].key).toBe("/p/pod/x/0001");
    expect(a[0].value).toBe("3");
    expect(b.length).toBe(0);
  });
  it("anything else is not an answer", () => {
    const a = new Array<EtcdKv>(0);
    const b = new Array<EtcdKv>(0);
    expect(parseRanges("", a, b)).toBe(false);
    expect(parseRanges("{\"error\":\"x\",\"code\":14}", a, b)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_range\":{}}]}", a, b)).toBe(false); // one range, not two
    expect(parseRanges("{\"responses\":[{\"response_put\":{}},{\"response_range\":{}}]}", a, b)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"!!\"}]}},{\"response_range\":{}}]}", a, b)).toBe(false);
    expect(parseRanges("{\"responses\":[{\"response_range\":{\"kvs\":{}}},{\"response_range\":{}}]}", a, b)).toBe(false);
  });
});

describe("fleet view: sums and lines", () => {
  it("granted and active per pod over every holder; holders that published; bad entries left out", () => {
    const pods = [kv("/w/pod/pod-a/" + A, "4"), kv("/w/pod/pod-a/" + B, "2"), kv("/w/pod/pod-b/" + A, "1"),
                  kv("/w/pod/pod-a/" + C, "junk"), kv("/w/pod/" + A, "1")];
    const stats = [kv("/w/stats/" + A, "3 pod-a\n1 pod-b\n"), kv("/w/stats/" + C, "2 pod-a\n"),
                   kv("/w/stats/" + B, "5 pod-a\nnot a line\n"), kv("/w/stats/x", "1 pod-a"), kv("/w/stats/y", "")];
    const v = new FleetView();
    summarize("/w/", pods, stats, v);
    expect(v.pods.length).toBe(2);
    expect(v.pods[0]).toBe("pod-a");
    expect(v.granted[0]).toBe(6);
    expect(v.active[0]).toBe(5); // B's bad value adds nothing, not even its first line
    expect(v.granted[1]).toBe(1);
    expect(v.active[1]).toBe(1);
    expect(v.holders).toBe(3);   // A, C and y (a holder with no pod)
    expect(v.bad).toBe(4);
    expect(renderFleet(v)).toBe(
      "# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 1\n" +
      "# TYPE ws_governor_fleet_holders gauge\nws_governor_fleet_holders 3\n" +
      "# TYPE ws_governor_fleet_granted gauge\n" +
      "ws_governor_fleet_granted{pod=\"pod-a\"} 6\nws_governor_fleet_granted{pod=\"pod-b\"} 1\n" +
      "# TYPE ws_governor_fleet_active gauge\n" +
      "ws_governor_fleet_active{pod=\"pod-a\"} 5\nws_governor_fleet_active{pod=\"pod-b\"} 1\n");
  });
  it("a pod only one range knows shows 0 in the other; labels are escaped; etcd down is one line", () => {
    const v = new FleetView();
    summarize("/w/", [kv("/w/pod/q\"x/" + A, "2")], [kv("/w/stats/" + B, "7 other\n")], v);
    expect(v.active[0]).toBe(0);
    expect(v.granted[1]).toBe(0);
    expect(v.active[1]).toBe(7);
    expect(renderFleet(v).indexOf("ws_governor_fleet_granted{pod=\"q\\\"x\"} 2\n")).toBeGreaterThan(0);
    expect(renderFleetDown()).toBe("# TYPE ws_governor_fleet_up gauge\nws_governor_fleet_up 0\n");
  });
});
