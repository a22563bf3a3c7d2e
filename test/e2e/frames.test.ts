// Frame inspection end to end: real `ws` clients and real `ws` echo pods through the emulated Envoy (loopback proxy +
// host emulator + build/ws-governor.wasm) with "frames" enabled, permessage-deflate off and on; raw-socket clients
// for traffic `ws` refuses to produce. Every scenario has its own deployment and a time limit; the close codes seen
// are printed as a table in the TAP diagnostics at the end.
//   node --import tsx --test --test-reporter=tap test/e2e/frames.test.ts
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { buildFrame, closeFrame, Opcode, textFrame } from "../support/frames.ts";
import { waitFor, withTimeout } from "../support/wait.ts";
import {
  closeTable, deployFrames, G, MISBEHAVE, openWs, rawWs, sendAndEcho, upgradeStatus, wasmMissing,
  type CloseRow, type FramesDeployment, type OpenedWs,
} from "./frames_harness.ts";
import { registerClientTests } from "./frames_clients.ts";

// tick_ms 100 (the minimum): reads that must show what just happened wait one tick (the filter hands its counters to
// Envoy on its tick) — 250 ms instead of 1,150 ms. The 20-client scenarios (frames_clients.ts) keep 1 s: a close
// handshake's deadline is 2 ticks, and 20 clients on a loaded machine may need more than 200 ms.
const NO_RATE = { rate_limit: null, tick_ms: 100 };
const FRAMES = (f: Record<string, unknown> = {}) => ({ frames: { enabled: true, ...f } });
const T = { timeout: 30_000 };
const DEFLATE = { threshold: 0 }; // compress every message, however small
const rows: CloseRow[] = [];
const missing = wasmMissing();

const C = (code: number) => `${G}frame_closes_total.code.${code}`;

async function withDeployment(
  t: { diagnostic(s: string): void },
  opts: Parameters<typeof deployFrames>[0],
  run: (d: FramesDeployment) => Promise<void>,
): Promise<void> {
  const d = await deployFrames(opts);
  try {
    await run(d);
  } catch (e) {
    t.diagnostic(`--- proxy log (tail) ---\n${d.logs.slice(-60).map((l) => l.line).join("\n")}`);
    throw e;
  } finally {
    await d.stop();
  }
}

/** governor gauge, proxy gauge and pods all back to 0 open WebSockets */
async function backToZero(d: FramesDeployment): Promise<void> {
  await waitFor(
    async () => {
      const s = await d.rawStats(); // polled: no tick wait per poll
      return (s.get(`${G}active_connections`) ?? -1) === 0 && (s.get("http.ingress_ws.downstream_cx_upgrades_active") ?? -1) === 0;
    },
    { timeoutMs: 8000, intervalMs: 25, what: "active_connections and downstream_cx_upgrades_active back to 0" },
  );
  await waitFor(() => d.pods.every((p) => p.open() === 0), { timeoutMs: 5000, what: "pods back to 0 open sockets" });
}

async function closedWith(o: OpenedWs, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return withTimeout(o.closed, timeoutMs, "the client to see the connection close");
}

function row(r: Omit<CloseRow, "ok">, ok: boolean): void {
  rows.push({ ...r, ok });
}


describe("frames e2e [emulated]", { skip: missing ? `unavailable: ${missing}` : false }, () => {
  for (const deflate of [false, true]) {
    const tag = deflate ? "permessage-deflate ON" : "permessage-deflate OFF";

    test(`${tag}: messages echo; frames/messages/bytes per direction and ping/pong match what was sent`, T, async (t) => {
      await withDeployment(t, { config: { ...NO_RATE, ...FRAMES() }, podDeflate: deflate ? DEFLATE : false }, async (d) => {
        const o = await openWs(d.wsUrl(), deflate ? DEFLATE : false);
        const ext = String(o.headers["sec-websocket-extensions"] ?? "");
        if (deflate) assert.match(ext, /permessage-deflate/, "the 101 carries sec-websocket-extensions: permessage-deflate");
        else assert.equal(ext, "", "no extension negotiated");
        const text = ["hello", "é".repeat(150), "z".repeat(70_000)];
        const bin = randomBytes(1000);
        let raw = 0;
        for (const m of text) {
          assert.equal((await sendAndEcho(o, m)).toString("utf8"), m);
          raw += Buffer.byteLength(m);
        }
        assert.ok((await sendAndEcho(o, bin)).equals(bin), "binary echo");
        raw += bin.length;
        const pong = new Promise<void>((r) => o.ws.once("pong", () => r()));
        o.ws.ping(); // empty payload: bytes_total is about data either way
        await withTimeout(pong, 3000, "pong");
        const n = text.length + 1;
        await d.waitStat(`${G}control_frames_total.kind.pong`, 1);
        const s = await d.stats();
        const got = (k: string) => s.get(`${G}${k}`) ?? 0;
        assert.equal(got("messages_total.direction.downstream"), n, "messages from the client");
        assert.equal(got("messages_total.direction.upstream"), n, "messages from the pod");
        assert.equal(got("frames_total.direction.downstream"), n + 1, "frames from the client (messages + ping)");
        assert.equal(got("frames_total.direction.upstream"), n + 1, "frames from the pod (messages + pong)");
        assert.equal(got("control_frames_total.kind.ping"), 1);
        assert.equal(got("control_frames_total.kind.pong"), 1);
        assert.equal(got("control_frames_total.kind.close"), 0);
        const bd = got("bytes_total.direction.downstream");
        const bu = got("bytes_total.direction.upstream");
        if (deflate) {
          // compressed payloads (RSV1 set on every data frame) went through unharmed and are counted as sent
          assert.ok(bd > 0 && bd < raw, `compressed downstream bytes ${bd} < raw ${raw}`);
          assert.ok(bu > 0 && bu < raw, `compressed upstream bytes ${bu} < raw ${raw}`);
        } else {
          assert.equal(bd, raw, "payload bytes from the client");
          assert.equal(bu, raw, "payload bytes from the pod");
        }
        for (const c of [1001, 1002, 1008, 1009]) assert.equal(got(`frame_closes_total.code.${c}`), 0, `no ${c} close`);
        assert.equal(got("frame_resets_total"), 0);
        o.ws.close(1000, "bye");
        const cl = await closedWith(o);
        assert.equal(cl.code, 1000);
        await d.waitStat(`${G}control_frames_total.kind.close`, 2);
        assert.equal(await d.stat(`${G}frames_total.direction.downstream`), n + 2);
        assert.equal(await d.stat(`${G}frames_total.direction.upstream`), n + 2);
        await backToZero(d);
        row({ scenario: `echo + counters (${tag})`, config: "frames on", sent: `${n} msgs, ping, close 1000`, expected: "1000", got: String(cl.code), stat: `bytes down=${bd} up=${bu}` }, true);
      });
    });

    test(`${tag}: oversize message → the sender gets 1009, the pod 1001, the slot is released`, T, async (t) => {
      await withDeployment(
        t,
        { config: { ...NO_RATE, max_connections_per_pod: 1, ...FRAMES({ max_message_bytes: 1024 }) }, podDeflate: deflate ? DEFLATE : false },
        async (d) => {
          const o = await openWs(d.wsUrl(), deflate ? DEFLATE : false);
          const ok = randomBytes(900); // incompressible: the wire size stays near the raw size with deflate on
          assert.ok((await sendAndEcho(o, ok)).equals(ok), "a message under the limit echoes");
          assert.equal(await upgradeStatus(d.wsUrl()), 503, "the pod cap (1) is taken");
          o.ws.send(randomBytes(4000));
          const cl = await closedWith(o);
          const s = await d.stats();
          row({ scenario: `oversize (${tag})`, config: "max_message_bytes 1024", sent: "4000 B binary", expected: "1009", got: String(cl.code), stat: `code.1009=${s.get(C(1009)) ?? 0}` }, cl.code === 1009);
          assert.equal(cl.code, 1009, "close code seen by the client");
          assert.equal(o.received.length, 1, "the oversize message never came back");
          await backToZero(d);
          const s2 = await d.stats();
          assert.equal(s2.get(C(1009)), 1, "frame_closes_total.code.1009");
          assert.equal(s2.get(`${G}released_total`), 1);
          assert.equal(s2.get(`${G}frame_resets_total`) ?? 0, 0, "closed by the handshake, not by a reset");
          await waitFor(() => d.pods[0].closeCodes.length === 1, { timeoutMs: 3000, what: "the pod saw a close" });
          assert.equal(d.pods[0].closeCodes[0], 1001, "the peer (pod) got 1001");
          const again = await openWs(d.wsUrl(), deflate ? DEFLATE : false);
          assert.equal((await sendAndEcho(again, "slot released")).toString(), "slot released");
          again.ws.close(1000);
          await closedWith(again);
          await backToZero(d);
        },
      );
    });
  }

  test("fragmented message over max_message_bytes (each frame small) → 1009", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, ...FRAMES({ max_message_bytes: 1024, max_frame_bytes: 600 }) } }, async (d) => {
      const o = await openWs(d.wsUrl());
      o.ws.send("a".repeat(500), { fin: false });
      o.ws.send("b".repeat(500), { fin: false });
      o.ws.send("c".repeat(500), { fin: true });
      const cl = await closedWith(o);
      row({ scenario: "fragmented oversize", config: "max_message 1024, max_frame 600", sent: "3 × 500 B fragments", expected: "1009", got: String(cl.code), stat: `code.1009=${await d.stat(C(1009))}` }, cl.code === 1009);
      assert.equal(cl.code, 1009);
      assert.equal(o.received.length, 0);
      await backToZero(d);
      assert.equal(await d.stat(C(1009)), 1);
    });
  });

  test("one frame over max_frame_bytes → 1009", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, ...FRAMES({ max_frame_bytes: 100, max_message_bytes: 0 }) } }, async (d) => {
      const o = await openWs(d.wsUrl());
      assert.equal((await sendAndEcho(o, "x".repeat(100))).length, 100);
      o.ws.send("y".repeat(101));
      const cl = await closedWith(o);
      row({ scenario: "frame over max_frame_bytes", config: "max_frame_bytes 100", sent: "101 B text", expected: "1009", got: String(cl.code), stat: `code.1009=${await d.stat(C(1009))}` }, cl.code === 1009);
      assert.equal(cl.code, 1009);
      await backToZero(d);
      assert.equal(await d.stat(C(1009)), 1);
    });
  });

  test("message rate over messages_per_second → 1008", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, ...FRAMES({ messages_per_second: 2, message_burst: 2 }) } }, async (d) => {
      const o = await openWs(d.wsUrl());
      assert.equal((await sendAndEcho(o, "one")).toString(), "one");
      assert.equal((await sendAndEcho(o, "two")).toString(), "two");
      for (let i = 0; i < 6; i++) o.ws.send(`burst ${i}`);
      const cl = await closedWith(o);
      row({ scenario: "message rate", config: "2 msg/s, burst 2", sent: "2 + 6 back to back", expected: "1008", got: String(cl.code), stat: `code.1008=${await d.stat(C(1008))}` }, cl.code === 1008);
      assert.equal(cl.code, 1008);
      await backToZero(d);
      assert.equal(await d.stat(C(1008)), 1);
      assert.equal(await d.stat(`${G}released_total`), 1);
      assert.equal(d.pods[0].closeCodes[0], 1001, "the pod got 1001");
    });
  });

  for (const bad of [
    { what: "unmasked client frame", frame: () => textFrame("no mask", false) },
    { what: "RSV1 without permessage-deflate", frame: () => buildFrame({ opcode: Opcode.text, payload: "rsv1", mask: true, rsv: 4 }) },
    { what: "reserved opcode 0x3", frame: () => buildFrame({ opcode: 0x3, payload: "?", mask: true }) },
    { what: "ping payload of 126 bytes", frame: () => buildFrame({ opcode: Opcode.ping, payload: "p".repeat(126), mask: true }) },
    { what: "fragmented ping (no FIN)", frame: () => buildFrame({ opcode: Opcode.ping, payload: "p", mask: true, fin: false }) },
    { what: "continuation without a message", frame: () => buildFrame({ opcode: Opcode.continuation, payload: "c", mask: true }) },
  ]) {
    test(`protocol violation from a raw client (${bad.what}) → 1002`, T, async (t) => {
      await withDeployment(t, { config: { ...NO_RATE, ...FRAMES() } }, async (d) => {
        const r = await rawWs(d.proxy.listenerPort);
        assert.equal(r.status, 101, r.responseHead);
        r.send(textFrame("fine", true));
        const echoFrame = await r.waitFrame((f) => f.opcode === Opcode.text);
        assert.equal(echoFrame.payload.toString(), "fine");
        r.send(bad.frame());
        const close = await r.waitFrame((f) => f.opcode === Opcode.close, 5000);
        r.send(closeFrame(close.closeCode, "", true)); // a polite client answers the close
        await withTimeout(r.ended, 5000, "the proxy to end the connection");
        const texts = r.frames.filter((f) => f.opcode === Opcode.text).length;
        row({ scenario: `protocol: ${bad.what}`, config: "frames on", sent: "raw frame", expected: "1002", got: String(close.closeCode), stat: `code.1002=${await d.stat(C(1002))}` }, close.closeCode === 1002);
        assert.equal(close.closeCode, 1002);
        assert.equal(close.masked, false, "server-to-client close frames are not masked");
        assert.equal(texts, 1, "the offending frame was not echoed");
        await backToZero(d);
        assert.equal(await d.stat(C(1002)), 1);
        assert.equal(d.pods[0].closeCodes[0], 1001, "the pod got 1001");
      });
    });
  }

  test("protocol violation from the pod (masked server frame) → the pod gets 1002, the client 1001", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, ...FRAMES() } }, async (d) => {
      const o = await openWs(d.wsUrl());
      assert.equal((await sendAndEcho(o, "fine")).toString(), "fine");
      o.ws.send(MISBEHAVE);
      const cl = await closedWith(o);
      await waitFor(() => d.pods[0].closeCodes.length === 1, { timeoutMs: 5000, what: "the pod to see a close" });
      const podCode = d.pods[0].closeCodes[0];
      row({ scenario: "protocol: masked frame from the pod", config: "frames on", sent: "pod → masked text", expected: "pod 1002, client 1001", got: `pod ${podCode}, client ${cl.code}`, stat: `code.1002=${await d.stat(C(1002))}` }, podCode === 1002 && cl.code === 1001);
      assert.equal(cl.code, 1001, "the client (peer) gets 1001");
      assert.equal(podCode, 1002, "the pod (sender) gets 1002");
      assert.equal(o.received.length, 1, "the masked frame was not forwarded");
      await backToZero(d);
      assert.equal(await d.stat(C(1002)), 1);
    });
  });

  test("drain flag set in shared data (<key_prefix>:drain = [1]) → open sessions get 1001 at their next frame, new upgrades 503", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, tick_ms: 100, ...FRAMES() } }, async (d) => {
      const a = await openWs(d.wsUrl());
      const b = await openWs(d.wsUrl());
      assert.equal((await sendAndEcho(a, "a")).toString(), "a");
      assert.equal((await sendAndEcho(b, "b")).toString(), "b");
      const key = `${d.pluginConfig.key_prefix ?? "wsg"}:drain`;
      assert.deepEqual([...(d.sharedGet(key) ?? [])], [0], `${key} published as [0] at configure`);
      d.sharedPut(key, Uint8Array.of(1)); // what a second configuration with "draining": true publishes
      await waitFor(async () => (await upgradeStatus(d.wsUrl())) === 503, { timeoutMs: 5000, intervalMs: 100, what: "new upgrades refused with 503" });
      assert.ok((await d.stat(`${G}rejected_total.reason.draining`)) >= 1);
      // open sessions are not touched until they send
      assert.equal(a.ws.readyState, a.ws.OPEN);
      a.ws.send("after drain a");
      b.ws.send("after drain b");
      const [ca, cb] = await Promise.all([closedWith(a), closedWith(b)]);
      row({ scenario: "drain (shared flag)", config: "tick_ms 100", sent: "1 msg each, 2 sessions", expected: "1001,1001 + 503", got: `${ca.code},${cb.code} + 503`, stat: `code.1001=${await d.stat(C(1001))}` }, ca.code === 1001 && cb.code === 1001);
      assert.equal(ca.code, 1001);
      assert.equal(cb.code, 1001);
      await backToZero(d);
      assert.equal(await d.stat(C(1001)), 2);
    });
  });

  test("drain with frames disabled → the stream is reset at its next chunk (no frame boundary known)", T, async (t) => {
    await withDeployment(t, { config: { ...NO_RATE, tick_ms: 100 } }, async (d) => {
      const a = await openWs(d.wsUrl());
      assert.equal((await sendAndEcho(a, "a")).toString(), "a");
      d.sharedPut(`${d.pluginConfig.key_prefix ?? "wsg"}:drain`, Uint8Array.of(1));
      await waitFor(async () => (await upgradeStatus(d.wsUrl())) === 503, { timeoutMs: 5000, intervalMs: 100, what: "new upgrades refused with 503" });
      a.ws.send("after drain");
      const ca = await closedWith(a);
      row({ scenario: "drain, frames off", config: "tick_ms 100", sent: "1 msg", expected: "1006 (reset)", got: String(ca.code), stat: `resets=${await d.stat(`${G}frame_resets_total`)}` }, ca.code === 1006);
      assert.equal(ca.code, 1006, "abnormal closure: no close frame");
      await backToZero(d);
      assert.equal(await d.stat(`${G}frame_resets_total`), 1);
    });
  });

  test("shadow mode (enforce false): oversize and rate are counted, nothing is closed", T, async (t) => {
    await withDeployment(
      t,
      { config: { ...NO_RATE, enforce: false, ...FRAMES({ max_message_bytes: 1024, messages_per_second: 2, message_burst: 2 }) } },
      async (d) => {
        const o = await openWs(d.wsUrl());
        const big = "q".repeat(2000);
        assert.equal((await sendAndEcho(o, big)).toString(), big, "oversize message echoes in shadow mode");
        // the client's message and the pod's echo are both oversize: one would-be close per direction
        await d.waitStat(`${G}shadow_frame_closes_total`, 2);
        const o2 = await openWs(d.wsUrl());
        for (let i = 0; i < 6; i++) assert.equal((await sendAndEcho(o2, `m${i}`)).toString(), `m${i}`);
        await waitFor(async () => ((await d.rawStats()).get(`${G}shadow_frame_closes_total`) ?? 0) >= 4, { timeoutMs: 3000, what: "rate would-be closes counted" });
        const s = await d.stats();
        const shadow = s.get(`${G}shadow_frame_closes_total`) ?? 0;
        const open = o.ws.readyState === o.ws.OPEN && o2.ws.readyState === o2.ws.OPEN;
        row({ scenario: "shadow (enforce false)", config: "max_msg 1024, 2 msg/s", sent: "2000 B; 6 msgs", expected: "no close", got: open ? "no close" : "closed", stat: `shadow=${shadow}` }, open && shadow >= 4);
        assert.ok(open, "both sessions stay open");
        // 2 for the oversize message (both directions) + at least one per direction for messages 3..6 at 2 msg/s
        assert.ok(shadow >= 4 && shadow <= 10, `shadow_frame_closes_total ${shadow}`);
        for (const c of [1001, 1002, 1008, 1009]) assert.equal(s.get(C(c)) ?? 0, 0, `no ${c} close`);
        assert.equal(s.get(`${G}frame_resets_total`) ?? 0, 0);
        o.ws.close(1000);
        o2.ws.close(1000);
        assert.equal((await closedWith(o)).code, 1000);
        assert.equal((await closedWith(o2)).code, 1000);
        await backToZero(d);
      },
    );
  });

  registerClientTests(rows, withDeployment, backToZero);

  test("close-code table (diagnostics)", (t) => {
    for (const line of closeTable(rows).split("\n")) t.diagnostic(line);
    assert.ok(rows.length > 0, "no scenario recorded a row");
    const bad = rows.filter((r) => !r.ok).map((r) => r.scenario);
    assert.deepEqual(bad, [], "every recorded row went as expected");
  });
});
