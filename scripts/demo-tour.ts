// The scripted tour of the demo: accepted connections, a 503 at the pod cap, release after close and a new
// admission, then a 429 from the rate limit. Works against any running proxy (URLs given), prints as it goes and
// returns rows for the summary table.
import type WebSocket from "ws";
import { parseStatsText } from "../test/emulator/proxy/stats.ts";
import { closeWs, connectWs, echo, httpRequest, type WsOutcome } from "../test/support/ws-client.ts";
import { waitFor } from "../test/support/wait.ts";

export interface TourUrls {
  ws: (path: string) => string;
  http: (path: string) => string;
  admin: (path: string) => string;
}

export interface TourRow {
  step: string;
  expected: string;
  got: string;
  detail: string;
  ok: boolean;
}

const G = "wasmcustom.ws_governor.";

function outcomeText(o: WsOutcome): string {
  if (o.kind === "open") return "101";
  if (o.kind === "rejected") return String(o.status);
  return `error: ${o.error.message}`;
}

function h(o: WsOutcome, name: string): string | undefined {
  if (o.kind === "error") return undefined;
  const v = o.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

async function activeConnections(u: TourUrls): Promise<number | undefined> {
  const r = await httpRequest(u.admin("/stats?filter=active_connections"));
  return parseStatsText(r.body).get(`${G}active_connections`);
}

export async function runTour(u: TourUrls, log: (s: string) => void, cap = 3): Promise<TourRow[]> {
  const rows: TourRow[] = [];
  const open: WebSocket[] = [];
  let clients = 0;
  const attempt = async (step: string, expected: string): Promise<WsOutcome> => {
    const o = await connectWs(u.ws("/chat"));
    let detail = "";
    clients++;
    if (o.kind === "open") {
      open.push(o.ws);
      const reply = await echo(o.ws, `hello from client ${clients}`).catch((e: Error) => `(no echo: ${e.message})`);
      detail = `pod ${h(o, "x-pod") ?? "?"} echoed "${reply}"`;
    } else if (o.kind === "rejected") {
      const extras = ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy", "ratelimit"]
        .map((k) => (h(o, k) !== undefined ? `${k}: ${h(o, k)}` : ""))
        .filter(Boolean);
      detail = [o.body.trim().slice(0, 60), ...extras].filter(Boolean).join("; ");
    } else detail = o.error.message;
    const got = outcomeText(o);
    const row = { step, expected, got, detail, ok: got === expected };
    rows.push(row);
    log(`  ${row.ok ? "✓" : "✗"} ${step.padEnd(44)} expected ${expected}, got ${got}  ${detail}`);
    return o;
  };

  log(`\n1. ${cap} clients connect (the pod cap is ${cap})`);
  for (let i = 1; i <= cap; i++) await attempt(`client ${i} connects`, "101");

  log("\n2. one more client: the pod is full");
  await attempt(`client ${cap + 1} connects (pod full)`, "503");

  log("\n3. client 1 leaves; its slot is released and the next client gets in");
  const first = open.shift();
  if (first) await closeWs(first);
  await waitFor(async () => (await activeConnections(u)) === cap - 1, { timeoutMs: 5000, what: "the release" }).catch(() => undefined);
  await attempt("a new client connects after the release", "101");

  log("\n4. everyone leaves; then clients keep connecting and leaving until the rate limit answers");
  for (const ws of open.splice(0)) await closeWs(ws);
  await waitFor(async () => (await activeConnections(u)) === 0, { timeoutMs: 5000, what: "all released" }).catch(() => undefined);
  let limited = false;
  for (let i = 0; i < 20 && !limited; i++) {
    const o = await connectWs(u.ws("/chat"));
    if (o.kind === "open") {
      await closeWs(o.ws);
      log(`    upgrade ${i + 1}: 101, closed again`);
      continue;
    }
    if (o.kind === "rejected" && o.status === 429) {
      limited = true;
      const extras = ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy", "ratelimit"]
        .map((k) => (h(o, k) !== undefined ? `${k}: ${h(o, k)}` : ""))
        .filter(Boolean)
        .join("; ");
      rows.push({ step: "rapid reconnects hit the rate limit", expected: "429", got: "429", detail: extras, ok: true });
      log(`  ✓ upgrade ${i + 1}: 429  ${extras}`);
    } else {
      rows.push({ step: "rapid reconnects hit the rate limit", expected: "429", got: outcomeText(o), detail: "", ok: false });
      log(`  ✗ upgrade ${i + 1}: ${outcomeText(o)}`);
      break;
    }
  }
  if (!limited && !rows.some((r) => r.step.startsWith("rapid"))) {
    rows.push({ step: "rapid reconnects hit the rate limit", expected: "429", got: "never", detail: "20 upgrades all passed", ok: false });
  }
  await waitFor(async () => (await activeConnections(u)) === 0, { timeoutMs: 5000, what: "all released" }).catch(() => undefined);
  const active = await activeConnections(u).catch(() => undefined);
  rows.push({ step: "all clients gone: active connections", expected: "0", got: String(active), detail: "", ok: active === 0 });
  return rows;
}

export function table(rows: TourRow[]): string {
  const cols = ["", "step", "expected", "got", "detail"];
  const data = rows.map((r) => [r.ok ? "✓" : "✗", r.step, r.expected, r.got, r.detail.slice(0, 70)]);
  const w = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join(" │ ").trimEnd();
  return [line(cols), w.map((n) => "─".repeat(n)).join("─┼─"), ...data.map(line)].join("\n");
}
