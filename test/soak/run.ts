// `make soak` (issue 13, not in CI): the three reliability soaks at full scale, each printing a summary.
//   node --import tsx test/soak/run.ts [--scale=1] [--part=upgrades|configs|chunkings] [--seed=N]
// SOAK_SCALE (or --scale) multiplies the counts: 1 = 1,000,000 upgrade attempts (750k inbound + 250k upstream mode),
// 10,000 configurations, 1,000,000 frame chunkings. Exit status 1 when any invariant was violated.
import { soakChunkings } from "./chunkings.ts";
import { soakConfigs } from "./config_fuzz.ts";
import { soakUpgrades } from "./upgrades.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const scale = Number(arg("scale") ?? process.env.SOAK_SCALE ?? 1);
const parts = (arg("part") ?? "upgrades,configs,chunkings").split(",");
const seed = Number(arg("seed") ?? 0x13);
if (!(scale > 0)) throw new Error(`bad scale ${scale}`);
const n = (full: number) => Math.max(1, Math.round(full * scale));
const s = (ms: number) => (ms / 1000).toFixed(1) + " s";
const rate = (count: number, ms: number) => Math.round(count / (ms / 1000)).toLocaleString("en-US") + "/s";
let violations = 0;
const t0 = performance.now();
// CPU seconds of this process next to wall time: on a shared machine the wall-clock rate says little
let cpu0 = process.cpuUsage();
const cpu = () => { const d = process.cpuUsage(cpu0); cpu0 = process.cpuUsage(); return `cpu ${((d.user + d.system) / 1e6).toFixed(1)} s`; };
console.log(`soak: scale ${scale}, seed ${seed}, parts ${parts.join(", ")}`);

if (parts.includes("upgrades")) {
  const total = n(1_000_000);
  for (const [mode, count, sd] of [["inbound", Math.round(total * 0.75), seed], ["upstream", total - Math.round(total * 0.75), seed + 1]] as const) {
    const r = soakUpgrades(mode, count, sd, 3);
    const bad = r.overAdmissions + r.drift + r.leftover;
    violations += bad;
    console.log(`upgrades (${mode}, 4 worker VMs): attempts=${r.attempts} admitted=${r.admitted} rejected=${r.rejected} ` +
      `upgraded=${r.upgraded} refused_at_101=${r.refusedAt101} upstream_failures=${r.upstreamFailures} closes=${r.closes} ` +
      `resets=${r.resets} forced_cas_conflicts=${r.forcedConflicts} cas_retries=${r.casRetries} traps=${r.traps} lease_table_resets=${r.leaseResets} ` +
      `reclaimed=${r.reclaimed} max_open_per_pod=${r.maxOpenPerPod} max_open_per_client=${r.maxOpenPerClient} ` +
      `decisions_checked=${r.decisions} checkpoints=${r.checkpoints} | over_admissions=${r.overAdmissions} drift=${r.drift} ` +
      `leftover_after_drain=${r.leftover} | ${s(r.ms)} (${cpu()}), ${rate(r.attempts, r.ms)} attempts`);
    for (const v of r.violations) console.log(`  VIOLATION ${v}`);
  }
}
if (parts.includes("configs")) {
  const r = soakConfigs(n(10_000), seed + 2);
  const bad = r.traps + r.badRefusals;
  violations += bad;
  console.log(`configs: inputs=${r.inputs} loaded=${r.loaded} refused_with_one_critical_line=${r.refused} | traps=${r.traps} ` +
    `bad_refusals=${r.badRefusals} | ${s(r.ms)} (${cpu()}), ${rate(r.inputs, r.ms)}; slowest load ${r.slowestMs} ms (${r.slowest})`);
  console.log(`  mutations: ${Object.entries(r.byKind).sort().map(([k, v]) => `${k}=${v}`).join(" ")}`);
  for (const v of r.violations) console.log(`  VIOLATION ${v}`);
}
if (parts.includes("chunkings")) {
  const r = soakChunkings(n(1_000_000), seed + 3);
  const bad = r.traps + r.mismatches;
  violations += bad;
  console.log(`chunkings: chunkings=${r.chunkings} connections=${r.connections} chunks=${r.chunks} frames=${r.frames} ` +
    `messages=${r.messages} payload_bytes=${r.payloadBytes} close_handshakes=${r.closeHandshakes} checkpoints=${r.checkpoints} ` +
    `| traps=${r.traps} counter_mismatches=${r.mismatches} | ${s(r.ms)} (${cpu()}), ${rate(r.chunkings, r.ms)} chunkings`);
  for (const v of r.violations) console.log(`  VIOLATION ${v}`);
}
console.log(`soak: ${violations === 0 ? "PASS" : "FAIL"}, invariant violations=${violations}, total ${s(performance.now() - t0)}`);
process.exit(violations === 0 ? 0 : 1);
