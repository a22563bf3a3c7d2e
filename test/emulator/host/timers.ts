// proxy_set_tick_period_milliseconds (§3.4): one timer per root context per VM; first tick after p ms, re-armed after
// each tick (measured from its end), 0 stops, a new period restarts. Virtual time: advance(ms) delivers due ticks in
// time order across all VMs. Real time: unref'd Node timers.

export interface TickTarget {
  /** runs proxy_on_tick; returns false if the timer must not be re-armed (VM failed/destroyed) */
  fire(): boolean;
}

interface Entry { target: TickTarget; period: number; due: number; seq: number; handle?: NodeJS.Timeout }

export class TickScheduler {
  private entries = new Map<TickTarget, Entry>();
  private seq = 0;
  private closed = false;
  constructor(private readonly virtual: boolean, private readonly now: () => number) {}

  set(target: TickTarget, periodMs: number): void {
    const old = this.entries.get(target);
    if (old?.handle) clearTimeout(old.handle);
    this.entries.delete(target);
    if (periodMs <= 0 || this.closed) return;
    const e: Entry = { target, period: periodMs, due: this.now() + periodMs, seq: this.seq++ };
    this.entries.set(target, e);
    if (!this.virtual) this.arm(e);
  }
  clear(target: TickTarget): void {
    this.set(target, 0);
  }
  period(target: TickTarget): number {
    return this.entries.get(target)?.period ?? 0;
  }

  private arm(e: Entry): void {
    e.handle = setTimeout(() => {
      if (this.entries.get(e.target) !== e) return;
      this.fireOne(e);
    }, e.period);
    e.handle.unref();
  }

  private fireOne(e: Entry): void {
    const alive = e.target.fire();
    // the tick may have changed its own period (set() replaced the entry) — keep that one
    if (this.entries.get(e.target) !== e) return;
    if (!alive || this.closed) {
      this.entries.delete(e.target);
      return;
    }
    e.due = this.now() + e.period;
    e.seq = this.seq++;
    if (!this.virtual) this.arm(e);
  }

  /** virtual time: deliver every tick due at or before `until`; `setNow` moves the clock to each tick's time */
  runUntil(until: number, setNow: (t: number) => void): void {
    for (;;) {
      let next: Entry | undefined;
      for (const e of this.entries.values()) {
        if (e.due <= until && (!next || e.due < next.due || (e.due === next.due && e.seq < next.seq))) next = e;
      }
      if (!next) break;
      setNow(next.due);
      this.fireOne(next);
    }
    setNow(until);
  }

  /** Harness affordance, not an Envoy behaviour: delivers one tick to every armed timer now, in due order (as if
   *  each had come due), and re-arms each from now. Virtual time only. Tests use it to read stats the filter hands to
   *  Envoy on its tick (assembly/host/metrics.ts) without moving the clock. */
  fireAllNow(): void {
    if (!this.virtual) throw new Error("fireAllNow() needs virtual time");
    const due = [...this.entries.values()].sort((a, b) => a.due - b.due || a.seq - b.seq);
    for (const e of due) if (this.entries.get(e.target) === e) this.fireOne(e);
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) if (e.handle) clearTimeout(e.handle);
    this.entries.clear();
  }
}
