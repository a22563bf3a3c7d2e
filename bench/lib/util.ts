// Shared by bench/run.ts and its parts (p3.ts, p4.ts, race.ts): the run's context and small formatting helpers.
import type { Report } from "./report.ts";

/** every count and time bound of a run (bench/run.ts: full, or tiny with --smoke) */
export interface Params {
  levels: number[]; sdkLevels: number[]; warmMs: number; rounds: number; batchMs: number; maxBatch: number;
  holdMs: number; levelMs: number; p2Reps: number; framesMs: number; framesMaxIter: number; framesRounds: number;
  soak: number; soakWarm: number; soakMs: number; noTick: number; sdkSoak: number; raceUpgrades: number; raceMs: number;
  cap: number;
}

/** what a part of the run needs: the report, the bounds, the progress line, the modules measured */
export interface BenchCtx {
  report: Report;
  P: Params;
  say: (s: string) => void;
  ours: Uint8Array;
  lean: Uint8Array;
  empty: Uint8Array;
  sdk: { wasm: Uint8Array; flags: string; compiled: boolean };
}

export function add(acc: Record<string, number>, c: Record<string, number>): void {
  for (const [k, v] of Object.entries(c)) acc[k] = (acc[k] ?? 0) + v;
}
export function per(acc: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, v / n]));
}
export function total(c: Record<string, number>): number {
  return Object.values(c).reduce((a, b) => a + b, 0);
}
export function kinds(...cs: Array<Record<string, number>>): string[] {
  return [...new Set(cs.flatMap((c) => Object.keys(c)))].sort();
}
export function num(v: number | undefined): string {
  if (v === undefined) return "0";
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
export function desc(c: Record<string, number>, _what: "shared"): string {
  return `get ${num(c.proxy_get_shared_data)}, set ${num(c.proxy_set_shared_data)}`;
}
export function fmtK(n: number): string {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}
export function pct(x: number): string {
  return `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
}
