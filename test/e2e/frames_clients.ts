// Many real clients at once against the frame limits: N `ws` (node) clients in this process and N Python `websockets`
// clients (test/e2e/frames_client.py, a child process stopped by its PID if it overruns). Each client records the
// close code it saw; the tests assert every client saw the expected code (never 1006 where a close frame is sent).
// Registered from frames.test.ts (registerClientTests) so `make test-frames` runs them.
// No python3 with `websockets` ($PYTHON, else python3, else /usr/bin/python3): FAIL when CI=true, skip with the reason
// printed otherwise (.ci/run installs python3-websockets).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { delay, waitFor, withTimeout } from "../support/wait.ts";
import { G, openWs, upgradeStatus, type CloseRow, type FramesDeployment, type FramesDeployOptions, type OpenedWs } from "./frames_harness.ts";

const SCRIPT = fileURLToPath(new URL("./frames_client.py", import.meta.url));
const N = 20;             // clients per client type and scenario
const FLOOD_MAX = 2000;   // messages per flooding client at most (bounded loops)
const RATE = { messages_per_second: 20, message_burst: 20 };
const T = { timeout: 60_000 };

// ------------------------------------------------------------------ python

/** A python3 that can `import websockets`: $PYTHON alone when set, else python3 on PATH, then Debian's /usr/bin/python3. */
export function pythonGate(): { python?: string; skip: string | false; failReason?: string } {
  const tried: string[] = [];
  const candidates = process.env.PYTHON ? [process.env.PYTHON] : ["python3", "/usr/bin/python3"];
  for (const py of candidates) {
    if (tried.includes(py)) continue;
    tried.push(py);
    const r = spawnSync(py, ["-c", "import websockets; print(websockets.__version__)"], { encoding: "utf8", timeout: 10_000 });
    if (r.status === 0) return { python: py, skip: false };
  }
  const why = `no python3 with the websockets module (tried ${tried.join(", ")}; apt-get install -y python3-websockets)`;
  if (process.env.CI === "true") return { skip: false, failReason: `python3-websockets is required when CI=true: ${why}` };
  console.log(`python client tests skipped: ${why}`);
  return { skip: `Python websockets unavailable: ${why}` };
}

export interface PyResult { opened: number; codes: (number | null)[]; errors: string[] }

/** Runs frames_client.py; `onReady` (mode "wait") runs once every client is open, then the clients are told to send. */
export function runPython(
  python: string,
  url: string,
  args: string[],
  onReady?: (opened: number) => Promise<void>,
  timeoutMs = 45_000,
): Promise<PyResult> {
  return new Promise<PyResult>((resolve, reject) => {
    const child = spawn(python, ["-u", SCRIPT, url, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const pid = child.pid;
    let out = "";
    let err = "";
    let readySeen = false;
    const timer = setTimeout(() => {
      if (pid !== undefined) process.kill(pid, "SIGKILL"); // only the child started here, by its PID
      reject(new Error(`frames_client.py ${args.join(" ")} did not finish within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`));
    }, timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (err += d));
    child.stdout.on("data", (d: string) => {
      out += d;
      const m = /^ready (\d+)$/m.exec(out);
      if (m && !readySeen) {
        readySeen = true;
        const go = onReady ? onReady(Number(m[1])) : Promise.resolve();
        go.then(
          () => child.stdin.end("go\n"),
          (e) => {
            child.stdin.end("go\n");
            reject(e);
          },
        );
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
      if (code !== 0 || !line) {
        reject(new Error(`frames_client.py exited ${code}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(line) as PyResult);
    });
    if (!onReady) child.stdin.end();
  });
}

// ------------------------------------------------------------------ ws (node)

/** Sends small messages in batches, yielding to the event loop between batches, until closed or FLOOD_MAX. */
async function flood(o: OpenedWs): Promise<void> {
  for (let n = 0; n < FLOOD_MAX && o.ws.readyState === o.ws.OPEN; n += 10) {
    for (let i = 0; i < 10; i++) o.ws.send(`flood ${n + i}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** FLOOD_MAX messages written at once, before the client's event loop can read anything. */
function burst(o: OpenedWs): void {
  for (let n = 0; n < FLOOD_MAX; n++) o.ws.send(`flood ${n}`); // NO_ECHO prefix: the pod stays quiet
}

async function wsClients(url: string, act: (o: OpenedWs) => Promise<void> | void, opened?: () => Promise<void>): Promise<number[]> {
  const all = await Promise.all(Array.from({ length: N }, () => openWs(url)));
  if (opened) await opened();
  const codes = all.map((o) => withTimeout(o.closed, 20_000, "a ws client to see the close").then((c) => c.code));
  await Promise.all(all.map((o) => act(o)));
  return Promise.all(codes);
}

// ------------------------------------------------------------------ scenarios

export type Client = "ws" | "python";
export const CLIENTS: Client[] = ["ws", "python"];

/** "1008×20" style summary of the codes seen. */
export function tally(codes: (number | null)[]): string {
  const m = new Map<string, number>();
  for (const c of codes) m.set(String(c), (m.get(String(c)) ?? 0) + 1);
  return [...m].sort().map(([c, n]) => `${c}×${n}`).join(" ");
}

interface Scenario {
  name: string;
  config: Record<string, unknown>;
  configText: string;
  expected: number;
  /** counter that must rise by exactly N; "" = none */
  stat: string;
  ws: (o: OpenedWs) => Promise<void> | void;
  py: string[];
  /** drain scenarios: set the flag once every client is open */
  drain?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: "flood past messages_per_second", config: { frames: { enabled: true, ...RATE } }, configText: "20 msg/s, burst 20",
    expected: 1008, stat: "frame_closes_total.code.1008", ws: flood, py: ["--mode", "flood", "--count", String(FLOOD_MAX)],
  },
  {
    name: "burst past messages_per_second (no reads while writing)", config: { frames: { enabled: true, ...RATE } }, configText: "20 msg/s, burst 20",
    expected: 1008, stat: "frame_closes_total.code.1008", ws: burst, py: ["--mode", "burst", "--count", String(FLOOD_MAX)],
  },
  {
    name: "oversize message", config: { frames: { enabled: true, max_message_bytes: 1024 } }, configText: "max_message_bytes 1024",
    expected: 1009, stat: "frame_closes_total.code.1009", ws: (o) => o.ws.send(Buffer.alloc(4096, 7)), py: ["--mode", "oversize", "--size", "4096"],
  },
  {
    name: "drain, inspection on", config: { tick_ms: 100, frames: { enabled: true } }, configText: "drain flag, tick 100 ms",
    expected: 1001, stat: "frame_closes_total.code.1001", ws: (o) => o.ws.send("after drain"), py: ["--mode", "wait"], drain: true,
  },
  {
    name: "drain, inspection off (reset)", config: { tick_ms: 100 }, configText: "drain flag, frames off",
    expected: 1006, stat: "frame_resets_total", ws: (o) => o.ws.send("after drain"), py: ["--mode", "wait"], drain: true,
  },
];

/** Sets the drain flag and waits until both workers refuse upgrades (a tick on each: 3 ticks after the first 503). */
export async function drainNow(d: FramesDeployment): Promise<void> {
  d.sharedPut(`${d.pluginConfig.key_prefix ?? "wsg"}:drain`, Uint8Array.of(1));
  await waitFor(async () => (await upgradeStatus(d.wsUrl())) === 503, { timeoutMs: 5000, intervalMs: 100, what: "upgrades refused (503)" });
  await delay(300); // pacing only: let every worker's tick read the flag
}

export function registerClientTests(
  rows: CloseRow[],
  withDeployment: (t: { diagnostic(s: string): void }, o: FramesDeployOptions, run: (d: FramesDeployment) => Promise<void>) => Promise<void>,
  backToZero: (d: FramesDeployment) => Promise<void>,
): void {
  const py = pythonGate();
  for (const sc of SCENARIOS) {
    for (const client of CLIENTS) {
      const skip = client === "python" ? py.skip : false;
      test(`${N} ${client} clients, ${sc.name} → every client sees ${sc.expected}`, { ...T, skip }, async (t) => {
        if (client === "python" && py.failReason) assert.fail(py.failReason);
        await withDeployment(t, { config: { rate_limit: null, max_connections_per_pod: 0, ...sc.config } }, async (d) => {
          let codes: (number | null)[];
          if (client === "ws") {
            codes = await wsClients(d.wsUrl(), sc.ws, sc.drain ? () => drainNow(d) : undefined);
          } else {
            const r = await runPython(py.python!, d.wsUrl(), ["--clients", String(N), ...sc.py], sc.drain ? () => drainNow(d) : undefined);
            t.diagnostic(`python: opened ${r.opened}, errors ${JSON.stringify(r.errors.slice(0, 5))}`);
            assert.equal(r.opened, N, "every python client got its 101");
            codes = r.codes;
          }
          await backToZero(d);
          const s = await d.stats();
          const count = s.get(`${G}${sc.stat}`) ?? 0;
          const got = tally(codes);
          t.diagnostic(`${client}: ${sc.name}: ${got}; ${sc.stat}=${count}`);
          const ok = codes.length === N && codes.every((c) => c === sc.expected);
          rows.push({ scenario: `${sc.name} (${client} ×${N})`, config: sc.configText, sent: client, expected: `${sc.expected}×${N}`, got, stat: `${sc.stat}=${count}`, ok });
          assert.equal(got, `${sc.expected}×${N}`, `close codes seen by the ${client} clients`);
          assert.equal(count, N, sc.stat);
          if (sc.expected !== 1006) {
            assert.equal(s.get(`${G}frame_resets_total`) ?? 0, 0, "every close finished its handshake (no reset)");
            // (drain: the 503 probes that still got a 101 were terminated by the prober: 1006 at the pod)
            const pod1001 = d.pods.flatMap((p) => p.closeCodes).filter((c) => c === 1001).length;
            assert.equal(pod1001, N, "every client's pod connection got 1001");
          }
        });
      });
    }
  }
}
