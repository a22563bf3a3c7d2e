// Plugin configuration: parsed once, strictly, into an immutable Config (docs/contracts.md, README "Configuration").
// Pure. Every error names the field: "<field>: <why>". Unknown keys, wrong types and out-of-range values are errors.
import { JsonParser, JType, JValue } from "./json";
import { Cidr, parseCidr } from "./cidr";

export const enum Mode { Inbound = 0, Upstream = 1 }
export const enum KeySource { Global = 0, Address = 1, Header = 2, Metadata = 3 }
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
}

function defaultClientKey(): KeySpec {
  const k = new KeySpec();
  k.source = KeySource.Address;
  return k;
}

function defaultAllow(): Array<Cidr> {
  const a = new Array<Cidr>(0);
  a.push(parseCidr("127.0.0.0/8") as Cidr);
  a.push(parseCidr("::1/128") as Cidr);
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
  "metrics_path", "health_path", "endpoint_allow", "draining", "frames",
];
export const RATE_KEYS: string[] = ["requests", "window_seconds", "burst", "key", "buckets"];
export const KEY_KEYS: string[] = ["source", "header", "namespace", "path"];
export const FRAME_KEYS: string[] = ["enabled", "max_frame_bytes", "max_message_bytes", "messages_per_second", "message_burst"];

class Reader {
  error: string = "";

  fail(field: string, why: string): void {
    if (this.error.length == 0) this.error = field + ": " + why;
  }

  checkKeys(obj: JValue, allowed: string[], prefix: string): void {
    for (let i = 0; i < obj.keys.length; i++) {
      const k = obj.keys[i];
      if (!allowed.includes(k)) this.fail(prefix + k, "unknown key");
    }
  }

  isObject(v: JValue, field: string): bool {
    if (v.type != JType.Obj) { this.fail(field, "must be an object, got " + v.typeName()); return false; }
    return true;
  }

  int(obj: JValue, key: string, field: string, lo: f64, hi: f64, dflt: f64): f64 {
    const v = obj.get(key);
    if (v === null) return dflt;
    if (v.type != JType.Num || !(v.n >= lo && v.n <= hi)) {
      this.fail(field, "must be an integer in " + i64(lo).toString() + ".." + i64(hi).toString());
      return dflt;
    }
    return v.n;
  }

  bool(obj: JValue, key: string, field: string, dflt: bool): bool {
    const v = obj.get(key);
    if (v === null) return dflt;
    if (v.type != JType.Bool) { this.fail(field, "must be a boolean, got " + v.typeName()); return dflt; }
    return v.b;
  }

  str(obj: JValue, key: string, field: string, dflt: string): string {
    const v = obj.get(key);
    if (v === null) return dflt;
    if (v.type != JType.Str) { this.fail(field, "must be a string, got " + v.typeName()); return dflt; }
    return v.s;
  }

  choice(obj: JValue, key: string, field: string, options: string[], dflt: i32): i32 {
    const v = obj.get(key);
    if (v === null) return dflt;
    if (v.type == JType.Str) {
      const i = options.indexOf(v.s);
      if (i >= 0) return i;
    }
    this.fail(field, "must be one of \"" + options.join("\", \"") + "\"");
    return dflt;
  }

  path(obj: JValue, key: string, field: string, dflt: string): string {
    if (obj.get(key) === null) return dflt;
    const p = this.str(obj, key, field, dflt);
    if (p.length == 0) return p;
    if (p.charCodeAt(0) != 0x2f || p.length > 256) this.fail(field, "must be empty or start with '/' (at most 256 characters)");
    return p;
  }

  keySpec(v: JValue | null, field: string, allowGlobal: bool, dflt: KeySpec): KeySpec {
    if (v === null) return dflt;
    if (!this.isObject(v, field)) return dflt;
    this.checkKeys(v, KEY_KEYS, field + ".");
    const k = new KeySpec();
    let sources: string[] = ["global", "address", "header", "metadata"];
    const src = this.choice(v, "source", field + ".source", sources, -1);
    if (src < 0) {
      if (v.get("source") === null) this.fail(field + ".source", "is required");
      return dflt;
    }
    k.source = <KeySource>src;
    if (k.source == KeySource.Global && !allowGlobal) { this.fail(field + ".source", "\"global\" is not allowed here"); return dflt; }
    k.header = asciiLower(this.str(v, "header", field + ".header", ""));
    k.namespace = this.str(v, "namespace", field + ".namespace", "");
    if (k.source == KeySource.Header) {
      if (!validHeaderName(k.header)) this.fail(field + ".header", "must be a header name (lower-case token, not a pseudo-header)");
    } else if (v.get("header") !== null) this.fail(field + ".header", "only allowed with source \"header\"");
    if (k.source == KeySource.Metadata) {
      if (k.namespace.length == 0) this.fail(field + ".namespace", "is required with source \"metadata\"");
      const p = v.get("path");
      if (p === null || p.type != JType.Arr || p.items.length == 0 || p.items.length > 8) {
        this.fail(field + ".path", "must be an array of 1..8 strings");
      } else {
        for (let i = 0; i < p.items.length; i++) {
          const it = p.items[i];
          if (it.type != JType.Str || it.s.length == 0) { this.fail(field + ".path", "must be an array of 1..8 non-empty strings"); break; }
          k.path.push(it.s);
        }
      }
    } else {
      if (v.get("namespace") !== null) this.fail(field + ".namespace", "only allowed with source \"metadata\"");
      if (v.get("path") !== null) this.fail(field + ".path", "only allowed with source \"metadata\"");
    }
    return k;
  }
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

export function validHeaderName(h: string): bool {
  if (h.length == 0 || h.length > 128) return false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

function validPrefix(p: string): bool {
  if (p.length == 0 || p.length > 32) return false;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

/** Parses the plugin configuration. Empty (or all-whitespace) text means every default. */
export function parseConfig(text: string): ConfigResult {
  const res = new ConfigResult();
  const cfg = new Config();
  if (text.trim().length == 0) { cfg.maxPods = INBOUND_POD_SLOTS; res.config = cfg; return res; } // as "{}"
  const parser = new JsonParser();
  const root = parser.parse(text);
  if (root === null) { res.error = "configuration: invalid JSON: " + parser.error; return res; }
  const r = new Reader();
  if (root.type != JType.Obj) { res.error = "configuration: must be a JSON object, got " + root.typeName(); return res; }
  r.checkKeys(root, TOP_KEYS, "");

  let modes: string[] = ["inbound", "upstream"];
  cfg.mode = <Mode>r.choice(root, "mode", "mode", modes, 0);
  cfg.podName = r.str(root, "pod_name", "pod_name", "");
  if (cfg.podName.length > 253) r.fail("pod_name", "must be at most 253 characters");
  cfg.keyPrefix = r.str(root, "key_prefix", "key_prefix", "wsg");
  if (!validPrefix(cfg.keyPrefix)) r.fail("key_prefix", "must be 1..32 characters of [A-Za-z0-9_.-]");
  cfg.enforce = r.bool(root, "enforce", "enforce", true);
  let fmodes: string[] = ["closed", "open"];
  cfg.failureMode = <FailureMode>r.choice(root, "failure_mode", "failure_mode", fmodes, 0);
  cfg.casMaxAttempts = u32(r.int(root, "cas_max_attempts", "cas_max_attempts", 1, 64, 8));
  cfg.maxPerPod = u32(r.int(root, "max_connections_per_pod", "max_connections_per_pod", 0, 1000000, 100));
  cfg.maxPerClient = u32(r.int(root, "max_connections_per_client", "max_connections_per_client", 0, 1000000, 0));
  cfg.clientKey = r.keySpec(root.get("client_key"), "client_key", false, cfg.clientKey);
  cfg.clientBuckets = u32(r.int(root, "client_buckets", "client_buckets", 1, 65536, 1024));
  cfg.maxPods = u32(r.int(root, "max_pods", "max_pods", 1, 4096, 64));
  cfg.tickMs = u32(r.int(root, "tick_ms", "tick_ms", 100, 60000, 1000));
  cfg.leaseTicks = u32(r.int(root, "lease_ticks", "lease_ticks", 2, 100, 3));
  cfg.metricsPath = r.path(root, "metrics_path", "metrics_path", cfg.metricsPath);
  cfg.healthPath = r.path(root, "health_path", "health_path", cfg.healthPath);
  if (cfg.metricsPath.length > 0 && cfg.metricsPath == cfg.healthPath) r.fail("health_path", "must differ from metrics_path");
  cfg.draining = r.bool(root, "draining", "draining", false);

  const allow = root.get("endpoint_allow");
  if (allow !== null) {
    if (allow.type != JType.Arr || allow.items.length > 64) r.fail("endpoint_allow", "must be an array of at most 64 CIDR strings");
    else {
      const list = new Array<Cidr>(0);
      for (let i = 0; i < allow.items.length; i++) {
        const it = allow.items[i];
        let c: Cidr | null = null;
        if (it.type == JType.Str) c = parseCidr(it.s);
        if (c === null) { r.fail("endpoint_allow[" + i.toString() + "]", "must be an IPv4 or IPv6 address or CIDR"); break; }
        list.push(c);
      }
      cfg.endpointAllow = list;
    }
  }

  const rl = root.get("rate_limit");
  if (rl !== null) {
    if (rl.type == JType.Null) cfg.rateLimit = null;
    else if (r.isObject(rl, "rate_limit")) {
      r.checkKeys(rl, RATE_KEYS, "rate_limit.");
      const c = new RateLimitConfig();
      c.requests = u32(r.int(rl, "requests", "rate_limit.requests", 1, 1000000, 50));
      c.windowMs = u64(r.int(rl, "window_seconds", "rate_limit.window_seconds", 1, 86400, 60)) * 1000;
      c.burst = u32(r.int(rl, "burst", "rate_limit.burst", 1, 1000000, f64(c.requests)));
      c.key = r.keySpec(rl.get("key"), "rate_limit.key", true, c.key);
      c.buckets = u32(r.int(rl, "buckets", "rate_limit.buckets", 1, 65536, 1024));
      cfg.rateLimit = c;
    }
  }

  const fr = root.get("frames");
  if (fr !== null && r.isObject(fr, "frames")) {
    r.checkKeys(fr, FRAME_KEYS, "frames.");
    const f = cfg.frames;
    f.enabled = r.bool(fr, "enabled", "frames.enabled", false);
    f.maxFrameBytes = u64(r.int(fr, "max_frame_bytes", "frames.max_frame_bytes", 0, 9007199254740991, 0));
    f.maxMessageBytes = u64(r.int(fr, "max_message_bytes", "frames.max_message_bytes", 0, 9007199254740991, 1048576));
    f.messagesPerSecond = u32(r.int(fr, "messages_per_second", "frames.messages_per_second", 0, 1000000, 0));
    f.messageBurst = u32(r.int(fr, "message_burst", "frames.message_burst", 0, 1000000, f64(f.messagesPerSecond)));
    if (f.messageBurst == 0) f.messageBurst = f.messagesPerSecond;
    if (f.messagesPerSecond == 0 && fr.get("message_burst") !== null && f.messageBurst > 0) {
      r.fail("frames.message_burst", "requires frames.messages_per_second");
    }
  }

  if (cfg.mode == Mode.Inbound && root.get("max_pods") !== null) r.fail("max_pods", "only allowed with mode \"upstream\"");
  if (cfg.mode == Mode.Inbound) cfg.maxPods = INBOUND_POD_SLOTS;
  if (cfg.mode == Mode.Upstream && cfg.podName.length > 0) r.fail("pod_name", "only allowed with mode \"inbound\" (upstream mode learns the pod from upstream.address)");

  if (r.error.length > 0) { res.error = r.error; return res; }
  res.config = cfg;
  return res;
}
