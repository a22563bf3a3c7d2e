// Defines every stat of core/stats.ts at configure and keeps the per-VM ids (envoy-host.md §5.1).
import { statName, statKind, S, STAT_COUNT } from "../core/stats";
import { defineMetric, incrementMetric, recordMetric, getMetric } from "./abi";

export class Metrics {
  ids: StaticArray<u32> = new StaticArray<u32>(STAT_COUNT);

  define(): bool {
    let ok = true;
    for (let i = 0; i < STAT_COUNT; i++) {
      const id = defineMetric(statKind(i), statName(i));
      this.ids[i] = id;
      if (id == 0) ok = false;
    }
    return ok;
  }

  /** counters: delta > 0 only (Envoy rejects 0 and negatives on counters, §5.2); gauges: any sign */
  inc(s: i32, delta: i64 = 1): void {
    if (delta != 0) incrementMetric(this.ids[s], delta);
  }

  record(s: i32, v: u64): void { recordMetric(this.ids[s], v); }

  /** process-wide value (stats are shared by all VMs); 0 if unavailable */
  value(s: i32): u64 {
    const v = getMetric(this.ids[s]);
    return v < 0 ? 0 : u64(v);
  }
}
