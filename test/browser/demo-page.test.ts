// The live demo page: `scripts/demo.ts --serve` (a child process, ports chosen by the OS) serves scripts/demo-page.html
// at the admin server's /demo; headless Chromium opens it, checks it names the pod the filter caps (as the filter's
// own metrics endpoint names it), clicks "Open connection" until the pod cap answers 503, checks the bars, counters and
// event lines against the server, waits for the chart to plot the traffic, and saves a screenshot.
// No Chromium: FAIL when CI=true, skip with the reason otherwise (test/browser/chromium.ts).
//   node --import tsx --test --test-reporter=tap test/browser/demo-page.test.ts
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "../emulator/proxy/index.ts";
import { httpRequest } from "../support/ws-client.ts";
import { wasmMissing } from "../e2e/frames_harness.ts";
import { Browser, chromiumGate } from "./chromium.ts";
import { startDemo, stopDemo, type ServedDemo } from "./demo-process.ts";

// CI writes build/screenshots/; UPDATE_SCREENSHOTS=1 refreshes the committed docs/screenshots/ copy.
const SCREENSHOT = path.join(REPO_ROOT, process.env.UPDATE_SCREENSHOTS === "1" ? "docs/screenshots" : "build/screenshots", "demo-page.png");
const gate = chromiumGate();
const missing = wasmMissing();
const skip = gate.skip || (missing ? `unavailable: ${missing}` : false);

describe("live demo page (make demo-serve) [chromium]", () => {
  let browser: Browser | undefined;
  let demo: ServedDemo | undefined;
  before(async () => {
    if (skip || gate.failReason) return;
    demo = await startDemo(120);
    browser = await Browser.launch();
  });
  after(async () => {
    await browser?.close();
    if (demo) await stopDemo(demo);
  });

  test("names the capped pod, explains each event, charts the traffic; open until 503; screenshot saved", { skip, timeout: 90_000 }, async (t) => {
    if (gate.failReason) assert.fail(gate.failReason);
    const d = demo!;
    const page = await browser!.newPage(1280, 1280);
    await page.goto(d.pageUrl);
    await page.waitFor("Number(document.body.dataset.updates) >= 1 && Number(document.body.dataset.series) >= 1", "the first polls to render");
    const cfg = JSON.parse((await httpRequest(d.adminUrl("/demo/config"))).body) as { cap: number; mode: string };
    assert.ok(cfg.cap > 0 && cfg.cap <= 10, `demo cap ${cfg.cap}`);
    assert.equal(cfg.mode, "inbound");
    assert.equal(await page.eval("document.querySelectorAll('.pod-row').length"), 3, "one bar per upstream pod");
    assert.equal(await page.eval("document.getElementById('active-count').textContent"), "0");

    // the pod the page names is the one the filter's own metrics endpoint counts, not one of the echo pods
    const metrics = await httpRequest(d.metrics!);
    const pod = /^websocket_connections_active_total\{pod="([^"]+)"\} 0$/m.exec(metrics.body)?.[1];
    assert.ok(pod, `a per-pod line in ${d.metrics}:\n${metrics.body.slice(0, 300)}`);
    const named = await page.waitFor<{ pod: string; text: string }>(
      "(() => { const e = document.getElementById('capped-pod'); return e.dataset.pod && { pod: e.dataset.pod, text: e.textContent }; })()",
      "the capped pod's name");
    assert.deepEqual(named, { pod, text: pod });
    assert.ok(!["pod-a", "pod-b", "pod-c"].includes(pod), `the capped pod ${pod} is the sidecar's, not an echo pod`);
    assert.equal(await page.eval("document.getElementById('governor-name').firstChild.textContent"), pod, "the bar at the cap is that pod's");

    // open connections with the page's own button until one is refused
    let refused = false;
    for (let i = 1; i <= cfg.cap + 2 && !refused; i++) {
      await page.eval("document.getElementById('btn-open').click()");
      await page.waitFor(`(() => { const li = document.querySelector('#conn-list li[data-id="${i}"]'); return li && li.dataset.state !== 'connecting' && (li.dataset.state !== 'refused' || li.dataset.reason); })()`, `connection #${i} to settle`);
      const st = await page.eval<{ state: string; reason: string | null }>(`(() => { const li = document.querySelector('#conn-list li[data-id="${i}"]'); return { state: li.dataset.state, reason: li.dataset.reason || null }; })()`);
      t.diagnostic(`click ${i}: ${st.state}${st.reason ? ` (${st.reason})` : ""}`);
      if (st.state === "refused") {
        refused = true;
        assert.equal(i, cfg.cap + 1, "the first refusal comes right after the cap");
        assert.equal(st.reason, "pod_full", "named from the rejection counter that moved");
      } else {
        assert.equal(st.state, "open");
        // one chart sample per connection, so the chart and the event lines show the steps one by one
        const n = await page.eval<number>("Number(document.getElementById('chart').dataset.points)");
        await page.waitFor(`Number(document.getElementById('chart').dataset.points) >= ${n + 2}`, "the next samples");
      }
    }
    assert.ok(refused, "a 503 happened");

    // the DOM catches up with the server state on its next polls
    const updatesBefore = await page.eval<number>("Number(document.body.dataset.updates)");
    await page.waitFor(`Number(document.body.dataset.updates) >= ${updatesBefore + 2}`, "two more polls");
    await page.waitFor("document.getElementById('rej-pod_full')?.dataset.count === '1'", "the pod_full counter to show 1");
    await page.waitFor(`document.getElementById('active-count').textContent === '${cfg.cap}'`, "the capped pod's bar at the cap");
    const dom = await page.eval<{ active: number[]; total: number; fullBar: boolean; width: string; text503: string }>(`({
      active: [...document.querySelectorAll('.pod-row')].map((r) => Number(r.dataset.active)),
      total: [...document.querySelectorAll('.pod-row')].reduce((a, r) => a + Number(r.dataset.total), 0),
      fullBar: document.getElementById('governor-fill').classList.contains('full'),
      width: document.getElementById('governor-fill').style.width,
      text503: document.querySelector('#conn-list li[data-state="refused"] .d').textContent,
    })`);
    const server = JSON.parse((await httpRequest(d.adminUrl("/demo/state"))).body) as {
      pods: Array<{ activeUpgrades: number }>; governor: { activeConnections: number; rejected: Record<string, number> };
    };
    assert.equal(server.governor.activeConnections, cfg.cap);
    assert.equal(server.governor.rejected.pod_full, 1);
    assert.deepEqual(dom.active, server.pods.map((p) => p.activeUpgrades), "per-pod bars match /demo/state");
    assert.equal(dom.active.reduce((a, b) => a + b, 0), cfg.cap, "the open connections are spread over the echo pods");
    assert.equal(dom.total, cfg.cap, "only admitted upgrades reached a pod");
    assert.ok(dom.fullBar, "the capped pod's bar turns red at the cap");
    assert.equal(dom.width, "100%");
    assert.match(dom.text503, /^503 pod_full$/);

    // one line per event, naming the capped pod
    const lines = await page.waitFor<Record<string, string>>(`(() => {
      const get = (k) => [...document.querySelectorAll('#events li[data-kind="' + k + '"]')].map((li) => li.textContent).join(' | ');
      const r = { accepted: get('accepted'), pod_full: get('pod_full') };
      return r.pod_full && r.accepted.includes('${cfg.cap}/${cfg.cap}') ? r : null;
    })()`, "the accepted and 503 lines");
    assert.match(lines.accepted, new RegExp(`accepted( ×\\d)? \\(101\\): ${pod} now holds ${cfg.cap}/${cfg.cap}`));
    assert.match(lines.pod_full, new RegExp(`503 pod full: ${pod} already holds ${cfg.cap}/${cfg.cap} \\(max_connections_per_pod\\)`));

    // the chart: points every second, the active line up to the cap, a rejection bar
    const chart = await page.waitFor<{ points: number; polyline: number; maxActive: number; bars: number }>(`(() => {
      const c = document.getElementById('chart');
      const pl = c.querySelector('polyline.active');
      const r = { points: Number(c.dataset.points), polyline: pl ? pl.getAttribute('points').trim().split(/\\s+/).length : 0,
        maxActive: Number(c.dataset.maxActive), bars: c.querySelectorAll('rect.rej').length };
      return r.points >= 8 && r.maxActive === ${cfg.cap} && r.bars >= 1 ? r : null;
    })()`, "chart points after the traffic", 15_000);
    assert.equal(chart.polyline, chart.points, "one polyline vertex per sample");
    t.diagnostic(`chart: ${JSON.stringify(chart)}`);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    const png = await page.screenshot();
    assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "a PNG");
    writeFileSync(SCREENSHOT, png);
    t.diagnostic(`screenshot: ${path.relative(REPO_ROOT, SCREENSHOT)} (${png.length} bytes)`);

    // closing from the page releases the slots; the bars go back down and the release is told
    await page.eval("document.getElementById('btn-close-all').click()");
    await page.waitFor("document.getElementById('active-count').textContent === '0'", "the capped pod's bar back to 0", 10_000);
    await page.waitFor("[...document.querySelectorAll('.pod-row')].every((r) => r.dataset.active === '0')", "every pod bar back to 0", 10_000);
    await page.waitFor(`[...document.querySelectorAll('#events li[data-kind="released"]')].some((li) => li.textContent.includes('${pod} back to 0/${cfg.cap}'))`,
      "the release line back to 0", 10_000);
    assert.deepEqual(page.errors, [], "no page errors");
    await page.send("Page.close").catch(() => undefined);
    assert.equal(await stopDemo(d), 0, `the demo exits cleanly on SIGTERM:\n${d.output.join("")}`);
  });
});
