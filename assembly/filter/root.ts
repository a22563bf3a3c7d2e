// Root context: configuration, pod identity, stat definitions, shared-data provisioning, VM id, heartbeat and lease
// reclaim on every tick (one root per plugin per VM; envoy-host.md §2.2, §3.4).
import { Config, Mode, KeySource, parseConfig } from "../core/config";
import { S } from "../core/stats";
import { ST_OK, ST_NOT_FOUND } from "../core/store";
import { Beat, Watch, Result, Outcome, heartbeat, nextVmId, readCount, resetKey, reclaim, release, slotKey, POD_TAG, CLIENT_TAG, RATE_TAG, leaseKey, seqKey, drainKey, fleetKey, fleetGrantKey,
         rateLeaseKey, clockKey, ratePoolKey } from "../core/ledger";
import { HostStore } from "../host/shared_store";
import { Metrics } from "../host/metrics";
import { log, getBuffer, outString, BUF_PLUGIN_CONFIG, setTickPeriod, propertyString, OK, logLevel } from "../host/abi";
import { removeAt } from "../core/codec";
import { utf8Encode } from "../core/utf8";
import { IdTable } from "../core/idtable";
import { metadataPath } from "./keys";

export const LOG_DEBUG: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_WARN: i32 = 3;
export const LOG_ERROR: i32 = 4;
export const LOG_CRITICAL: i32 = 5;

/** A release whose CAS attempts ran out; retried on every tick so no slot is ever lost. */
class PendingRelease {
  key: string = "";
  name: string = "";
}

/** Root contexts by id (the dispatcher's table). */
export const roots = new IdTable<Root>();

export class Root {
  id: u32;
  config: Config = new Config();
  configured: bool = false;
  vm: u32 = 0;
  pod: string = "";            // inbound mode: this sidecar's pod
  podSlot: i32 = -1;           // inbound: slot hint
  store: HostStore = new HostStore();
  metrics: Metrics = new Metrics();
  pending: Array<PendingRelease> = new Array<PendingRelease>(0);
  res: Result = new Result();
  beat: Beat = new Beat();
  watch: Watch = new Watch();
  leased: bool = false;        // this VM is in the lease table (registered at its first tick or first share)
  resets: u32 = 0;             // the lease table's reset count (core/ledger.ts resetKey) as of this VM's last look
  ticks: u32 = 0;
  debug: bool = false;         // Envoy's wasm logger is at debug or trace: lifecycle lines are worth building
  rateBuckets: u32 = 1;
  drainShared: bool = false;   // another configuration of this plugin marked the pod as draining
  rateMetaPath: ArrayBuffer | null = null;
  clientMetaPath: ArrayBuffer | null = null;

  constructor(id: u32) { this.id = id; }

  configure(size: u32): bool {
    let text = "";
    if (size > 0) {
      if (getBuffer(BUF_PLUGIN_CONFIG, 0, size) != OK) {
        log(LOG_CRITICAL, "ws_governor: cannot read the plugin configuration");
        return false;
      }
      text = outString();
    }
    const parsed = parseConfig(text);
    const cfg = parsed.config;
    if (cfg === null) {
      log(LOG_CRITICAL, "ws_governor: invalid configuration: " + parsed.error);
      return false;
    }
    this.config = cfg;
    this.debug = logLevel() <= LOG_DEBUG;
    const rl = cfg.rateLimit;
    this.rateBuckets = 1;
    if (rl !== null) {
      if (rl.key.source != KeySource.Global) this.rateBuckets = rl.buckets;
      this.rateMetaPath = metadataPath(rl.key);
    }
    this.clientMetaPath = metadataPath(cfg.clientKey);
    if (cfg.mode == Mode.Inbound) this.pod = this.resolvePod();
    if (!this.metrics.define()) log(LOG_WARN, "ws_governor: some stats could not be defined");
    if (!this.provision()) {
      log(LOG_CRITICAL, "ws_governor: shared data is not writable");
      return false;
    }
    this.vm = nextVmId(this.store, seqKey(cfg.keyPrefix), 64);
    if (this.vm == 0) {
      log(LOG_CRITICAL, "ws_governor: could not allocate a VM id in shared data");
      return false;
    }
    // No heartbeat here: the configuration canary is destroyed after on_configure without on_done (envoy-host.md
    // §13.5), so a lease taken now would sit in the table until swept as silent. A VM registers at its first tick or
    // before its first share (ensureLease), whichever comes first.
    this.publishDrain();
    setTickPeriod(cfg.tickMs);
    this.configured = true;
    let where = "mode=upstream";
    if (cfg.mode == Mode.Inbound) where = "mode=inbound pod=" + this.pod;
    log(LOG_INFO, "ws_governor: configured " + where + " vm=" + u64(this.vm).toString());
    return true;
  }

  /** Pod identity, never from a client header: config, then Istio node metadata (xds.* on 1.33+, node.* before). */
  private resolvePod(): string {
    if (this.config.podName.length > 0) return this.config.podName;
    // property paths: segments joined by NUL (envoy-host.md §6.1)
    let p = propertyString(utf8Encode("xds\0node\0metadata\0NAME"));
    if (p !== null && p.length > 0) return p;
    p = propertyString(utf8Encode("node\0metadata\0NAME"));
    if (p !== null && p.length > 0) return p;
    p = propertyString(utf8Encode("xds\0node\0id"));
    if (p !== null && p.length > 0) return p;
    return "local";
  }

  /** Creates every key this configuration will use, empty, if missing. Envoy's shared data has no atomic create
   *  (a set on a missing key ignores the cas, envoy-host.md §4.3), so keys are only ever created here: the
   *  configuration canary runs alone on the main thread before any worker VM exists (§2.2). */
  private provision(): bool {
    const cfg = this.config;
    const p = cfg.keyPrefix;
    if (!this.ensure(seqKey(p)) || !this.ensure(leaseKey(p))) return false;
    if (!this.ensureAll(POD_TAG, cfg.maxPods)) return false;
    if (cfg.maxPerClient > 0 && !this.ensureAll(CLIENT_TAG, cfg.clientBuckets)) return false;
    if (cfg.rateLimit !== null && !this.ensureAll(RATE_TAG, this.rateBuckets)) return false;
    if (FLEET) { if (cfg.fleet !== null && !this.provisionFleet()) return false; }
    return true;
  }

  private provisionFleet(): bool {
    const cfg = this.config;
    const p = cfg.keyPrefix;
    if (!this.ensure(fleetKey(p)) || !this.ensure(fleetGrantKey(p, true, 0))) return false;
    if (cfg.maxPerClient > 0) {
      for (let i: u32 = 0; i < cfg.clientBuckets; i++) if (!this.ensure(fleetGrantKey(p, false, i))) return false;
    }
    if (cfg.rateLimit !== null) { // the global rate limit (filter/fleet_rate.ts)
      if (!this.ensure(rateLeaseKey(p)) || !this.ensure(clockKey(p))) return false;
      for (let i: u32 = 0; i < this.rateBuckets; i++) if (!this.ensure(ratePoolKey(p, i))) return false;
    }
    return true;
  }

  private ensureAll(tag: string, n: u32): bool {
    for (let i: u32 = 0; i < n; i++) if (!this.ensure(slotKey(this.config.keyPrefix, tag, i))) return false;
    return true;
  }

  private ensure(key: string): bool {
    const st = this.store.get(key);
    this.store.done();
    if (st == ST_OK) return true;
    if (st != ST_NOT_FOUND) return false;
    return this.store.set(key, new ArrayBuffer(0), 0) == ST_OK;
  }

  isDraining(): bool { return this.config.draining || this.drainShared; }

  /** The draining flag lives in shared data so that streams still owned by an older configuration (a config update
   *  gives new streams a new root context, envoy-host.md §3.2) see it on their next tick. */
  private publishDrain(): void {
    const v = new ArrayBuffer(1);
    store<u8>(changetype<usize>(v), this.config.draining ? 1 : 0);
    this.store.set(drainKey(this.config.keyPrefix), v, 0);
  }

  private readDrain(): void {
    if (this.store.get(drainKey(this.config.keyPrefix)) == ST_OK && this.store.valueLen == 1) {
      this.drainShared = load<u8>(this.store.valuePtr) == 1;
    }
    this.store.done();
  }

  tick(): void {
    if (!this.configured) return;
    this.ticks++;
    this.debug = logLevel() <= LOG_DEBUG;
    this.heartbeat();
    this.readDrain();
    this.retryPending();
  }

  /** Before this VM takes its first share: a share of a VM missing from the lease table would be swept as dead. */
  ensureLease(): bool {
    if (!this.leased) this.heartbeat();
    return this.leased;
  }

  private heartbeat(): void {
    const cfg = this.config;
    const b = this.beat;
    const m = this.metrics;
    const before = this.leased;
    const rk = resetKey(cfg.keyPrefix);
    if (!before) this.resets = readCount(this.store, rk); // read before registering: any later reset moves it
    heartbeat(this.store, leaseKey(cfg.keyPrefix), this.vm, cfg.leaseTicks, this.watch, 16, m.gaugeTarget(), b, rk);
    if (!b.ok) return;
    this.leased = true;
    // The beat published this VM's gauge share; now Envoy gets it. Missing from the table after having been in it:
    // a sweeper took this VM for dead and subtracted what it had published, unless the table was found corrupt and
    // started afresh meanwhile (the reset count moved: nobody subtracted anything). What the VMs this beat found dead
    // had published goes with it (an entry of a module older than this rule publishes none: a crash of such a VM
    // leaves its connections in the gauge).
    let swept = before && !b.wasPresent;
    if (b.resets != 0) { // this beat replaced a corrupt table
      this.resets = b.resets;
      swept = false;
      m.inc(S.Corrupt);
    } else if (swept) { // missing from the table: swept, or the table was reset since this VM last looked?
      const r = readCount(this.store, rk);
      if (r != this.resets) swept = false;
      this.resets = r;
    }
    m.flushGauge(swept, b.deadGauge);
    if (b.dead.length == 0) return;
    // This VM removed the dead VMs from the lease table, so it alone sweeps their shares.
    const res = this.res;
    res.reset();
    const pods = this.sweep(POD_TAG, cfg.maxPods);
    const clients = cfg.maxPerClient > 0 ? this.sweep(CLIENT_TAG, cfg.clientBuckets) : 0;
    if (res.retries > 0) m.inc(S.CasRetries, i64(res.retries));
    if (res.corrupt > 0) m.inc(S.Corrupt, i64(res.corrupt));
    if (pods > 0) m.inc(S.Reclaimed, pods);
    // A line only when something was reclaimed, counting what was (a silent VM without shares, such as a
    // registered VM that never admitted, costs no line).
    if (pods > 0 || clients > 0) {
      let line = "ws_governor: reclaimed " + u64(pods).toString() + " connection(s)";
      if (clients > 0) line += " and " + u64(clients).toString() + " client share(s)";
      log(LOG_WARN, line + " from " + u64(b.dead.length).toString() + " silent VM(s)");
    }
  }

  /** Removes the dead VMs' shares from keys prefix+tag+0…n−1; returns how many connections that was. */
  private sweep(tag: string, n: u32): i64 {
    let sum: i64 = 0;
    for (let i: u32 = 0; i < n; i++) {
      const r = reclaim(this.store, slotKey(this.config.keyPrefix, tag, i), this.beat.live, 16, this.res);
      if (r > 0) sum += r;
    }
    return sum;
  }

  addPending(key: string, name: string): void {
    const p = new PendingRelease();
    p.key = key;
    p.name = name;
    this.pending.push(p);
  }

  /** Accounts for one release attempt. The active gauge counts this VM's connections that hold (or held, until a
   *  sweep took their share) a pod share: it drops when the release went through or found the share already gone
   *  (an orphan: a sweeper took this VM for dead, removed its shares and what it had published to the gauge, which
   *  this VM published again when it beat next). A release that could not get through is retried on every tick. */
  released(key: string, name: string, outcome: Outcome): void {
    if (outcome == Outcome.Admitted || outcome == Outcome.Orphan) {
      if (name.length > 0) this.metrics.inc(S.Active, -1);
      if (outcome == Outcome.Orphan) this.metrics.inc(S.Orphans);
    } else {
      this.addPending(key, name);
    }
  }

  private retryPending(): void {
    const n = this.pending.length;
    if (n == 0) return;
    const todo = this.pending;
    this.pending = new Array<PendingRelease>(0);
    const res = this.res;
    for (let i = 0; i < n; i++) {
      const p = todo[i];
      res.reset();
      release(this.store, p.key, p.name, this.vm, 64, res);
      this.released(p.key, p.name, res.outcome);
    }
  }
}
