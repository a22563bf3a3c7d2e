// The soak parts of issue 13 at CI scale (make test-filter); `make soak` runs them at full scale (test/soak/run.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ok } from "../filter/support.ts";
import { soakChunkings } from "./chunkings.ts";
import { soakConfigs } from "./config_fuzz.ts";
import { soakUpgrades } from "./upgrades.ts";

test("soak (CI scale): 9k upgrade attempts, inbound and upstream mode, 4 racing VMs, forced CAS conflicts, trapped VMs, " +
  "overwritten lease tables: " +
  "0 over-admissions, 0 drift, every count 0 after the drain", () => {
  for (const [mode, attempts, cap] of [["inbound", 6000, 24], ["upstream", 3000, 8]] as const) {
    const r = soakUpgrades(mode, attempts, 0x5eed + attempts, 2);
    assert.deepEqual(r.violations, [], mode);
    assert.equal(r.overAdmissions + r.drift + r.leftover, 0);
    assert.equal(r.attempts, attempts);
    assert.equal(r.maxOpenPerPod, cap, `${mode}: the pod cap was reached`);
    assert.equal(r.maxOpenPerClient, 6, `${mode}: the client cap was reached`);
    assert.equal(r.traps, 2);
    assert.equal(r.leaseResets, 2);
    ok(r.reclaimed > 0, `${mode}: a trapped VM's slots were reclaimed`);
    ok(r.forcedConflicts > 1000 && r.casRetries >= r.forcedConflicts, `${mode}: conflicts forced and retried (${r.forcedConflicts})`);
    ok(r.upstreamFailures > 300 && r.closes > 100 && r.resets > 100, JSON.stringify(r));
    if (mode === "upstream") ok(r.refusedAt101 > 0, "pods filled up at the 101");
  }
});

test("soak (CI scale): 150 fuzzed configurations load or are refused with one critical line, never a trap", () => {
  const r = soakConfigs(150, 0xc0f19);
  assert.deepEqual(r.violations, []);
  assert.equal(r.traps + r.badRefusals, 0);
  assert.equal(r.loaded + r.refused, 150);
  ok(r.loaded > 0 && r.refused > 100, JSON.stringify(r));
  for (const k of ["wrong_type", "number", "nesting", "huge_string", "invalid_utf8", "random_bytes", "unknown_key"]) {
    ok((r.byKind[k] ?? 0) > 0, `mutation ${k} was tried`);
  }
});

test("soak (CI scale): 10k random chunkings of valid frame streams: no trap, every counter equal to the reference", () => {
  const r = soakChunkings(10_000, 0xf4a3e);
  assert.deepEqual(r.violations, []);
  assert.equal(r.traps + r.mismatches, 0);
  assert.equal(r.chunkings, 10_000);
  ok(r.checkpoints >= 5 && r.closeHandshakes > 25 && r.chunks > 2 * r.chunkings, JSON.stringify(r));
});
