// The live page's memory (serve mode): every second a reading of the filter's counters (its metrics endpoint, else
// admin /stats), kept for five minutes as chart points (active connections, rejections per second), plus one line
// per thing that happened in that second (accepted, 429 rate, 503 pod full, released …), worded as in the tour.
import {
  type Effective, type PodLabel, type Snapshot, REASONS, explainAccepted, explainRejected, explainReleased, explainShadow, sum,
} from "./demo-governor.ts";

export interface Point { t: number; active: number; rejectedPerSecond: number; acceptedPerSecond: number }
export interface DemoEvent { t: number; kind: string; text: string }

export const KEEP_SECONDS = 300;

export class Series {
  readonly points: Point[] = [];
  readonly events: DemoEvent[] = [];
  last: Snapshot | undefined;

  constructor(private readonly e: Effective, private readonly label: PodLabel) {}

  /** the pods the filter caps right now (its metrics endpoint's pod label), for people */
  capped(): Array<{ pod: string; label: string; active: number; rejected: number }> {
    return (this.last?.pods ?? []).map((p) => ({ ...p, label: this.label(p.pod) }));
  }

  add(s: Snapshot): void {
    const prev = this.last;
    this.last = s;
    if (!prev) {
      this.points.push({ t: s.t, active: s.active, rejectedPerSecond: 0, acceptedPerSecond: 0 });
      return;
    }
    const dt = Math.max(0.001, (s.t - prev.t) / 1000);
    const rejected = Math.max(0, sum(s.rejected) - sum(prev.rejected));
    const accepted = Math.max(0, s.accepted - prev.accepted);
    this.points.push({ t: s.t, active: s.active, rejectedPerSecond: rejected / dt, acceptedPerSecond: accepted / dt });
    while (this.points.length && this.points[0].t < s.t - KEEP_SECONDS * 1000) this.points.shift();
    for (const ev of this.describe(prev, s)) this.events.push(ev);
    if (this.events.length > 50) this.events.splice(0, this.events.length - 50);
  }

  private describe(a: Snapshot, b: Snapshot): DemoEvent[] {
    const e = this.e;
    const out: DemoEvent[] = [];
    const times = (n: number) => (n > 1 ? ` ×${n}` : "");
    const rose = (f: (p: { active: number; rejected: number }) => number) =>
      b.pods.filter((p) => f(p) > f(a.pods.find((q) => q.pod === p.pod) ?? { active: 0, rejected: 0 }));
    const fell = b.pods.filter((p) => p.active < (a.pods.find((q) => q.pod === p.pod)?.active ?? 0));
    // inbound: one capped pod (this sidecar's); upstream: the pods whose counts moved
    const one = (list: typeof b.pods) => (e.mode === "inbound" ? b.pods[0] : list.length === 1 ? list[0] : undefined);
    const accepted = b.accepted - a.accepted;
    if (accepted > 0) {
      const p = one(rose((x) => x.active));
      const line = explainAccepted(e, p && this.label(p.pod), p?.active);
      out.push({ t: b.t, kind: "accepted", text: line.replace("accepted", `accepted${times(accepted)}`) });
    }
    for (const r of REASONS) {
      const n = (b.rejected[r] ?? 0) - (a.rejected[r] ?? 0);
      if (n > 0) {
        const p = r === "pod_full" ? one(rose((x) => x.rejected)) : undefined;
        out.push({ t: b.t, kind: r, text: explainRejected(e, r, p && this.label(p.pod)).replace(":", `${times(n)}:`) });
      }
      const sh = (b.shadow[r] ?? 0) - (a.shadow[r] ?? 0);
      if (sh > 0) out.push({ t: b.t, kind: "shadow", text: explainShadow(r).replace(":", `${times(sh)}:`) });
    }
    const released = b.released - a.released;
    if (released > 0) {
      const p = one(fell);
      const line = explainReleased(e, p && this.label(p.pod), p ? p.active : b.active);
      out.push({ t: b.t, kind: "released", text: line.replace("released", `released${times(released)}`) });
    }
    return out;
  }

  json(): string {
    return JSON.stringify({ source: this.last?.source, capped: this.capped(), points: this.points, events: this.events.slice(-20) });
  }
}

/** Samples every second until stop() is called. */
export function startSampling(series: Series, read: () => Promise<Snapshot>, everyMs = 1000): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    const s = await read().catch(() => undefined);
    if (stopped) return;
    if (s) series.add(s);
    timer = setTimeout(tick, everyMs);
  };
  void tick();
  return { stop: () => { stopped = true; clearTimeout(timer); } };
}
