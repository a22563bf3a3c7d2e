// The live demo page: `scripts/demo.ts --serve` (a child process, ports chosen by the OS) serves scripts/demo-page.html
// at the admin server's /demo; headless Chromium opens it, clicks "Open connection" until the pod cap answers 503,
// checks the bars and rejection counters in the DOM against /demo/state, and saves docs/screenshots/demo-page.png.
// No Chromium: FAIL when CI=true, skip with the reason otherwise (test/browser/chromium.ts).
//   node --import tsx --test --test-reporter=tap test/browser/demo-page.test.ts
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "../emulator/proxy/index.ts";
import { httpRequest } from "../support/ws-client.ts";
import { wasmMissing } from "../e2e/frames_harness.ts";
import { Browser, chromiumGate } from "./chromium.ts";

// CI writes build/screenshots/; UPDATE_SCREENSHOTS=1 refreshes the committed docs/screenshots/ copy.
const SCREENSHOT = path.join(REPO_ROOT, process.env.UPDATE_SCREENSHOTS === "1" ? "docs/screenshots" : "build/screenshots", "demo-page.png");
const gate = chromiumGate();
const missing = wasmMissing();
const skip = gate.skip || (missing ? `unavailable: ${missing}` : false);

interface Demo {
  proc: ChildProcess;
  pageUrl: string;
  adminUrl: (p: string) => string;
  output: string[];
}

/** Starts the demo in serve mode; resolves once it printed its demo page URL. */
function startDemo(seconds: number, timeoutMs = 30_000): Promise<Demo> {
  const proc = spawn(process.execPath, ["--import", "tsx", "scripts/demo.ts", "--serve", "--seconds", String(seconds), "--port", "0", "--admin-port", "0"], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGTERM");
      reject(new Error(`the demo did not print its page URL within ${timeoutMs} ms:\n${output.join("")}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      output.push(d.toString());
      const m = /demo page:\s+(http:\/\/127\.0\.0\.1:(\d+)\/demo)\b/.exec(output.join(""));
      if (m) {
        clearTimeout(timer);
        const admin = `http://127.0.0.1:${m[2]}`;
        resolve({ proc, pageUrl: m[1], adminUrl: (p) => admin + p, output });
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) before serving:\n${output.join("")}`));
    });
  });
}

async function stopDemo(d: Demo): Promise<number | null> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return d.proc.exitCode;
  const exited = new Promise<number | null>((r) => d.proc.once("exit", (code) => r(code)));
  d.proc.kill("SIGTERM"); // this PID only
  const t = setTimeout(() => d.proc.kill("SIGKILL"), 10_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

describe("live demo page (make demo-serve) [chromium]", () => {
  let browser: Browser | undefined;
  let demo: Demo | undefined;
  before(async () => {
    if (skip || gate.failReason) return;
    demo = await startDemo(120);
    browser = await Browser.launch();
  });
  after(async () => {
    await browser?.close();
    if (demo) await stopDemo(demo);
  });

  test("bars and rejection counters update live; open until 503; screenshot saved", { skip, timeout: 90_000 }, async (t) => {
    if (gate.failReason) assert.fail(gate.failReason);
    const d = demo!;
    const page = await browser!.newPage(1280, 860);
    await page.goto(d.pageUrl);
    await page.waitFor("Number(document.body.dataset.updates) >= 1", "the first /demo/state poll to render");
    const cfg = JSON.parse((await httpRequest(d.adminUrl("/demo/config"))).body) as { cap: number };
    assert.ok(cfg.cap > 0 && cfg.cap <= 10, `demo cap ${cfg.cap}`);
    assert.equal(await page.eval("document.querySelectorAll('.pod-row').length"), 3, "one bar per upstream pod");
    assert.equal(await page.eval("document.getElementById('active-count').textContent"), "0");

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
      } else assert.equal(st.state, "open");
    }
    assert.ok(refused, "a 503 happened");

    // the DOM catches up with the server state on its next polls
    const updatesBefore = await page.eval<number>("Number(document.body.dataset.updates)");
    await page.waitFor(`Number(document.body.dataset.updates) >= ${updatesBefore + 2}`, "two more polls");
    await page.waitFor("document.getElementById('rej-pod_full')?.dataset.count === '1'", "the pod_full counter to show 1");
    await page.waitFor(`document.getElementById('active-count').textContent === '${cfg.cap}'`, "the governor bar at the cap");
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
    assert.equal(dom.active.reduce((a, b) => a + b, 0), cfg.cap, "the open connections are spread over the pod bars");
    assert.equal(dom.total, cfg.cap, "only admitted upgrades reached a pod");
    assert.ok(dom.fullBar, "the governor bar turns red at the cap");
    assert.equal(dom.width, "100%");
    assert.match(dom.text503, /^503 pod_full$/);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    const png = await page.screenshot();
    assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "a PNG");
    writeFileSync(SCREENSHOT, png);
    t.diagnostic(`screenshot: ${path.relative(REPO_ROOT, SCREENSHOT)} (${png.length} bytes)`);

    // closing from the page releases the slots; the bars go back down
    await page.eval("document.getElementById('btn-close-all').click()");
    await page.waitFor("document.getElementById('active-count').textContent === '0'", "the governor bar back to 0", 10_000);
    await page.waitFor("[...document.querySelectorAll('.pod-row')].every((r) => r.dataset.active === '0')", "every pod bar back to 0", 10_000);
    assert.deepEqual(page.errors, [], "no page errors");
    await page.send("Page.close").catch(() => undefined);
    assert.equal(await stopDemo(d), 0, `the demo exits cleanly on SIGTERM:\n${d.output.join("")}`);
  });
});
