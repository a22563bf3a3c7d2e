// Bounded fuzzing of the request path and of frame inspection in the release module: random header values and random
// WebSocket chunks must never trap a VM; every slot comes back when the streams end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeEnv, conn, H101, isContinue, finishReply, podTotal, rng, ok, type FilterStream, type HeaderList } from "./support.ts";

const STREAMS = 1500;

test(`input fuzz: ${STREAMS} streams with random headers and random frame bytes never trap; counts return to 0`, () => {
  const e = makeEnv({
    concurrency: 2,
    config: {
      rate_limit: { requests: 1000000, window_seconds: 1, key: { source: "header", header: "x-key" } },
      max_connections_per_pod: 1000, max_connections_per_client: 1000, client_key: { source: "header", header: "x-key" },
      frames: { enabled: true, max_frame_bytes: 4096, max_message_bytes: 8192, messages_per_second: 1000 },
    },
  });
  const rand = rng(0xf00d);
  const pick = (n: number) => Math.floor(rand() * n);
  const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(pick(3) === 0 ? pick(0x3000) : 32 + pick(95))).join("");
  const tokens = ["websocket", "WebSocket", "upgrade", "Upgrade", "keep-alive", "h2c", "", " ", ",", "websockets", "upgrades"];
  const list = () => Array.from({ length: pick(4) }, () => tokens[pick(tokens.length)]).join(pick(2) ? "," : ", ");
  const live: FilterStream[] = [];
  try {
    for (let i = 0; i < STREAMS; i++) {
      const h: HeaderList = [[":authority", junk(pick(20))], [":path", pick(4) ? "/ws" : "/" + junk(pick(300))],
        [":method", "GET"], [":scheme", "http"], ["upgrade", pick(5) ? "websocket" : list()],
        ["connection", pick(5) ? "Upgrade" : list()]];
      if (pick(2)) h.push(["x-key", junk(pick(64))]);
      if (pick(3) === 0) h.push(["x-key", junk(pick(8))]); // duplicate header
      const s = e.h.newStream(pick(2), conn(`10.${pick(255)}.${pick(255)}.1:${1024 + pick(60000)}`));
      const r = s.decodeHeaders(h, false);
      if (r.kind === "localReply") { finishReply(s); continue; }
      if (!isContinue(r)) { s.reset("fuzz"); continue; }
      const ext: HeaderList = pick(2) ? [["sec-websocket-extensions", "permessage-deflate"]] : [];
      const rr = s.encodeHeaders(pick(10) ? [...H101, ...ext] : [[":status", String(200 + pick(400))]], false);
      if (rr.kind !== "continue") { s.reset("fuzz"); continue; }
      for (let c = pick(6); c > 0; c--) {
        const bytes = new Uint8Array(pick(3) === 0 ? pick(20000) : pick(64));
        for (let k = 0; k < bytes.length; k++) bytes[k] = pick(3) === 0 ? pick(256) : [0x81, 0x82, 0x88, 0x89, 0x8a, 0x01, 0x80][pick(7)];
        const d = pick(2) ? s.decodeData(bytes, false) : s.encodeData(bytes, false);
        if (d.kind === "reset" || s.ended) break;
      }
      if (s.ended) continue;
      if (pick(3) === 0) live.push(s); else if (pick(2)) s.complete(); else s.reset("fuzz");
      if (live.length > 50) live.shift()!.complete();
    }
    for (const s of live.splice(0)) if (!s.ended) s.complete();
    for (let w = 0; w < 2; w++) ok(!e.h.vmFailed(w), `worker ${w} never trapped`);
    const traps = e.logs.filter((l) => /abort|failed: /.test(l.message));
    assert.deepEqual(traps.map((l) => l.message), []);
    e.proc.advance(5000); // let handshake deadlines and pending releases run
    assert.equal(podTotal(e.proc), 0, "pod ledger back to 0");
    assert.equal(e.stat("active_connections"), 0, "gauge back to 0");
    ok(e.stat("accepted_total") > 100, `some upgrades were accepted (${e.stat("accepted_total")})`);
    console.log(`# input fuzz: streams=${STREAMS} upgrades=${e.stat("upgrades_total")} accepted=${e.stat("accepted_total")} ` +
      `frame_closes=${["1001", "1002", "1008", "1009"].map((c) => e.stat("frame_closes_total.code." + c)).join("/")} resets=${e.stat("frame_resets_total")}`);
  } finally {
    e.close();
  }
});
