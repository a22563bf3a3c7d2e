// The scripted tour of the demo, for any configuration: clients connect until the filter refuses one (503 pod full,
// 429 client full or rate), one leaves and its slot is released, everyone leaves (back to 0), then rapid reconnects
// meet the rate limit. Each attempt gets one line saying what happened, with the pod actually capped named from the
// filter's own metrics endpoint. What to expect is worked out from the configuration (TourModel), so the tour checks
// the filter instead of printing whatever happens. Returns rows for the summary table.
// The filter hands its counters and active gauge to Envoy on its tick (at most tick_ms late; its metrics endpoint
// flushes the serving VM's counters first): an attempt's line is written once the upgrade shows in upgrades_total
// (with it, that attempt's other counters: one stream, one VM, one hand-over).
import type WebSocket from "ws";
import { closeWs, connectWs, echo, type WsOutcome } from "../test/support/ws-client.ts";
import { waitFor } from "../test/support/wait.ts";
import {
  type Effective, type PodLabel, type Snapshot, explainAccepted, explainRejected, explainReleased, explainShadow, podSource,
  readSnapshot,
} from "./demo-governor.ts";

export interface TourUrls {
  ws: (path: string) => string;
  /** the filter's metrics endpoint on the listener, undefined when metrics_path is "" */
  metrics: string | undefined;
  admin: (path: string) => string;
}

export interface TourRow { step: string; expected: string; got: string; detail: string; ok: boolean }

export interface TourSetup {
  urls: TourUrls;
  config: Effective;
  /** the upstream pods the demo started: name (x-pod header) and address */
  pods: Array<{ name: string; address: string }>;
  log: (s: string) => void;
}

const FILL_MAX = 12;      // at most this many clients at once
const RATE_MAX = 200;     // at most this many rapid reconnects

/** What the filter should answer next, from its configuration and what it admitted so far (all demo clients share
 *  one rate bucket and one client key: they all come from 127.0.0.1 without headers). */
export class TourModel {
  used = 0;                                   // rate-limit tokens taken
  client = 0;                                 // this client's open connections
  readonly pods = new Map<string, number>();  // pod key → open connections
  private readonly start = Date.now();
  constructor(private readonly e: Effective, private readonly podKeys: string[]) {}

  expected(): string[] {
    const e = this.e;
    if (!e.enforce) return ["101"];
    if (e.draining) return ["503"];
    const out = new Set<string>();
    let passes: "yes" | "maybe" = "yes";
    if (e.rate && this.used >= e.rate.burst) {
      const refill = (((Date.now() - this.start) / 1000) * e.rate.requests) / e.rate.windowSeconds;
      out.add("429");
      if (this.used >= e.rate.burst + refill + 1) return ["429"];
      passes = "maybe";
    }
    if (e.clientCap > 0 && this.client >= e.clientCap) out.add("429");
    else if (e.cap > 0 && e.mode === "inbound" && (this.pods.get("self") ?? 0) >= e.cap) out.add("503");
    else if (e.cap > 0 && e.mode === "upstream") {
      const full = this.podKeys.filter((k) => (this.pods.get(k) ?? 0) >= e.cap).length;
      if (full > 0) out.add("503");
      if (full < this.podKeys.length) out.add("101");
    } else out.add("101");
    if (passes === "maybe") out.add("429");
    return [...out].sort();
  }

  record(status: string, reason: string | undefined, podKey: string | undefined): void {
    if (status === "101") {
      this.used++;
      this.client++;
      if (podKey) this.pods.set(podKey, (this.pods.get(podKey) ?? 0) + 1);
    } else if (reason && reason !== "rate_limited") this.used++; // the rate limit is checked first and took a token
  }

  release(podKey: string | undefined): void {
    this.client = Math.max(0, this.client - 1);
    if (podKey) this.pods.set(podKey, Math.max(0, (this.pods.get(podKey) ?? 0) - 1));
  }
}

function header(o: WsOutcome, name: string): string | undefined {
  if (o.kind === "error") return undefined;
  const v = o.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

const moved = (a: Record<string, number>, b: Record<string, number>) => Object.keys(b).find((k) => (b[k] ?? 0) > (a[k] ?? 0));

export async function runTour(s: TourSetup): Promise<TourRow[]> {
  const { urls: u, config: e, log } = s;
  const rows: TourRow[] = [];
  let n = 0;
  const heading = (text: string) => log(`\n${++n}. ${text}`);
  const addrOf = new Map(s.pods.map((p) => [p.name, p.address]));
  const nameOf = new Map(s.pods.map((p) => [p.address, p.name]));
  const label: PodLabel = (pod) => (nameOf.has(pod) ? `${nameOf.get(pod)} (${pod})` : pod);
  const model = new TourModel(e, s.pods.map((p) => p.address));
  const snap = () => readSnapshot(u.metrics, u.admin("/stats?filter=ws_governor"));
  const open: Array<{ ws: WebSocket; key: string | undefined }> = [];
  let clients = 0;
  let upgrades = 0; // upgrades the tour made
  const connect = () => { upgrades++; return connectWs(u.ws("/chat")); };
  /** a snapshot showing `n` upgrades (bounded: one tick and a second; else the latest reading) */
  const settled = (n: number) =>
    waitFor(async () => { const x = await snap(); return x.upgrades >= n ? x : undefined; },
      { timeoutMs: e.tickMs + 1000, intervalMs: 50, what: `${n} upgrades counted` }).catch(() => snap());

  // the pod the filter caps, as its own metrics endpoint names it
  const first = await snap();
  const base = first.upgrades;
  const cappedPod = (sn: Snapshot) => (e.mode === "inbound" ? sn.pods[0]?.pod : undefined);
  const capped = cappedPod(first);
  log(`\nThe capped pod — ${podSource(e)}:`);
  if (e.mode === "inbound") {
    log(capped
      ? `  ${capped} (from the filter's metrics endpoint), cap ${e.cap || "none"}; the ${s.pods.length} echo pods behind it are not capped`
      : `  (not named: the filter's metrics endpoint is off or refused us), cap ${e.cap || "none"}`);
  } else log(`  each of ${s.pods.map((p) => label(p.address)).join(", ")}, cap ${e.cap || "none"} each`);

  const attempt = async (step: string): Promise<WsOutcome> => {
    const expected = model.expected();
    const before = await snap();
    const o = await connect();
    const after = await settled(base + upgrades);
    clients++;
    const got = o.kind === "open" ? "101" : o.kind === "rejected" ? String(o.status) : "error";
    const reason = moved(before.rejected, after.rejected);
    let detail: string;
    let key: string | undefined;
    if (o.kind === "open") {
      const upstream = header(o, "x-pod");
      key = e.mode === "inbound" ? "self" : addrOf.get(upstream ?? "");
      const pod = e.mode === "inbound" ? cappedPod(after) : key;
      const count = after.pods.find((p) => p.pod === pod)?.active;
      const reply = await echo(o.ws, `hello from client ${clients}`).catch(() => undefined);
      const shadow = moved(before.shadow, after.shadow);
      detail = (shadow ? explainShadow(shadow) : explainAccepted(e, pod && label(pod), count)) +
        (e.mode === "inbound" ? ` · Envoy sent it to ${upstream ?? "?"}${reply ? " (echoed)" : ""}` : "");
      open.push({ ws: o.ws, key });
    } else if (o.kind === "rejected") {
      const podRejected = after.pods.find((p) => p.rejected > (before.pods.find((b) => b.pod === p.pod)?.rejected ?? 0))?.pod;
      detail = reason ? explainRejected(e, reason, podRejected && label(podRejected), header(o, "retry-after")) : `refused ${o.status} (no counter moved)`;
    } else detail = o.error.message;
    model.record(got, reason, key);
    const ok = expected.includes(got);
    rows.push({ step, expected: expected.join("/"), got, detail, ok });
    log(`  ${ok ? "✓" : "✗"} ${step}: ${detail}${ok ? "" : `  (expected ${expected.join(" or ")}, got ${got})`}`);
    return o;
  };
  const waitActive = async (n: number) => {
    await waitFor(async () => (await snap()).active === n, { timeoutMs: 5000, what: `${n} active` }).catch(() => undefined);
    return snap();
  };
  const releasedLine = (sn: Snapshot, key: string | undefined) => {
    const pod = e.mode === "inbound" ? cappedPod(sn) : key;
    return explainReleased(e, pod && label(pod), pod ? sn.pods.find((p) => p.pod === pod)?.active : sn.active);
  };

  // 1. fill
  const perPod = e.mode === "inbound" ? 1 : s.pods.length;
  const toCap = e.cap > 0 ? e.cap * perPod + 1 : 0;
  const fill = Math.min(toCap || 3, FILL_MAX);
  heading(`clients connect one by one (cap ${e.cap || "none"} per pod${e.clientCap ? `, ${e.clientCap} per client` : ""})` +
    (toCap > FILL_MAX || !toCap ? ` — the tour opens ${fill}${toCap ? `, fewer than it takes to fill the cap` : ""}` : ""));
  for (let i = 1; i <= fill; i++) {
    const o = await attempt(`client ${i}`);
    if (o.kind !== "open") break;
  }

  // 2. one leaves
  const leaving = open.shift();
  if (leaving) {
    heading("client 1 leaves: its slot is released and the next client may get in");
    await closeWs(leaving.ws);
    model.release(leaving.key);
    const sn = await waitActive(open.length);
    log(`  ✓ client 1 leaves: ${releasedLine(sn, leaving.key)}`);
    await attempt(`client ${clients + 1} (after the release)`);
  }

  // 3. everyone leaves
  heading("everyone leaves: every slot is released");
  for (const c of open.splice(0)) {
    await closeWs(c.ws);
    model.release(c.key);
  }
  const empty = await waitActive(0);
  log(`  ${empty.active === 0 ? "✓" : "✗"} all closed: ${releasedLine(empty, undefined)}`);

  // 4. the rate limit
  const left = e.rate ? e.rate.burst - model.used : 0;
  if (!e.rate || !e.enforce || e.draining) {
    heading(`rate limit: not shown (${!e.rate ? "rate_limit is null" : !e.enforce ? "shadow mode: nothing is refused" : "draining refuses every upgrade"})`);
  } else if (left > RATE_MAX) {
    heading(`rate limit: not shown (its burst of ${e.rate.burst} is more than the ${RATE_MAX} reconnects this tour makes)`);
  } else {
    heading(`clients connect and leave at once, again and again: ${Math.max(0, left)} more upgrades fit in the burst of ${e.rate.burst}`);
    let passed = 0;
    let row: TourRow = { step: "rapid reconnects meet the rate limit", expected: "429", got: "never", detail: "", ok: false };
    for (let i = 0; i < left + 5 && row.got === "never"; i++) {
      const o = await connect();
      if (o.kind === "open") {
        model.record("101", undefined, undefined);
        await closeWs(o.ws);
        passed++;
        continue;
      }
      const got = o.kind === "rejected" ? String(o.status) : "error";
      const detail = got === "429" ? explainRejected(e, "rate_limited", undefined, header(o, "retry-after")) : o.kind === "error" ? o.error.message : o.body;
      row = { ...row, got, detail, ok: got === "429" };
    }
    if (passed) log(`    ${passed} upgrade${passed > 1 ? "s" : ""}: 101, closed again`);
    log(`  ${row.ok ? "✓" : "✗"} upgrade ${passed + 1}: ${row.got === "never" ? `never refused after ${passed}` : row.detail}`);
    rows.push(row);
  }

  const end = await waitActive(0);
  await settled(base + upgrades); // what the demo prints next (the metrics endpoint) counts every upgrade of the tour
  rows.push({ step: "all clients gone: active connections", expected: "0", got: String(end.active), detail: "", ok: end.active === 0 });
  return rows;
}

export function table(rows: TourRow[]): string {
  const cols = ["", "step", "expected", "got", "detail"];
  const data = rows.map((r) => [r.ok ? "✓" : "✗", r.step, r.expected, r.got, r.detail.slice(0, 90)]);
  const w = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join(" │ ").trimEnd();
  return [line(cols), w.map((n) => "─".repeat(n)).join("─┼─"), ...data.map(line)].join("\n");
}
