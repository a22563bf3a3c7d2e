// Timing, GC and machine helpers. Every loop is bounded in count and in time.
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gcFn = runInNewContext("gc") as (() => void) | undefined;
/** full GC between measurements, so a collection triggered by one arm is not billed to the next */
export function gc(): void {
  gcFn?.();
}

export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return cpus()[0]?.model ?? "unknown CPU";
}
export function machine(): { cpu: string; cores: number; node: string; label: string; load: string } {
  const cpu = cpuModel();
  return { cpu, cores: cpus().length, node: process.version, label: `Node/V8 emulator on ${cpu}, not Envoy`,
    load: loadavg().map((x) => x.toFixed(2)).join(" / ") };
}

/** ns per call of fn over n calls */
export function nsPer(fn: () => void, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rounds of alternating batches (arm order rotated every round) of arms that time their own batches: runner(n) = ns
 *  per call over n calls (bench/lib/isolated.ts: each arm has a heap of its own and no GC is forced). Per arm the
 *  fastest batch's ns per call (the estimate least disturbed by other processes on a shared machine) and the median. */
export function alternateRunners(runners: Record<string, (n: number) => number>, rounds: number, targetMs: number,
                                 maxBatch: number, deadline: number):
                                 Record<string, { ns: number; median: number; samples: number; calls: number }> {
  const names = Object.keys(runners);
  const batch: Record<string, number> = {};
  for (const k of names) { // calibrate on a probe of at least a tenth of the target (a 20-call probe ran cold and
    // made batches up to 10× shorter than the target, and of a different length at each live level)
    let n = 20, per = runners[k](n);
    while (per * n < targetMs * 1e5 && n < maxBatch) {
      n = Math.min(maxBatch, n * 4);
      per = runners[k](n);
    }
    per = Math.min(per, runners[k](n)); // the first batch after a pause runs slower
    batch[k] = Math.max(20, Math.min(maxBatch, Math.round((targetMs * 1e6) / Math.max(per, 1))));
  }
  const samples: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  const calls: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  for (let r = 0; r < rounds && (r < 1 || performance.now() < deadline); r++) {
    for (let i = 0; i < names.length; i++) {
      const k = names[(i + r) % names.length];
      samples[k].push(runners[k](batch[k]));
      calls[k] += batch[k];
    }
  }
  return Object.fromEntries(names.map((k) => [k, { ns: Math.min(...samples[k]), median: median(samples[k]), samples: samples[k].length, calls: calls[k] }]));
}

export function fmtNs(ns: number): string {
  if (!isFinite(ns)) return "n/a";
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
