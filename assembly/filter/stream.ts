// Stream context: read the host, ask the core, act. Admission at request headers (inbound) or at the 101 (upstream),
// confirmation at the 101, release exactly once at the first of on_log/on_done/on_delete or on a non-101.
import { Mode, FailureMode } from "../core/config";
import { isWebSocketUpgrade } from "../core/upgrade";
import { gcra, intervalUs, ceilSeconds, RateDecision } from "../core/rate";
import { decodeRate, encodeRate } from "../core/codec";
import { ST_OK, ST_CAS_MISMATCH } from "../core/store";
import { Outcome, Result, acquireCounter, acquirePod, release, podKey, clientKey, rateKey, bucketOf } from "../core/ledger";
import { S, Reason, reasonName, REASON_DETAILS, REASON_STATUS } from "../core/stats";
import { getHeader, outPtr, outLen, freeBytes, sendLocalReply, nowMs, propertyString, OK,
         MAP_REQUEST_HEADERS, MAP_RESPONSE_HEADERS } from "../host/abi";
import { Root, LOG_INFO, LOG_DEBUG } from "./root";
import { keyValue } from "./keys";
import { log } from "../host/abi";
import { Inspection } from "./inspection";
import { utf8Encode } from "../core/utf8";
import { IdTable } from "../core/idtable";

const H_UPGRADE = utf8Encode("upgrade");
const H_STATUS = utf8Encode(":status");
const UPSTREAM_ADDRESS = utf8Encode("upstream\0address");

export const CONTINUE: u32 = 0;
export const STOP: u32 = 1;
/** requestKind: no upgrade header, so not a WebSocket (the dispatcher then offers the request to the endpoints). */
export const PLAIN: u32 = 0xffff;
/** requestKind: a WebSocket upgrade (the dispatcher makes it a Stream). */
export const WEBSOCKET: u32 = 0xfffd;
/** onUpgrade, fleet module: the local checks passed; the global ones run in fleet_admit.ts (the dispatcher routes). */
export const FLEET_ADMIT: u32 = 0xfffe;

/** The last rate decision (its retryAfterUs makes the Retry-After of a 429; fleet_rate.ts sets it too). */
export const rate = new RateDecision();

/** Live stream contexts by id (the dispatcher's table; frames.ts looks up streams in a close handshake here). */
export const streams = new IdTable<Stream>();

// Stream flags, one bit each in Stream.bits (read and written through the accessors of the same names).
const F_WS: u8 = 1;
const F_REPLIED: u8 = 2;
const F_CONFIRMED: u8 = 4;
const F_FINISHED: u8 = 8;
const F_RESET: u8 = 16;
const F_LOCAL_GAUGE: u8 = 32;

/** What a request is, from its `upgrade` header alone: PLAIN, WEBSOCKET, or CONTINUE (another upgrade, or the root is
 *  not configured). Envoy removes `upgrade` and `connection` before the filters unless `connection` holds the token
 *  "upgrade" (envoy-host.md §8.1, §8.2), so `upgrade` alone decides, with no second header read. */
export function requestKind(root: Root): u32 {
  if (!root.configured) return CONTINUE;
  if (getHeader(MAP_REQUEST_HEADERS, H_UPGRADE) != OK) return PLAIN;
  const ws = isWebSocketUpgrade(outPtr, outLen);
  freeBytes();
  return ws ? WEBSOCKET : CONTINUE;
}

/** One per WebSocket upgrade request. Small on purpose (bench P4: heap per live connection; the check at the
 *  end of this file): flags in one byte, the fleet module's state in FleetStream (fleet_stream.ts). */
export class Stream {
  id: u32;
  root: Root;
  clientHeld: i32 = -1;      // client bucket held (-1 = none): keys are built at release, not kept per connection
  podHeld: i16 = -1;         // pod slot held (-1 = none; max_pods ≤ 4096)
  private bits: u8 = 0;      // the F_ flags above
  private startHi: u8 = 0;   // the 101's time (ms), bits 32–39 (in what would be padding)
  pod: string = "";
  insp: Inspection | null = null; // frame inspection state, after the 101 when enabled
  private startMs: u32 = 0;  // the 101's time (ms), bits 0–31: durations are taken modulo 2^40 ms (34.8 years)

  constructor(id: u32, root: Root) { this.id = id; this.root = root; }

  /** a WebSocket upgrade (other upgrades are let through untouched) */
  get ws(): bool { return <bool>(this.bits & F_WS); }
  set ws(on: bool) { this.flag(F_WS, on); }
  /** this filter sent a local reply on this stream */
  get replied(): bool { return <bool>(this.bits & F_REPLIED); }
  set replied(on: bool) { this.flag(F_REPLIED, on); }
  /** 101 seen and admitted */
  get confirmed(): bool { return <bool>(this.bits & F_CONFIRMED); }
  set confirmed(on: bool) { this.flag(F_CONFIRMED, on); }
  get finished(): bool { return <bool>(this.bits & F_FINISHED); }
  set finished(on: bool) { this.flag(F_FINISHED, on); }
  /** this filter asked Envoy to close the stream */
  get reset(): bool { return <bool>(this.bits & F_RESET); }
  set reset(on: bool) { this.flag(F_RESET, on); }
  /** counted in active_connections without a pod share (failure_mode open) */
  get localGauge(): bool { return <bool>(this.bits & F_LOCAL_GAUGE); }
  set localGauge(on: bool) { this.flag(F_LOCAL_GAUGE, on); }
  private flag(f: u8, on: bool): void { this.bits = (this.bits & ~f) | (on ? f : 0); }

  /** Request headers of a WebSocket upgrade (requestKind said WEBSOCKET): admission. */
  onUpgrade(): u32 {
    const root = this.root;
    this.ws = true;
    const m = root.metrics;
    const cfg = root.config;
    m.inc(S.Upgrades);
    if (root.isDraining() && this.reject(Reason.Draining, "", "")) return STOP;
    if (cfg.rateLimit !== null && !this.checkRate()) return STOP;
    if (FLEET) { if (cfg.fleet !== null) return FLEET_ADMIT; }
    if (cfg.maxPerClient > 0 && !this.acquireClient()) return STOP;
    if (cfg.mode == Mode.Inbound && !this.acquirePodSlot(root.pod)) return STOP;
    return CONTINUE;
  }

  onResponseHeaders(): u32 {
    if (!this.ws || this.replied || this.finished) return CONTINUE;
    // ":status" is "101" (bytes compared where the host left them: no string per response)
    const upgraded = getHeader(MAP_RESPONSE_HEADERS, H_STATUS) == OK && outLen == 3 &&
                     (load<u32>(outPtr) & 0xffffff) == 0x313031; // the 4th byte is inside the host's allocation block
    freeBytes();
    if (!upgraded) {
      this.releaseAll(); // not upgraded (upstream refused, router 503, another filter's reply): give the slots back
      return CONTINUE;
    }
    if (this.root.config.mode == Mode.Upstream) {
      let pod = propertyString(UPSTREAM_ADDRESS);
      if (pod === null) pod = "unknown";
      if (FLEET) { if (this.root.config.fleet !== null && this.root.config.maxPerPod > 0) { this.pod = pod; return FLEET_ADMIT; } }
      if (!this.acquirePodSlot(pod)) return STOP; // 503 from on_response_headers goes straight to the client (§7.3)
    }
    this.confirm();
    return CONTINUE;
  }

  /** Admitted at the 101 (and, upstream, holding its pod slot). */
  confirm(): void {
    this.confirmed = true;
    const now = nowMs();
    this.startMs = u32(now);
    this.startHi = u8(now >> 32);
    this.root.metrics.inc(S.Accepted);
    if (this.podHeld < 0) { // admitted without a pod share (failure_mode open): counted by this VM alone
      this.localGauge = true;
      this.root.metrics.inc(S.Active, 1);
    }
    this.debugLine("upgraded");
  }

  /** First of on_log / on_done / on_delete: release exactly once. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.ws) return;
    const m = this.root.metrics;
    const insp = this.insp;
    if (insp !== null) { // the longest silence of each direction
      m.record(S.IdleDown, insp.down.maxIdleMs);
      m.record(S.IdleUp, insp.up.maxIdleMs);
    }
    this.insp = null;
    if (this.localGauge) { this.localGauge = false; m.inc(S.Active, -1); }
    if (this.confirmed) {
      this.confirmed = false;
      m.inc(S.Released);
      // modulo 2^40 ms: exact below 17.4 years; a wall clock stepped back to before the 101 (envoy-host.md §13.4): 0
      const ms = (nowMs() - ((u64(this.startHi) << 32) | u64(this.startMs))) & 0xFF_FFFF_FFFF;
      m.record(S.Duration, ms < 0x80_0000_0000 ? ms : 0);
      this.debugLine("closed");
    }
    this.releaseAll();
  }

  /** A lifecycle line, built only when Envoy's wasm logger is at debug (root.debug). */
  private debugLine(what: string): void {
    if (this.root.debug) log(LOG_DEBUG, "ws_governor: " + what + " stream=" + u64(this.id).toString() + " pod=" + this.pod);
  }

  // ---- decisions ------------------------------------------------------------------------------------------------

  /** Counts and (when enforcing) answers a rejection. Returns true when the stream was rejected. */
  reject(reason: Reason, key: string, pod: string): bool {
    const root = this.root;
    if (!root.config.enforce) {
      root.metrics.inc(S.ShadowRate + reason);
      return false;
    }
    root.metrics.inc(S.RejRate + reason);
    log(LOG_INFO, "ws_governor: rejected reason=" + reasonName(reason) + " key=" + key + " pod=" + pod);
    this.replied = true;
    this.releaseAll();
    let headers = new Array<string>(0);
    if (reason == Reason.Rate) {
      const rl = root.config.rateLimit;
      if (rl !== null) {
        const secs = ceilSeconds(rate.retryAfterUs).toString();
        headers = ["retry-after", secs, "ratelimit-limit", u64(rl.requests).toString(), "ratelimit-remaining", "0", "ratelimit-reset", secs];
      }
    }
    sendLocalReply(REASON_STATUS[reason], unchecked(REASON_DETAILS[reason]), "", headers);
    return true;
  }

  /** Contention (CAS attempts exhausted, or no pod slot): failure_mode decides. Returns true when admitted. */
  contention(key: string, pod: string): bool {
    const root = this.root;
    if (root.config.failureMode == FailureMode.Open) {
      root.metrics.inc(S.ContAllow);
      return true;
    }
    root.metrics.inc(S.ContDeny);
    return !this.reject(Reason.Contention, key, pod);
  }

  private checkRate(): bool {
    const root = this.root;
    const rl = root.config.rateLimit;
    if (rl === null) return true;
    const k = keyValue(rl.key, root.rateMetaPath);
    const key = rateKey(root.config.keyPrefix, root.rateBuckets > 1 ? bucketOf(k, root.rateBuckets) : 0);
    const t = intervalUs(rl.windowMs, rl.requests);
    const store = root.store;
    const attempts = root.config.casMaxAttempts;
    for (let a: u32 = 0; a < attempts; a++) {
      if (a > 0) root.metrics.inc(S.CasRetries);
      const st = store.get(key);
      if (st != ST_OK) { store.done(); return this.contention(k, ""); }
      let tat = decodeRate(store.valuePtr, store.valueLen);
      const cas = store.cas;
      store.done();
      if (tat < 0) { root.metrics.inc(S.Corrupt); tat = 0; }
      const now = nowMs() * 1000;
      gcra(u64(tat), now, t, rl.burst, rate);
      if (!rate.allowed) return !this.reject(Reason.Rate, k, "");
      const w = store.set(key, encodeRate(rate.newTat), cas);
      if (w == ST_OK) return true;
      if (w != ST_CAS_MISMATCH) break;
    }
    return this.contention(k, "");
  }

  private acquireClient(): bool {
    const root = this.root;
    const cfg = root.config;
    const k = keyValue(cfg.clientKey, root.clientMetaPath);
    if (!root.ensureLease()) return this.contention(k, "");
    const bucket = bucketOf(k, cfg.clientBuckets);
    const key = clientKey(cfg.keyPrefix, bucket);
    const res = root.res;
    res.reset();
    acquireCounter(root.store, key, root.vm, cfg.maxPerClient, !cfg.enforce, cfg.casMaxAttempts, res);
    this.noteRetries(res);
    if (res.outcome == Outcome.Admitted) {
      this.clientHeld = i32(bucket);
      if (res.total > u64(cfg.maxPerClient)) root.metrics.inc(S.ShadowClient); // shadow: admitted past the cap
      return true;
    }
    if (res.outcome == Outcome.OverLimit) return !this.reject(Reason.ClientFull, k, "");
    return this.contention(k, "");
  }

  acquirePodSlot(pod: string): bool {
    const root = this.root;
    const cfg = root.config;
    if (!root.ensureLease()) return this.contention("", pod);
    const res = root.res;
    res.reset();
    // the slot this VM last found its own pod in (inbound passes root.pod itself: compared by identity, a hint only)
    const own = changetype<usize>(pod) == changetype<usize>(root.pod);
    acquirePod(root.store, cfg.keyPrefix, cfg.maxPods, pod, own ? root.podSlot : -1, root.vm, cfg.maxPerPod, !cfg.enforce,
               cfg.casMaxAttempts, res);
    this.noteRetries(res);
    if (res.slot >= 0 && own) root.podSlot = res.slot;
    if (res.outcome == Outcome.Admitted) {
      this.podHeld = i16(res.slot);
      this.pod = pod;
      root.metrics.inc(S.Active, 1); // the gauge follows pod shares: +1 here, −1 when exactly this share goes
      if (cfg.maxPerPod > 0 && res.total > u64(cfg.maxPerPod)) root.metrics.inc(S.ShadowPod);
      return true;
    }
    if (res.outcome == Outcome.OverLimit) return !this.reject(Reason.PodFull, "", pod);
    return this.contention("", pod);
  }

  private noteRetries(res: Result): void {
    if (res.retries > 0) this.root.metrics.inc(S.CasRetries, i64(res.retries));
    if (res.corrupt > 0) this.root.metrics.inc(S.Corrupt, i64(res.corrupt));
  }

  private releaseAll(): void {
    const prefix = this.root.config.keyPrefix;
    if (this.podHeld >= 0) {
      this.releaseKey(podKey(prefix, this.podHeld), this.pod);
      this.podHeld = -1;
    }
    if (this.clientHeld >= 0) {
      this.releaseKey(clientKey(prefix, u32(this.clientHeld)), "");
      this.clientHeld = -1;
    }
  }

  private releaseKey(key: string, name: string): void {
    const root = this.root;
    const res = root.res;
    res.reset();
    release(root.store, key, name, root.vm, root.config.casMaxAttempts * 4, res);
    this.noteRetries(res);
    root.released(key, name, res.outcome);
  }
}

// Bench P4 (≤ 128 B of Wasm heap per live connection): with its 20 B of block and object headers a Stream takes a
// 48 B heap block (blocks are multiples of 16 B) while its fields fit in 28 B. One field more fails the build.
if (offsetof<Stream>() > 28) ERROR("Stream's fields take over 28 B: each live connection would cost a 64 B heap block");
