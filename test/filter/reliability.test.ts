// Reliability runs (issue: "4 worker VMs with forced CAS conflicts → 0 over-admissions in ≥100k attempts and 0 drift
// after random close/reset/upstream failure"). Bounded in count; every step checks the invariants.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  makeEnv, conn, upgradeHeaders, H101, isContinue, finishReply, podTotal, clientTotal, rng, ok, VMID,
  type FilterStream,
} from "./support.ts";

const ATTEMPTS = 100_000;
const CAP = 24;
const WORKERS = 4;

interface Live { s: FilterStream; upgraded: boolean }

test(`reliability: ${ATTEMPTS} upgrade attempts on ${WORKERS} racing VMs with forced CAS conflicts and random ends: ` +
  "never over the cap, no drift", () => {
  const e = makeEnv({
    concurrency: WORKERS,
    config: { rate_limit: null, max_connections_per_pod: CAP, max_connections_per_client: 6, cas_max_attempts: 16 },
  });
  const rand = rng(0x5eed);
  // Forced conflicts: before a quarter of the sets, another writer rewrites the same bytes (only the cas changes),
  // so the set in flight gets CasMismatch and the filter must re-read and decide again.
  let forced = 0;
  let inHook = false;
  e.proc.sharedData.beforeSet = (vmId, key) => {
    if (inHook || vmId !== VMID || !(key.startsWith("wsg:pod:") || key.startsWith("wsg:cli:"))) return;
    if (rand() < 0.25) {
      inHook = true;
      const cur = e.proc.sharedData.get(vmId, key);
      if (cur) { e.proc.sharedData.put(vmId, key, cur.value); forced++; }
      inHook = false;
    }
  };
  const live: Live[] = [];
  let admitted = 0;
  let rejected = 0;
  let upgradedNow = 0;
  let maxSlots = 0;
  const endOne = (i: number): void => {
    const l = live[i];
    live[i] = live[live.length - 1];
    live.pop();
    const how = rand();
    if (!l.upgraded) {
      // still waiting for its 101: the upstream answers something else, or the connect fails (router 503)
      if (how < 0.5) { ok(isContinue(l.s.encodeHeaders([[":status", "502"]], true)), "non-101 passes"); l.s.complete(); }
      else { l.s.encodeHeaders([[":status", "503"], ["content-length", "0"]], true, "upstream_reset_before_response_started{remote_connection_failure}"); l.s.complete(); }
      return;
    }
    upgradedNow--;
    if (how < 0.5) l.s.complete();                       // normal close
    else if (how < 0.8) l.s.reset("downstream_remote_disconnect"); // client reset
    else { l.s.encodeData(new Uint8Array(0), false); l.s.reset("upstream_reset"); } // upstream pod killed
  };
  try {
    // ATTEMPTS upgrade attempts, interleaved with 101s and ends (bounded: at most 4·ATTEMPTS steps)
    for (let n = 0; admitted + rejected < ATTEMPTS && n < 4 * ATTEMPTS; n++) {
      const r = rand();
      if (r < 0.5 || live.length === 0) {
        const client = `10.0.${Math.floor(rand() * 8)}.1:${40000 + (n % 20000)}`;
        const s = e.h.newStream(Math.floor(rand() * WORKERS), conn(client));
        const res = s.decodeHeaders(upgradeHeaders(), false);
        if (isContinue(res)) { admitted++; live.push({ s, upgraded: false }); }
        else { rejected++; finishReply(s); }
      } else if (r < 0.75) {
        const l = live[Math.floor(rand() * live.length)];
        if (!l.upgraded) { ok(isContinue(l.s.encodeHeaders(H101, false)), "101 passes"); l.upgraded = true; upgradedNow++; }
      } else {
        endOne(Math.floor(rand() * live.length));
      }
      // invariants after every step: never over the cap; the ledger is exactly what is open
      maxSlots = Math.max(maxSlots, live.length);
      if (live.length > CAP) assert.fail(`over-admission at step ${n}: ${live.length} open > cap ${CAP}`);
      if (n % 997 === 0) assert.equal(podTotal(e.proc), live.length, `ledger drift at step ${n}`);
    }
    assert.equal(admitted + rejected, ATTEMPTS, "all attempts made");
    assert.equal(podTotal(e.proc), live.length, "ledger = open slots before the drain");
    assert.equal(e.stat("active_connections"), live.length, "gauge = open slots before the drain");
    while (live.length > 0) endOne(live.length - 1);
    assert.equal(podTotal(e.proc), 0, "pod ledger back to 0");
    assert.equal(clientTotal(e.proc), 0, "client ledgers back to 0");
    assert.equal(e.stat("active_connections"), 0, "gauge back to 0");
    assert.equal(e.stat("orphan_releases_total"), 0, "no release found a missing share");
    assert.equal(e.stat("upgrades_total"), admitted + rejected);
    assert.equal(e.stat("accepted_total"), e.stat("released_total"), "every accepted connection released once");
    ok(forced > 10_000, `forced conflicts really happened (${forced})`);
    ok(e.stat("cas_retries_total") >= forced * 0.9, "conflicts were retried");
    ok(maxSlots === CAP, `the cap was reached (max ${maxSlots})`);
    ok(rejected > 1000, `rejections happened (${rejected})`);
    console.log(`# reliability: attempts=${ATTEMPTS} admitted=${admitted} rejected=${rejected} forced_conflicts=${forced} ` +
      `cas_retries=${e.stat("cas_retries_total")} max_open=${maxSlots} cap=${CAP} over_admissions=0 drift=0`);
  } finally {
    e.close();
  }
});
