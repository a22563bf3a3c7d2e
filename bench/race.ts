// Race: CAS filter vs naive read-modify-write counter, 4 worker VMs, forced interleaving through sharedData.beforeSet:
// for each pair, VM A gets, then VM B gets and sets (a whole admission), then VM A sets.
import { Arm } from "./lib/host.ts";
import { naiveWasm } from "./lib/modules.ts";
import { fmtInt } from "./lib/measure.ts";
import type { BenchCtx } from "./lib/util.ts";
import type { FilterStream } from "../test/emulator/host/api.ts";

export function runRace({ report, P, say, ours }: BenchCtx): void {
  const cap = P.cap;
  const race = (name: string, wasm: Uint8Array, cfg: string, keyPrefix: string, resetKey: ((a: Arm) => void) | null) => {
    const a = new Arm(name, wasm, cfg, 4);
    a.rate = 0; // no ticks: only the forced interleaving touches shared data
    const names = [0, 1, 2, 3].map((i) => `worker-${i}`);
    let armedFor = "", other = -1;
    let held: FilterStream[] = [];
    let upgrades = 0, admitted = 0, over = 0, rounds = 0, interleaved = 0, roundsAtCap = 0;
    const take = (w: number) => {
      const { s, r } = a.admit(w);
      upgrades++;
      if (r.kind === "continue") { held.push(s); admitted++; return true; }
      s.complete();
      return false;
    };
    a.proc.sharedData.beforeSet = (_vmId, key, vm) => {
      if (vm !== armedFor || !key.startsWith(keyPrefix)) return;
      armedFor = "";
      interleaved++;
      take(other);
    };
    const deadline = performance.now() + P.raceMs;
    let pair = 0;
    while (upgrades + 2 <= P.raceUpgrades && performance.now() < deadline) {
      rounds++;
      held = [];
      for (let k = 0; k < 2 * cap + 8 && upgrades + 2 <= P.raceUpgrades; k++, pair++) {
        const A = pair % 4, B = (pair + 1) % 4;
        armedFor = names[A];
        other = B;
        const okA = take(A);
        armedFor = "";
        if (!okA && held.length >= cap) break; // at the cap: this round is decided
      }
      if (held.length >= cap) roundsAtCap++;
      over += Math.max(0, held.length - cap);
      for (const s of held) s.complete(); // releases run without interleaving
      resetKey?.(a);
    }
    if (a.failed()) throw new Error(`${name}: a VM trapped in the race`);
    return { upgrades, admitted, over, rounds, interleaved, roundsAtCap, retries: a.stat("wasmcustom.ws_governor.cas_retries_total") };
  };
  const f = race("filter", ours, JSON.stringify({ pod_name: "bench-pod", max_connections_per_pod: cap, rate_limit: null,
    metrics_path: "", health_path: "" }), "wsg:pod:", null);
  const n = race("naive", naiveWasm(cap), "", "naive:count", (a) => {
    a.proc.sharedData.put("", "naive:count", new Uint8Array(4));
  });
  report.detail(`Race: cap ${cap} per round, 4 worker VMs, every admission of VM A interleaved with a whole admission of VM B between A's get and A's set`,
    ["arm", "upgrades", "interleavings", "admitted", "rounds (reached cap)", "over-admissions beyond cap", "CAS retries"],
    [["filter (CAS ledger)", fmtInt(f.upgrades), fmtInt(f.interleaved), fmtInt(f.admitted), `${f.rounds} (${f.roundsAtCap})`, fmtInt(f.over), fmtInt(f.retries)],
     ["naive get/+1/set cas 0", fmtInt(n.upgrades), fmtInt(n.interleaved), fmtInt(n.admitted), `${n.rounds} (${n.roundsAtCap})`, fmtInt(n.over), "–"]]);
  report.le("Race", `over-admissions beyond the cap, ${fmtInt(f.upgrades)} racing upgrades`, f.over, 0,
    (v) => `${fmtInt(v)} (naive no-CAS counter: ${fmtInt(n.over)} over ${fmtInt(n.upgrades)} upgrades, ${(100 * n.over / Math.max(1, n.admitted)).toFixed(1)} % of its admissions)`,
    "0", (d) => `${fmtInt(d)}`);
  say("race done");
}
