// Fleet mode: the fleet's view on /websocket/metrics (docs/fleet.md §6). Fleet module only: every entry point is
// reached through `if (FLEET)`, and nothing here runs at module level (the local module imports this file too).
//
// Publishing: at a tick, one VM of the process (elected per period by a CAS on a shared-data record) puts
// `<prefix>stats/<holder>` = `used` per pod, under the process's etcd lease.
// Scrape: an allowed metrics request (endpoints.ts) waits (StopIteration) while this VM's root reads the `pod/` and
// `stats/` ranges in one txn; the answer is the local page plus the fleet's series, or the local page with
// ws_governor_fleet_up 0 when etcd did not answer within call_timeout_ms. Scrapes that arrive while a read is in
// flight share its answer. Every call is made and answered on the root context; a stream is answered through
// proxy_set_effective_context, and one that ended meanwhile is skipped.
import { S } from "../core/stats";
import { ST_OK, ST_NOT_FOUND } from "../core/store";
import { podKey } from "../core/ledger";
import { decodeLedger } from "../core/codec";
import { EtcdKv } from "../core/etcd";
import { statsLine, publishDue, publishRecord, statsPutRequest, scrapeRequest, parseRanges, FleetView, summarize,
         renderFleet, renderFleetDown } from "../core/fleet_view";
import { nowMs, setEffectiveContext, sendLocalReply, OK } from "../host/abi";
import { httpPost, callStatus, callBody } from "../host/http";
import { Root, roots } from "./root";
import { Stream, streams } from "./stream";
import { liveLease } from "./fleet_lease";

/** One VM's view state (per root context). */
class ViewVm {
  root: u32 = 0;
  putToken: u32 = 0;
  putMs: u64 = 0;
  scrapeToken: u32 = 0;
  scrapeMs: u64 = 0;
  waiting: Array<u32> = new Array<u32>(0);    // metrics streams of this VM waiting for the scrape's answer
  pages: Array<string> = new Array<string>(0); // and their local pages (taken when each request came)
}

// Created on first use and kept for the VM's life (one reference taken by __retain), reached through a plain
// pointer: a global of a managed type would make AssemblyScript 0.17 emit that type's visitor into the local module
// as well (+27 B there), which must not grow. One entry per root context of this VM (usually one).
let viewVms: usize = 0;
function vms(): Array<ViewVm> {
  if (viewVms == 0) viewVms = __retain(changetype<usize>(new Array<ViewVm>(0)));
  return changetype<Array<ViewVm>>(viewVms);
}

function find(root: u32): ViewVm | null {
  const t = vms();
  for (let i = 0; i < t.length; i++) if (t[i].root == root) return t[i];
  return null;
}

function vmOf(root: u32): ViewVm {
  let v = find(root);
  if (v === null) {
    v = new ViewVm();
    v.root = root;
    vms().push(v);
  }
  return v;
}

/** This VM takes the period for lease `id` (CAS on the process's publication record, `<key_prefix>:fleetpub`). The
 *  record is created by the first claim: Envoy ignores the cas of a set on a missing key, so two VMs may both publish
 *  once then. */
function claimPeriod(root: Root, id: u64, now: u64, periodMs: u32): bool {
  const store = root.store;
  const key = root.config.keyPrefix + ":fleetpub";
  const st = store.get(key);
  const due = (st == ST_OK || st == ST_NOT_FOUND) && publishDue(store.valuePtr, store.valueLen, id, now, u64(periodMs));
  const cas = store.cas;
  store.done();
  return due && store.set(key, publishRecord(id, now), cas) == ST_OK;
}

/** The process's `used` per pod (the pod ledgers in shared data); this sidecar's pod even at 0. */
function statsText(root: Root): string {
  const cfg = root.config;
  let text = "";
  let seen = root.pod.length == 0;
  for (let i: u32 = 0; i < cfg.maxPods; i++) {
    if (root.store.get(podKey(cfg.keyPrefix, i32(i))) != ST_OK) { root.store.done(); continue; }
    const l = decodeLedger(root.store.valuePtr, root.store.valueLen);
    root.store.done();
    if (l === null || l.name.length == 0) continue;
    text += statsLine(l.name, l.total());
    if (l.name == root.pod) seen = true;
  }
  if (!seen) text += statsLine(root.pod, 0);
  return text;
}

/** Root tick: a watchdog for a scrape or put whose answer never came, then this period's publication if due. */
export function fleetViewTick(root: Root): void {
  const f = root.config.fleet;
  if (f === null) return;
  const v = vmOf(root.id);
  const now = nowMs();
  const stale = 2 * u64(f.callTimeoutMs) + u64(root.config.tickMs); // Envoy answers every call by its timeout
  if (v.scrapeToken != 0 && now - v.scrapeMs > stale) answer(root, v, renderFleetDown(), false);
  if (v.putToken != 0 && now - v.putMs > stale) v.putToken = 0;
  if (v.putToken != 0) return;
  const id = liveLease(root);
  if (id == 0 || !claimPeriod(root, id, now, f.statsPeriodMs)) return;
  root.metrics.inc(S.FleetStatsPuts);
  v.putMs = now;
  v.putToken = httpPost(f.cluster, "/v3/kv/put", statsPutRequest(f.prefix, id, statsText(root)), f.callTimeoutMs);
  if (v.putToken == 0) root.metrics.inc(S.FleetStatsPutFailures);
}

/** An allowed metrics request in fleet mode, with its local page: answered now (fleet_up 0) if the read cannot be
 *  sent, otherwise after the txn's answer. The caller returns StopIteration either way. */
export function fleetScrape(s: Stream, page: string): void {
  const root = s.root;
  const f = root.config.fleet;
  if (f === null) return;
  const v = vmOf(root.id);
  root.metrics.inc(S.FleetScrapes);
  // The dispatcher keeps only upgrades in `streams` (lazy contexts); a waiting scrape is kept there too, so that its
  // end (on_log/on_done/on_delete) is seen and its answer skipped.
  streams.set(s.id, s);
  v.waiting.push(s.id);
  v.pages.push(page);
  if (v.scrapeToken != 0) return;
  v.scrapeMs = nowMs();
  v.scrapeToken = httpPost(f.cluster, "/v3/kv/txn", scrapeRequest(f.prefix), f.callTimeoutMs);
  if (v.scrapeToken == 0) answer(root, v, renderFleetDown(), false);
}

/** Answers every stream waiting on this VM's scrape, each under its own context, with its local page + `extra`; then
 *  the root's context again. */
function answer(root: Root, v: ViewVm, extra: string, up: bool): void {
  const todo = v.waiting;
  const pages = v.pages;
  v.waiting = new Array<u32>(0);
  v.pages = new Array<string>(0);
  v.scrapeToken = 0;
  for (let i = 0; i < todo.length; i++) {
    const id = todo[i];
    if (!streams.has(id)) continue; // ended while waiting
    if (streams.get(id).finished || setEffectiveContext(id) != OK) continue;
    if (!up) root.metrics.inc(S.FleetScrapeFailures);
    sendLocalReply(200, "ws_governor_metrics", pages[i] + extra, ["content-type", "text/plain; version=0.0.4"]);
  }
  setEffectiveContext(root.id);
}

/** proxy_on_http_call_response, first: true when `token` was this file's call (a stats put or a scrape). */
export function fleetViewResponse(rootId: u32, token: u32, bodySize: u32): bool {
  const v = find(rootId);
  if (v === null || token == 0 || !roots.has(rootId)) return false;
  const root = roots.get(rootId);
  if (token == v.putToken) {
    v.putToken = 0;
    if (callStatus() != 200) root.metrics.inc(S.FleetStatsPutFailures);
    return true;
  }
  if (token != v.scrapeToken) return false;
  const f = root.config.fleet;
  const podKvs = new Array<EtcdKv>(0);
  const statsKvs = new Array<EtcdKv>(0);
  if (f !== null && callStatus() == 200 && parseRanges(callBody(bodySize, 1 << 22), podKvs, statsKvs)) {
    const view = new FleetView();
    summarize(f.prefix, podKvs, statsKvs, view);
    if (view.bad > 0) root.metrics.inc(S.Corrupt, i64(view.bad));
    answer(root, v, renderFleet(view), true);
  } else answer(root, v, renderFleetDown(), false);
  return true;
}
