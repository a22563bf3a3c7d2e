// Defines every stat of core/stats.ts at configure and keeps the per-VM ids (envoy-host.md §5.1).
// Counter and gauge changes are kept in the guest and handed to Envoy on the tick (flushCounters, and the gauge with
// the heartbeat, root.ts), so an upgrade lifecycle makes no metric call but its duration sample: Envoy's counters and
// the gauge lag the truth by at most one tick_ms. Histogram samples go to Envoy at once (they cannot be summed).
import { statName, statKind, S, STAT_COUNT } from "../core/stats";
import { defineMetric, incrementMetric, recordMetric, getMetric } from "./abi";

export class Metrics {
  ids: StaticArray<u32> = new StaticArray<u32>(STAT_COUNT);
  /** changes not yet given to Envoy: counters (≥ 0) and, at S.Active, this VM's gauge change */
  pending: ArrayBuffer = new ArrayBuffer(STAT_COUNT << 3); // i64 per stat
  /** what this VM has added to the gauge in Envoy so far (published with its heartbeat, root.ts) */
  gaugePushed: i64 = 0;

  define(): bool {
    let ok = true;
    for (let i = 0; i < STAT_COUNT; i++) {
      const id = defineMetric(statKind(i), statName(i));
      this.ids[i] = id;
      if (id == 0) ok = false;
    }
    return ok;
  }

  /** where stat s's pending change is kept */
  @inline private at(s: i32): usize { return changetype<usize>(this.pending) + (<usize>s << 3); }

  /** counters: delta > 0 only (Envoy rejects 0 and negatives on counters, §5.2); the gauge: any sign. Histograms
   *  are never pending (record). */
  inc(s: i32, delta: i64 = 1): void {
    const p = this.at(s);
    store<i64>(p, load<i64>(p) + delta);
  }

  record(s: i32, v: u64): void { recordMetric(this.ids[s], v); }

  /** Hands every pending counter change to Envoy (one call per changed counter). */
  flushCounters(): void {
    for (let i = 0; i < STAT_COUNT; i++) {
      const p = this.at(i);
      const d = load<i64>(p);
      if (d > 0 && i != S.Active) {
        store<i64>(p, 0);
        incrementMetric(this.ids[i], d);
      }
    }
  }

  /** This VM's gauge value once its pending change is given to Envoy (what its heartbeat publishes). */
  gaugeTarget(): i64 { return this.gaugePushed + load<i64>(this.at(S.Active)); }

  /** Gives the pending gauge change to Envoy after the heartbeat published gaugeTarget(). `swept`: another VM had
   *  removed this VM from the lease table and subtracted what it had published, so that no longer counts. `dead`:
   *  what the VMs this heartbeat found dead had published (they can no longer take it back), taken off in the same
   *  call. */
  flushGauge(swept: bool, dead: i64): void {
    const target = this.gaugeTarget();
    if (swept) this.gaugePushed = 0;
    const d = target - this.gaugePushed - dead;
    store<i64>(this.at(S.Active), 0);
    this.gaugePushed = target;
    if (d != 0) incrementMetric(this.ids[S.Active], d);
  }

  /** process-wide value (stats are shared by all VMs); 0 if unavailable */
  value(s: i32): u64 {
    const v = getMetric(this.ids[s]);
    return v < 0 ? 0 : u64(v);
  }
}
