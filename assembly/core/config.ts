// Plugin configuration: parsed once, strictly, into an immutable Config (docs/contracts.md, README "Configuration").
// Pure. Every error names the field: "<field>: <why>". Unknown keys, wrong types and out-of-range values are errors.
// The first error wins: later checks still run (on defaults) but cannot replace it.
// Kept small on purpose (the release module has a size budget): one reader per JSON type, module-level state, and a
// field's full name ("rate_limit.key.source") built from the enclosing objects only when an error is reported.
import { parseJson, jsonError, jsonAt, jsonFree, typeName, JType, JValue } from "./json";
import { Cidr, parseCidr } from "./cidr";
import { isSpace } from "~lib/util/string";

export const enum Mode { Inbound = 0, Upstream = 1 }
export const enum KeySource { Global = 0, Address = 1, Header = 2, Metadata = 3, Peer = 4 }
export const enum FailureMode { Closed = 0, Open = 1 }

export class KeySpec {
  source: KeySource = KeySource.Global;
  header: string = "";
  namespace: string = "";
  path: Array<string> = new Array<string>(0);
}

export class RateLimitConfig {
  requests: u32 = 50;
  windowMs: u64 = 60000;
  burst: u32 = 50;
  key: KeySpec = new KeySpec();
  buckets: u32 = 1024;
}

export class FramesConfig {
  enabled: bool = false;
  maxFrameBytes: u64 = 0;
  maxMessageBytes: u64 = 1048576;
  messagesPerSecond: u32 = 0;
  messageBurst: u32 = 0;
}

/** Fleet mode (docs/fleet.md, increment 1: a global per-pod cap through etcd). Only the fleet module reads it. */
export class FleetConfig {
  cluster: string = "";
  prefix: string = "";
  leaseTtlSeconds: u32 = 10;
  callTimeoutMs: u32 = 250;
  block: u32 = 16;
  localCapPerPod: u32 = 0;
  localCapPerClient: u32 = 0;
  rebalanceMs: u32 = 1000;
  rateHorizonSeconds: u32 = 5;
  statsPeriodMs: u32 = 5000;
}

export class Config {
  mode: Mode = Mode.Inbound;
  podName: string = "";
  keyPrefix: string = "wsg";
  enforce: bool = true;
  failureMode: FailureMode = FailureMode.Closed;
  casMaxAttempts: u32 = 8;
  maxPerPod: u32 = 100;
  maxPerClient: u32 = 0;
  clientKey: KeySpec = defaultClientKey();
  clientBuckets: u32 = 1024;
  rateLimit: RateLimitConfig | null = new RateLimitConfig();
  maxPods: u32 = 64;
  tickMs: u32 = 1000;
  leaseTicks: u32 = 3;
  metricsPath: string = "/websocket/metrics";
  healthPath: string = "/websocket/health";
  endpointAllow: Array<Cidr> = defaultAllow();
  draining: bool = false;
  frames: FramesConfig = new FramesConfig();
  fleet: FleetConfig | null = null;
}

function defaultClientKey(): KeySpec {
  const k = new KeySpec();
  k.source = KeySource.Address;
  return k;
}

/** 127.0.0.0/8 and ::1/128 (addresses are IPv4-mapped IPv6, see cidr.ts). */
export function defaultAllow(): Array<Cidr> {
  const v4 = new Cidr();
  v4.addr[10] = 0xff;
  v4.addr[11] = 0xff;
  v4.addr[12] = 127;
  v4.bits = 96 + 8;
  const v6 = new Cidr();
  v6.addr[15] = 1;
  const a = new Array<Cidr>(0);
  a.push(v4);
  a.push(v6);
  return a;
}

/** Inbound mode counts one pod (this sidecar's); a few slots let a renamed pod start while the old name drains. */
export const INBOUND_POD_SLOTS: u32 = 4;

export class ConfigResult {
  config: Config | null = null;
  error: string = "";
}

/** The field set of each object, for unknown-key detection (also mirrored by schema/ws-governor.schema.json). */
export const TOP_KEYS: string[] = [
  "mode", "pod_name", "key_prefix", "enforce", "failure_mode", "cas_max_attempts", "max_connections_per_pod",
  "max_connections_per_client", "client_key", "client_buckets", "rate_limit", "max_pods", "tick_ms", "lease_ticks",
  "metrics_path", "health_path", "endpoint_allow", "draining", "frames", "fleet",
];
export const RATE_KEYS: string[] = ["requests", "window_seconds", "burst", "key", "buckets"];
export const KEY_KEYS: string[] = ["source", "header", "namespace", "path"];
export const FRAME_KEYS: string[] = ["enabled", "max_frame_bytes", "max_message_bytes", "messages_per_second", "message_burst"];

let err: string = "";
/** Names the object being read, as a prefix of its members' names: "", "rate_limit.", "rate_limit.key.", ... */
let pre: string = "";

function fail(key: string, why: string): void {
  if (err.length == 0) err = pre + key + ": " + why;
}

function must(key: string, what: string): void {
  fail(key, "must be " + what);
}

function only(key: string, what: string): void {
  fail(key, "only allowed with " + what);
}

function find(list: string[], s: string): i32 {
  for (let i = 0; i < list.length; i++) {
    if (unchecked(list[i]) == s) return i;
  }
  return -1;
}

function checkKeys(obj: JValue, allowed: string[]): void {
  let i = obj.first;
  while (i >= 0) {
    const m = jsonAt(i);
    if (find(allowed, m.k) < 0) {
      if (m.k.length == 0) fail("\"\"", "unknown key"); // the empty key, quoted so that the location shows
      else fail(m.k, "unknown key");
    }
    i = m.next;
  }
}

/** Whether v has type t; if not, a failure naming both types. */
function typed(v: JValue, key: string, t: JType): bool {
  if (v.type == t) return true;
  let a = "a ";
  if (t == JType.Obj) a = "an ";
  must(key, a + typeName(t) + ", got " + typeName(v.type));
  return false;
}

/** The object obj[key], its keys checked and `pre` extended to name it; null if absent or not an object. */
function enter(obj: JValue, key: string, allowed: string[]): JValue | null {
  const v = obj.get(key);
  if (v === null) return null;
  if (!typed(v, key, JType.Obj)) return null;
  pre = pre + key + ".";
  checkKeys(v, allowed);
  return v;
}

function int(obj: JValue, key: string, lo: u32, hi: u64, dflt: u64): u64 {
  const v = obj.get(key);
  if (v === null) return dflt;
  const n = v.n;
  if (v.type == JType.Num && n >= f64(lo) && n <= f64(hi)) return u64(n);
  must(key, "an integer in " + u64(lo).toString() + ".." + hi.toString());
  return dflt;
}

function flag(obj: JValue, key: string, dflt: bool): bool {
  const v = obj.get(key);
  if (v === null) return dflt;
  if (!typed(v, key, JType.Bool)) return dflt;
  return v.n != 0;
}

function str(obj: JValue, key: string, dflt: string): string {
  const v = obj.get(key);
  if (v === null) return dflt;
  if (!typed(v, key, JType.Str)) return dflt;
  return v.s;
}

/** The index of obj[key] in options; dflt if absent (or invalid, after a failure listing the options). */
function choice(obj: JValue, key: string, options: string[], dflt: i32): i32 {
  const v = obj.get(key);
  if (v === null) return dflt;
  if (v.type == JType.Str) {
    const i = find(options, v.s);
    if (i >= 0) return i;
  }
  let list = "";
  for (let i = 0; i < options.length; i++) {
    if (i > 0) list += "\", \"";
    list += unchecked(options[i]);
  }
  must(key, "one of \"" + list + "\"");
  return dflt;
}

function path(obj: JValue, key: string, dflt: string): string {
  const p = str(obj, key, dflt);
  let ok = p.length == 0 || (p.charCodeAt(0) == 0x2f && p.length <= 256);
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) == 0x3f) ok = false; // the query is not compared
  if (!ok) must(key, "empty or start with '/' (at most 256 characters, no '?')");
  return p;
}

function keySpec(obj: JValue, key: string, allowGlobal: bool, dflt: KeySpec): KeySpec {
  const outer = pre;
  let k = dflt;
  const v = enter(obj, key, KEY_KEYS);
  if (v !== null) k = readKey(v, allowGlobal, dflt);
  pre = outer;
  return k;
}

function readKey(v: JValue, allowGlobal: bool, dflt: KeySpec): KeySpec {
  let sources: string[] = ["global", "address", "header", "metadata", "peer_identity"];
  const src = choice(v, "source", sources, -1);
  if (src < 0) {
    if (v.get("source") === null) fail("source", "is required");
    return dflt;
  }
  if (src == KeySource.Global && !allowGlobal) { fail("source", "\"global\" is not allowed here"); return dflt; }
  const k = new KeySpec();
  k.source = <KeySource>src;
  k.header = asciiLower(str(v, "header", ""));
  k.namespace = str(v, "namespace", "");
  if (src == KeySource.Header) {
    if (!validHeaderName(k.header)) must("header", "a header name (lower-case token, not a pseudo-header)");
  } else if (v.get("header") !== null) only("header", "source \"header\"");
  if (src == KeySource.Metadata) {
    if (k.namespace.length == 0) fail("namespace", "is required with source \"metadata\"");
    const p = v.get("path");
    if (p === null || p.type != JType.Arr || p.count == 0 || p.count > 8) {
      must("path", "an array of 1..8 strings");
    } else {
      let i = p.first;
      while (i >= 0) {
        const it = jsonAt(i);
        if (it.type != JType.Str || it.s.length == 0) { must("path", "an array of 1..8 non-empty strings"); break; }
        k.path.push(it.s);
        i = it.next;
      }
    }
  } else {
    if (v.get("namespace") !== null) only("namespace", "source \"metadata\"");
    if (v.get("path") !== null) only("path", "source \"metadata\"");
  }
  return k;
}

export function asciiLower(s: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      out += s.substring(start, i) + String.fromCharCode(c + 0x20);
      start = i + 1;
    }
  }
  return out + s.substring(start);
}

/** 1..max characters of [a-z0-9_.-], and of [A-Z] too if upper. */
function validToken(s: string, max: i32, upper: bool): bool {
  if (s.length == 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (upper && c >= 0x41 && c <= 0x5a) c += 0x20;
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e)) return false;
  }
  return true;
}

export function validHeaderName(h: string): bool {
  return validToken(h, 128, false);
}

/** Parses the plugin configuration. Empty (or all-whitespace) text means every default. */
export function parseConfig(text: string): ConfigResult {
  const res = new ConfigResult();
  const cfg = new Config();
  err = "";
  pre = "";
  let blank = true;
  for (let i = 0; i < text.length; i++) {
    if (!isSpace(text.charCodeAt(i))) { blank = false; break; }
  }
  if (blank) { cfg.maxPods = INBOUND_POD_SLOTS; res.config = cfg; return res; } // as "{}"
  const root = parseJson(text);
  if (root === null) fail("configuration", "invalid JSON: " + jsonError);
  else if (root.type != JType.Obj) fail("configuration", "must be a JSON object, got " + typeName(root.type));
  else read(root, cfg);
  jsonFree();
  if (err.length > 0) res.error = err;
  else res.config = cfg;
  return res;
}

function read(root: JValue, cfg: Config): void {
  checkKeys(root, TOP_KEYS);
  let modes: string[] = ["inbound", "upstream"];
  cfg.mode = <Mode>choice(root, "mode", modes, 0);
  cfg.podName = str(root, "pod_name", "");
  if (cfg.podName.length > 253) must("pod_name", "at most 253 characters");
  cfg.keyPrefix = str(root, "key_prefix", cfg.keyPrefix);
  if (!validToken(cfg.keyPrefix, 32, true)) must("key_prefix", "1..32 characters of [A-Za-z0-9_.-]");
  cfg.enforce = flag(root, "enforce", true);
  let fmodes: string[] = ["closed", "open"];
  cfg.failureMode = <FailureMode>choice(root, "failure_mode", fmodes, 0);
  cfg.casMaxAttempts = u32(int(root, "cas_max_attempts", 1, 64, 8));
  cfg.maxPerPod = u32(int(root, "max_connections_per_pod", 0, 1000000, 100));
  cfg.maxPerClient = u32(int(root, "max_connections_per_client", 0, 1000000, 0));
  cfg.clientKey = keySpec(root, "client_key", false, cfg.clientKey);
  cfg.clientBuckets = u32(int(root, "client_buckets", 1, 65536, 1024));
  cfg.maxPods = u32(int(root, "max_pods", 1, 4096, 64));
  cfg.tickMs = u32(int(root, "tick_ms", 100, 60000, 1000));
  cfg.leaseTicks = u32(int(root, "lease_ticks", 2, 100, 3));
  cfg.metricsPath = path(root, "metrics_path", cfg.metricsPath);
  cfg.healthPath = path(root, "health_path", cfg.healthPath);
  if (cfg.metricsPath.length > 0 && cfg.metricsPath == cfg.healthPath) fail("health_path", "must differ from metrics_path");
  cfg.draining = flag(root, "draining", false);

  const allow = root.get("endpoint_allow");
  if (allow !== null) {
    if (allow.type != JType.Arr || allow.count > 64) must("endpoint_allow", "an array of at most 64 CIDR strings");
    else {
      const list = new Array<Cidr>(0);
      let i = allow.first;
      let n = 0;
      while (i >= 0) {
        const it = jsonAt(i);
        let c: Cidr | null = null;
        if (it.type == JType.Str) c = parseCidr(it.s);
        if (c === null) { must("endpoint_allow[" + u64(n).toString() + "]", "an IPv4 or IPv6 address or CIDR"); break; }
        list.push(c);
        i = it.next;
        n++;
      }
      cfg.endpointAllow = list;
    }
  }

  const rl0 = root.get("rate_limit");
  if (rl0 !== null && rl0.type == JType.Null) cfg.rateLimit = null;
  else {
    const rl = enter(root, "rate_limit", RATE_KEYS);
    if (rl !== null) {
      const c = new RateLimitConfig();
      c.requests = u32(int(rl, "requests", 1, 1000000, 50));
      c.windowMs = int(rl, "window_seconds", 1, 86400, 60) * 1000;
      c.burst = u32(int(rl, "burst", 1, 1000000, c.requests));
      c.key = keySpec(rl, "key", true, c.key);
      c.buckets = u32(int(rl, "buckets", 1, 65536, 1024));
      cfg.rateLimit = c;
      pre = "";
    }
  }

  const fr = enter(root, "frames", FRAME_KEYS);
  if (fr !== null) {
    const f = cfg.frames;
    f.enabled = flag(fr, "enabled", false);
    f.maxFrameBytes = int(fr, "max_frame_bytes", 0, 9007199254740991, 0);
    f.maxMessageBytes = int(fr, "max_message_bytes", 0, 9007199254740991, 1048576);
    f.messagesPerSecond = u32(int(fr, "messages_per_second", 0, 1000000, 0));
    f.messageBurst = u32(int(fr, "message_burst", 0, 1000000, f.messagesPerSecond));
    if (f.messageBurst == 0) f.messageBurst = f.messagesPerSecond;
    if (f.messagesPerSecond == 0 && fr.get("message_burst") !== null && f.messageBurst > 0) {
      fail("message_burst", "requires frames.messages_per_second");
    }
    if (!FRAMES) { if (f.enabled) fail("enabled", "needs build/ws-governor.wasm or build/ws-governor-fleet.wasm (the lean module has no body callbacks)"); }
    pre = "";
  }

  if (root.get("fleet") !== null) {
    if (FLEET) readFleet(root, cfg);
    else fail("fleet", "needs build/ws-governor-fleet.wasm");
  }

  if (cfg.mode == Mode.Inbound) {
    if (root.get("max_pods") !== null) only("max_pods", "mode \"upstream\"");
    cfg.maxPods = INBOUND_POD_SLOTS;
  } else if (cfg.podName.length > 0) only("pod_name", "mode \"inbound\" (upstream mode learns the pod from upstream.address)");
}

function readFleet(root: JValue, cfg: Config): void {
  // The field list lives here, not at module level: the local module must not carry it.
  const keys: string[] = ["cluster", "prefix", "lease_ttl_seconds", "call_timeout_ms", "block", "local_cap_per_pod",
    "local_cap_per_client", "rebalance_ms", "rate_horizon_seconds", "stats_period_ms"];
  const v = enter(root, "fleet", keys);
  if (v === null) return;
  const f = new FleetConfig();
  f.cluster = str(v, "cluster", "");
  if (f.cluster.length == 0 || f.cluster.length > 128) must("cluster", "the name of the etcd cluster (1..128 characters)");
  f.prefix = str(v, "prefix", "/ws-governor/" + cfg.keyPrefix + "/");
  if (f.prefix.length == 0 || f.prefix.length > 128 || f.prefix.charCodeAt(f.prefix.length - 1) != 0x2f) {
    must("prefix", "1..128 characters ending in '/'");
  }
  f.leaseTtlSeconds = u32(int(v, "lease_ttl_seconds", 2, 300, 10));
  f.callTimeoutMs = u32(int(v, "call_timeout_ms", 10, 10000, 250));
  f.block = u32(int(v, "block", 1, 1000, 16));
  f.localCapPerPod = u32(int(v, "local_cap_per_pod", 0, 1000000, 0));
  f.localCapPerClient = u32(int(v, "local_cap_per_client", 0, 1000000, 0));
  f.rebalanceMs = u32(int(v, "rebalance_ms", 100, 600000, 1000));
  f.rateHorizonSeconds = u32(int(v, "rate_horizon_seconds", 1, 60, 5));
  f.statsPeriodMs = u32(int(v, "stats_period_ms", 100, 600000, 5000));
  pre = "";
  // Every limit is global in fleet mode, the default rate limit too; but a rate limit counts as the reason for a
  // fleet block only when written out (a fleet block whose only global limit would be the unwritten default is
  // most likely a mistake, such as upstream mode without a client cap).
  const rl = root.get("rate_limit");
  const rate = rl !== null && rl.type == JType.Obj;
  if (cfg.maxPerClient == 0 && cfg.maxPerPod == 0 && !rate) {
    fail("fleet", "needs a global limit: max_connections_per_pod > 0, max_connections_per_client > 0 or a rate_limit");
  }
  cfg.fleet = f;
}
