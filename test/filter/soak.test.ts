// Memory soak: 20k full upgrade lifecycles (admit, 101, frames both ways, close) and 20k plain requests on one worker
// must leave the VM's linear memory flat after warm-up (AssemblyScript 0.17 refcount leaks grow it page by page).
import assert from "node:assert/strict";
import { test } from "node:test";
import { H101, H200, conn, finishReply, makeEnv, ok, plainHeaders, upgradeHeaders } from "./support.ts";

test("memory soak: 20k upgrade lifecycles + 20k plain requests on one worker leave memoryBytes flat", () => {
  const e = makeEnv({ concurrency: 1, config: { rate_limit: { requests: 1000000, window_seconds: 1, key: { source: "address" }, buckets: 64 }, max_connections_per_pod: 8, max_connections_per_client: 4, client_buckets: 64 } });
  try {
    const frameC = new Uint8Array([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // masked "hello"
    const frameS = new Uint8Array([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    const ping = new Uint8Array([0x89, 0x80, 1, 2, 3, 4]);
    const close = new Uint8Array([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    const lifecycle = (i: number) => {
      const s = e.h.newStream(0, conn(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${1024 + (i % 60000)}`));
      const r = s.decodeHeaders(upgradeHeaders([["x-request-id", `req-${i}`]], `/ws/${i}`), false);
      if (r.kind !== "continue") { finishReply(s); return false; }
      if (i % 7 === 3) { s.encodeHeaders([[":status", "503"]], true); s.complete(); return true; } // refused
      s.encodeHeaders(H101, false);
      s.decodeData(frameC, false);
      s.encodeData(frameS, false);
      s.decodeData(ping, false);
      if (i % 2 === 0) { s.decodeData(close, false); s.complete(); } else s.reset("downstream_remote_disconnect");
      return true;
    };
    const plain = (i: number) => {
      const s = e.h.newStream(0, conn(`10.200.${(i >> 8) & 255}.${i & 255}:1`));
      s.decodeHeaders(plainHeaders(`/api/${i}?q=${i}`, [["x-request-id", `p-${i}`]]), true);
      s.encodeHeaders(H200, false);
      s.encodeData(new Uint8Array([111, 107]), true);
      s.complete();
    };
    const round = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        ok(lifecycle(i), `lifecycle ${i} rejected`);
        plain(i);
        if (i % 500 === 499) e.proc.advance(1000); // ticks: heartbeats and the collector
      }
    };
    round(0, 4000); // warm-up: allocator pools, maps, the collector's buffers
    const warm = e.h.memoryBytes(0);
    const samples: number[] = [];
    for (let k = 0; k < 4; k++) {
      round(4000 + k * 4000, 8000 + k * 4000);
      samples.push(e.h.memoryBytes(0));
    }
    assert.deepEqual(samples, samples.map(() => warm), `memory grew after warm-up: ${warm} → ${samples.join(", ")}`);
    assert.equal(e.stat("active_connections"), 0);
    assert.ok(!e.h.vmFailed(0), "no trap");
    assert.equal(e.stat("upgrades_total"), 20000);
  } finally {
    e.close();
  }
});
