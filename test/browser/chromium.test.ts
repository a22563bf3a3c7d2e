// A real browser WebSocket through the emulated Envoy with frame limits in force: headless Chromium opens a loopback
// page (served by the proxy's admin server), the page connects to the listener, exchanges messages, then sends an
// oversize message; the CloseEvent code (1009) is read back from Node through the DevTools protocol. Then MANY sockets
// in one page flood past messages_per_second (1008), send oversize messages (1009), or are drained (1001): every
// CloseEvent must carry that code (never 1006), with wasClean unless the page still had unsent data (Blink's rule).
// No Chromium: FAIL when CI=true, skip with the reason otherwise (test/browser/chromium.ts).
//   node --import tsx --test --test-reporter=tap test/browser/chromium.test.ts
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { deployFrames, G, wasmMissing, type FramesDeployment } from "../e2e/frames_harness.ts";
import { drainNow, tally } from "../e2e/frames_clients.ts";
import { Browser, chromiumGate } from "./chromium.ts";

const PAGE = readFileSync(fileURLToPath(new URL("./ws-limits.html", import.meta.url)), "utf8");
const gate = chromiumGate();
const missing = wasmMissing();
const LIMIT = 2048;
const MANY = 20; // sockets per page in the many-socket scenarios

const skip = gate.skip || (missing ? `unavailable: ${missing}` : false);

describe("browser WebSocket through the emulated Envoy [chromium]", () => {
  let browser: Browser | undefined;
  before(async () => {
    if (!skip && !gate.failReason) browser = await Browser.launch();
  });
  after(async () => {
    await browser?.close();
  });

  for (const podDeflate of [false, true]) {
    const tag = podDeflate ? "permessage-deflate negotiated" : "no extension";
    test(`${tag}: messages echo, then an oversize message closes with 1009`, { skip, timeout: 60_000 }, async (t) => {
      if (gate.failReason) assert.fail(gate.failReason);
      const d: FramesDeployment = await deployFrames({
        config: { rate_limit: null, frames: { enabled: true, max_message_bytes: LIMIT } },
        podDeflate: podDeflate ? { threshold: 0 } : false,
        adminRoutes: {
          "/browser/ws-limits": (_req, res) => {
            res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
            res.end(PAGE);
          },
        },
      });
      const page = await browser!.newPage();
      try {
        await page.goto(d.proxy.adminUrl(`/browser/ws-limits?ws=${encodeURIComponent(d.wsUrl("/ws"))}`));
        await page.waitFor("window.__result.opened || window.__result.close", "the browser WebSocket to open");
        const opened = await page.eval<{ opened: boolean; extensions: string }>("({opened: __result.opened, extensions: __result.extensions})");
        assert.ok(opened.opened, "the browser's upgrade passed the filter");
        if (podDeflate) assert.match(opened.extensions, /permessage-deflate/, "Chromium negotiated permessage-deflate with the pod");
        else assert.equal(opened.extensions, "");
        const msgs = ["hello from chromium", "second message", "x".repeat(LIMIT - 100)];
        for (let i = 0; i < msgs.length; i++) {
          await page.eval(`send(${JSON.stringify(msgs[i])})`);
          await page.waitFor(`__result.echoes.length >= ${i + 1}`, `echo ${i + 1}`, 5000);
        }
        assert.deepEqual(await page.eval("__result.echoes"), msgs);
        await page.eval(`sendRandom(${LIMIT * 4})`); // random bytes: oversize even when compressed
        const close = await page.waitFor<{ code: number; wasClean: boolean }>("__result.close", "the CloseEvent", 10_000);
        t.diagnostic(`browser CloseEvent: ${JSON.stringify(close)}`);
        assert.equal(close.code, 1009, "CloseEvent.code seen by Chromium");
        assert.equal(close.wasClean, true, "a clean close handshake, not a reset");
        assert.equal((await page.eval<string[]>("__result.echoes")).length, msgs.length, "the oversize message was not echoed");
        const s = await d.stats();
        assert.equal(s.get(`${G}frame_closes_total.code.1009`), 1);
        assert.equal(s.get(`${G}messages_total.direction.downstream`), msgs.length, "the oversize message is refused at its header, not counted");
        await d.waitStat(`${G}active_connections`, 0);
        assert.deepEqual(page.errors, [], "no page errors");
      } finally {
        await page.send("Page.close").catch(() => undefined);
        await d.stop();
      }
    });
  }

  for (const sc of [
    { name: "flood past messages_per_second", frames: { messages_per_second: 20, message_burst: 20 }, act: "floodMany(2000)", code: 1008, flood: true },
    { name: "oversize message", frames: { max_message_bytes: LIMIT }, act: `sendRandomMany(${LIMIT * 4})`, code: 1009 },
    { name: "drain", frames: {}, act: "sendMany('after drain')", code: 1001, drain: true },
  ]) {
    test(`${MANY} browser sockets, ${sc.name} → every CloseEvent is ${sc.code}, clean`, { skip, timeout: 60_000 }, async (t) => {
      if (gate.failReason) assert.fail(gate.failReason);
      const d: FramesDeployment = await deployFrames({
        // drain: short ticks so the flag is read soon (the close deadline is 2 ticks, plenty for one message each)
        config: { rate_limit: null, max_connections_per_pod: 0, tick_ms: sc.drain ? 100 : 1000, frames: { enabled: true, ...sc.frames } },
        adminRoutes: {
          "/browser/ws-limits": (_req, res) => {
            res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
            res.end(PAGE);
          },
        },
      });
      const page = await browser!.newPage();
      try {
        await page.goto(d.proxy.adminUrl(`/browser/ws-limits?main=0&ws=${encodeURIComponent(d.wsUrl("/ws"))}`));
        await page.eval(`openMany(${MANY})`);
        await page.waitFor("manyState().every((s) => s.opened)", "every browser socket to open");
        if (sc.drain) await drainNow(d);
        await page.eval(sc.act);
        const st = await page.waitFor<{ close: { code: number; wasClean: boolean; unsent: number } }[]>(
          "manyState().every((s) => s.close) && manyState()", "every CloseEvent", 20_000);
        const got = tally(st.map((x) => x.close.code));
        const s = await d.stats();
        t.diagnostic(`chromium: ${sc.name}: ${got}; frame_closes_total.code.${sc.code}=${s.get(`${G}frame_closes_total.code.${sc.code}`) ?? 0}` +
          `; resets=${s.get(`${G}frame_resets_total`) ?? 0}; pods saw ${tally(d.pods.flatMap((p) => p.closeCodes))}; unclean=${JSON.stringify(st.filter((x) => !x.close.wasClean).map((x) => x.close))}`);
        assert.equal(got, `${sc.code}×${MANY}`, "CloseEvent codes seen by Chromium");
        // Blink reports wasClean false when the page still had unsent data (bufferedAmount > 0) at the close, which a
        // flooding page may have whatever the server does; every other close must be clean
        assert.ok(st.every((x) => x.close.wasClean || x.close.unsent > 0), "clean close handshakes, not resets");
        if (!sc.flood) assert.ok(st.every((x) => x.close.wasClean), "clean close handshakes");
        await d.waitStat(`${G}active_connections`, 0);
        const s2 = await d.stats();
        assert.equal(s2.get(`${G}frame_closes_total.code.${sc.code}`), MANY);
        assert.equal(s2.get(`${G}frame_resets_total`) ?? 0, 0, "no reset");
        assert.equal(d.pods.flatMap((p) => p.closeCodes).filter((c) => c === 1001).length, MANY, "every pod connection got 1001");
        assert.deepEqual(page.errors, [], "no page errors");
      } finally {
        await page.send("Page.close").catch(() => undefined);
        await d.stop();
      }
    });
  }
});
