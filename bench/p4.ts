// P4: memory flat over 1M lifecycles; heap bytes per live connection. The virtual clock runs at 1,000 upgrades/s per
// worker, so the filter's ticks (heartbeat, lease sweep) happen as in Envoy at that rate.
import { Arm, filterConfig } from "./lib/host.ts";
import { fmtInt } from "./lib/measure.ts";
import { fmtK, type BenchCtx } from "./lib/util.ts";

export function runP4({ report, P, say, ours, sdk }: BenchCtx): void {
  const a = new Arm("filter", ours, filterConfig(), 1);
  for (let i = 0; i < P.soakWarm; i++) a.lifecycle(0); // several tick periods: the high-water mark is reached
  const before = a.h.memoryBytes(0);
  const deadline = performance.now() + P.soakMs;
  let n = 0;
  const t0 = performance.now();
  while (n < P.soak && performance.now() < deadline) {
    for (let k = 0; k < 1000 && n < P.soak; k++, n++) a.lifecycle(0);
  }
  const secs = (performance.now() - t0) / 1000;
  const after = a.h.memoryBytes(0);
  if (a.failed()) throw new Error("filter VM trapped in the soak");
  report.le("P4", `Wasm memory before/after ${fmtInt(n)} lifecycles (after ${fmtInt(P.soakWarm)} warm-up, ticks at 1k upgrades/s)`, after - before, 0,
    () => `${fmtInt(before)} → ${fmtInt(after)} B (${fmtInt(n / secs)} lifecycles/s)`, "flat", (d) => `+${fmtInt(d)} B`);

  // the same without ticks: every managed type is acyclic, so reference counting alone frees each stream's objects
  const nt = new Arm("filter", ours, filterConfig(), 1);
  nt.rate = 0;
  const nb = nt.h.memoryBytes(0);
  for (let i = 0; i < P.noTick; i++) nt.lifecycle(0);
  const na = nt.h.memoryBytes(0);
  report.info("P4", `filter memory over ${fmtInt(P.noTick)} lifecycles with no tick`,
    `${fmtInt(nb)} → ${fmtInt(na)} B (no cycle collector: every managed type is acyclic, so memory stays bounded ` +
    `without ticks)`);

  // heap per live connection: streams held open in chunks, 64 virtual seconds of ticks after each chunk
  const hl = new Arm("filter", ours, filterConfig(), 1);
  hl.rate = 0;
  for (let i = 0; i < 2000; i++) hl.lifecycle(0);
  hl.proc.advance(64_000);
  const m0 = hl.h.memoryBytes(0);
  const target = P.levels[P.levels.length - 1];
  const chunkN = Math.max(1, Math.min(5000, target));
  const hdl = performance.now() + P.holdMs;
  const memRows: string[][] = [[fmtInt(0), fmtInt(m0)]];
  while (hl.live[0].length < target && performance.now() < hdl) {
    hl.holdOpen(0, Math.min(target, hl.live[0].length + chunkN), hdl);
    hl.proc.advance(64_000);
    if ([1000, 10_000, 100_000].includes(hl.live[0].length) || hl.live[0].length === target) {
      memRows.push([fmtInt(hl.live[0].length), fmtInt(hl.h.memoryBytes(0))]);
    }
  }
  const live = hl.live[0].length, m1 = hl.h.memoryBytes(0);
  const perLive = live > 0 ? (m1 - m0) / live : NaN;
  report.le("P4", `heap bytes per live connection (memory growth at ${fmtK(live)} live)`, perLive, 128,
    () => `${perLive.toFixed(1)} B (${fmtInt(m0)} → ${fmtInt(m1)} B)`, "≤ 128 B", (d) => `${d.toFixed(1)} B`);
  report.detail("P4 filter Wasm memory (worker 0) with N upgraded streams held open (64 s of ticks after every 5k)",
    ["live", "memory bytes"], memRows);
  hl.closeAll(0);

  // comparison: the SDK dispatcher's leak (toolchain.md §7.1)
  const s = new Arm("sdk", sdk.wasm, "", 1);
  const sb = s.h.memoryBytes(0);
  for (let i = 0; i < P.sdkSoak; i++) s.lifecycle(0);
  report.info("P4", `SDK dispatcher memory over ${fmtInt(P.sdkSoak)} lifecycles (comparison arm)`,
    `${fmtInt(sb)} → ${fmtInt(s.h.memoryBytes(0))} B`);
  say("P4 done");
}
