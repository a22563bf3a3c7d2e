// parseConfig: defaults and every error message (assembly/core/config.ts). AS has no closures: helpers are module-level.
import { parseConfig, Config, Mode, KeySource, FailureMode, INBOUND_POD_SLOTS } from "../../assembly/core/config";
import { parseCidr, Cidr } from "../../assembly/core/cidr";

/** Same prefix length and the same 16 address bytes. */
function sameCidr(a: Cidr, b: Cidr): bool {
  if (a.bits != b.bits) return false;
  for (let i = 0; i < 16; i++) if (a.addr[i] != b.addr[i]) return false;
  return true;
}

function err(text: string): string {
  const r = parseConfig(text);
  return r.config === null ? r.error : "<accepted>";
}

function ok(text: string): Config {
  const r = parseConfig(text);
  expect(r.error).toBe("", text);
  return r.config as Config;
}

describe("parseConfig defaults", () => {
  it("endpoint_allow defaults to exactly 127.0.0.0/8 and ::1/128", () => {
    const allow = ok("").endpointAllow;
    expect(allow.length).toBe(2);
    expect(sameCidr(allow[0], parseCidr("127.0.0.0/8") as Cidr)).toBe(true);
    expect(sameCidr(allow[1], parseCidr("::1/128") as Cidr)).toBe(true);
  });
  it("empty or blank text and {} give every default", () => {
    const texts = ["", "  \n\t", "{}"];
    for (let i = 0; i < texts.length; i++) {
      const c = ok(texts[i]);
      expect(c.mode).toBe(Mode.Inbound);
      expect(c.podName).toBe("");
      expect(c.keyPrefix).toBe("wsg");
      expect(c.enforce).toBe(true);
      expect(c.failureMode).toBe(FailureMode.Closed);
      expect(c.casMaxAttempts).toBe(8);
      expect(c.maxPerPod).toBe(100);
      expect(c.maxPerClient).toBe(0);
      expect(c.clientKey.source).toBe(KeySource.Address);
      expect(c.clientBuckets).toBe(1024);
      const rl = c.rateLimit;
      expect(rl).not.toBeNull();
      if (rl !== null) {
        expect(rl.requests).toBe(50);
        expect(rl.windowMs).toBe(60000);
        expect(rl.burst).toBe(50);
        expect(rl.key.source).toBe(KeySource.Global);
        expect(rl.buckets).toBe(1024);
      }
      expect(c.tickMs).toBe(1000);
      expect(c.leaseTicks).toBe(3);
      expect(c.metricsPath).toBe("/websocket/metrics");
      expect(c.healthPath).toBe("/websocket/health");
      expect(c.endpointAllow.length).toBe(2);
      expect(c.draining).toBe(false);
      expect(c.frames.enabled).toBe(false);
      expect(c.frames.maxFrameBytes).toBe(0);
      expect(c.frames.maxMessageBytes).toBe(1048576);
      expect(c.frames.messagesPerSecond).toBe(0);
      expect(c.frames.messageBurst).toBe(0);
      expect(c.maxPods).toBe(INBOUND_POD_SLOTS);
    }
  });
  it("upstream mode keeps max_pods (default 64, settable)", () => {
    expect(ok("{\"mode\":\"upstream\"}").maxPods).toBe(64);
    expect(ok("{\"mode\":\"upstream\",\"max_pods\":4096}").maxPods).toBe(4096);
  });
  it("burst defaults to requests; message_burst to messages_per_second; null disables the rate limit", () => {
    const c = ok("{\"rate_limit\":{\"requests\":7,\"window_seconds\":2}}");
    const rl = c.rateLimit;
    if (rl !== null) { expect(rl.burst).toBe(7); expect(rl.windowMs).toBe(2000); }
    expect(ok("{\"rate_limit\":null}").rateLimit).toBeNull();
    expect(ok("{\"frames\":{\"messages_per_second\":9}}").frames.messageBurst).toBe(9);
    expect(ok("{\"frames\":{\"messages_per_second\":9,\"message_burst\":0}}").frames.messageBurst).toBe(9);
  });
  it("reads every key source; header names are lower-cased", () => {
    const h = ok("{\"client_key\":{\"source\":\"header\",\"header\":\"X-Api-Key\"}}");
    expect(h.clientKey.source).toBe(KeySource.Header);
    expect(h.clientKey.header).toBe("x-api-key");
    const m = ok("{\"rate_limit\":{\"key\":{\"source\":\"metadata\",\"namespace\":\"jwt\",\"path\":[\"payload\",\"sub\"]}}}");
    const rl = m.rateLimit;
    if (rl !== null) {
      expect(rl.key.source).toBe(KeySource.Metadata);
      expect(rl.key.namespace).toBe("jwt");
      expect(rl.key.path.length).toBe(2);
      expect(rl.key.path[1]).toBe("sub");
    }
    expect(ok("{\"endpoint_allow\":[]}").endpointAllow.length).toBe(0);
    expect(ok("{\"metrics_path\":\"\",\"health_path\":\"\"}").metricsPath).toBe("");
    expect(ok("{\"cas_max_attempts\":64,\"client_buckets\":65536,\"tick_ms\":100,\"lease_ticks\":100}").casMaxAttempts).toBe(64);
  });
});

describe("parseConfig errors (exact messages)", () => {
  it("JSON and top-level shape", () => {
    expect(err("{")).toBe("configuration: invalid JSON: expected a string key at offset 1");
    expect(err("{\"a\":1,}")).toBe("configuration: invalid JSON: expected a string key at offset 7");
    expect(err("{\"mode\":\"inbound\",\"mode\":\"inbound\"}")).toBe("configuration: invalid JSON: duplicate key \"mode\" at offset 24");
    expect(err("{} {}")).toBe("configuration: invalid JSON: unexpected trailing characters at offset 3");
    expect(err("{\"a\":tru}")).toBe("configuration: invalid JSON: unexpected character at offset 5");
    expect(err("{\"a\":\"\\x\"}")).toBe("configuration: invalid JSON: bad escape at offset 7");
    expect(err("{\"a\":01}")).toBe("configuration: invalid JSON: expected ',' or '}' at offset 6");
    expect(err("[]")).toBe("configuration: must be a JSON object, got array");
    expect(err("null")).toBe("configuration: must be a JSON object, got null");
    expect(err("7")).toBe("configuration: must be a JSON object, got number");
  });
  it("the empty key is named quoted", () => {
    expect(err("{\"\":1}")).toBe("\"\": unknown key");
    expect(err("{\"rate_limit\":{\"\":1}}")).toBe("rate_limit.\"\": unknown key");
  });
  it("unknown keys at every level, the first error wins", () => {
    expect(err("{\"max_conections_per_pod\":1}")).toBe("max_conections_per_pod: unknown key");
    expect(err("{\"rate_limit\":{\"window\":1}}")).toBe("rate_limit.window: unknown key");
    expect(err("{\"frames\":{\"enable\":true}}")).toBe("frames.enable: unknown key");
    expect(err("{\"client_key\":{\"source\":\"address\",\"x\":1}}")).toBe("client_key.x: unknown key");
    expect(err("{\"zzz\":1,\"enforce\":\"no\"}")).toBe("zzz: unknown key");
  });
  it("types", () => {
    expect(err("{\"enforce\":1}")).toBe("enforce: must be a boolean, got number");
    expect(err("{\"draining\":\"true\"}")).toBe("draining: must be a boolean, got string");
    expect(err("{\"frames\":{\"enabled\":null}}")).toBe("frames.enabled: must be a boolean, got null");
    expect(err("{\"pod_name\":5}")).toBe("pod_name: must be a string, got number");
    expect(err("{\"key_prefix\":[]}")).toBe("key_prefix: must be a string, got array");
    expect(err("{\"metrics_path\":{}}")).toBe("metrics_path: must be a string, got object");
    expect(err("{\"rate_limit\":true}")).toBe("rate_limit: must be an object, got boolean");
    expect(err("{\"frames\":[]}")).toBe("frames: must be an object, got array");
    expect(err("{\"client_key\":\"address\"}")).toBe("client_key: must be an object, got string");
    expect(err("{\"mode\":1}")).toBe("mode: must be one of \"inbound\", \"upstream\"");
    expect(err("{\"failure_mode\":\"Open\"}")).toBe("failure_mode: must be one of \"closed\", \"open\"");
  });
  it("integer ranges of every integer field (fractions, strings, out of range)", () => {
    expect(err("{\"cas_max_attempts\":0}")).toBe("cas_max_attempts: must be an integer in 1..64");
    expect(err("{\"cas_max_attempts\":65}")).toBe("cas_max_attempts: must be an integer in 1..64");
    expect(err("{\"max_connections_per_pod\":-1}")).toBe("max_connections_per_pod: must be an integer in 0..1000000");
    expect(err("{\"max_connections_per_pod\":\"5\"}")).toBe("max_connections_per_pod: must be an integer in 0..1000000");
    expect(err("{\"max_connections_per_client\":1000001}")).toBe("max_connections_per_client: must be an integer in 0..1000000");
    expect(err("{\"client_buckets\":0}")).toBe("client_buckets: must be an integer in 1..65536");
    expect(err("{\"mode\":\"upstream\",\"max_pods\":4097}")).toBe("max_pods: must be an integer in 1..4096");
    expect(err("{\"tick_ms\":99.5}")).toBe("tick_ms: must be an integer in 100..60000");
    expect(err("{\"tick_ms\":60001}")).toBe("tick_ms: must be an integer in 100..60000");
    expect(err("{\"lease_ticks\":1}")).toBe("lease_ticks: must be an integer in 2..100");
    expect(err("{\"rate_limit\":{\"requests\":0}}")).toBe("rate_limit.requests: must be an integer in 1..1000000");
    expect(err("{\"rate_limit\":{\"window_seconds\":86401}}")).toBe("rate_limit.window_seconds: must be an integer in 1..86400");
    expect(err("{\"rate_limit\":{\"burst\":0}}")).toBe("rate_limit.burst: must be an integer in 1..1000000");
    expect(err("{\"rate_limit\":{\"buckets\":65537}}")).toBe("rate_limit.buckets: must be an integer in 1..65536");
    expect(err("{\"frames\":{\"max_frame_bytes\":-1}}")).toBe("frames.max_frame_bytes: must be an integer in 0..9007199254740991");
    expect(err("{\"frames\":{\"max_message_bytes\":1.5e0}}")).toBe("frames.max_message_bytes: must be an integer in 0..9007199254740991");
    expect(err("{\"frames\":{\"messages_per_second\":1000001}}")).toBe("frames.messages_per_second: must be an integer in 0..1000000");
    expect(err("{\"frames\":{\"message_burst\":-2}}")).toBe("frames.message_burst: must be an integer in 0..1000000");
  });
  it("strings: prefix, pod name, paths", () => {
    expect(err("{\"key_prefix\":\"\"}")).toBe("key_prefix: must be 1..32 characters of [A-Za-z0-9_.-]");
    expect(err("{\"key_prefix\":\"a:b\"}")).toBe("key_prefix: must be 1..32 characters of [A-Za-z0-9_.-]");
    expect(err("{\"key_prefix\":\"" + "a".repeat(33) + "\"}")).toBe("key_prefix: must be 1..32 characters of [A-Za-z0-9_.-]");
    expect(err("{\"pod_name\":\"" + "p".repeat(254) + "\"}")).toBe("pod_name: must be at most 253 characters");
    expect(err("{\"metrics_path\":\"metrics\"}")).toBe("metrics_path: must be empty or start with '/' (at most 256 characters, no '?')");
    expect(err("{\"metrics_path\":\"/metrics?format=prom\"}")).toBe("metrics_path: must be empty or start with '/' (at most 256 characters, no '?')");
    expect(err("{\"health_path\":\"/" + "h".repeat(256) + "\"}")).toBe("health_path: must be empty or start with '/' (at most 256 characters, no '?')");
    expect(err("{\"health_path\":\"/websocket/metrics\"}")).toBe("health_path: must differ from metrics_path");
  });
  it("endpoint_allow", () => {
    expect(err("{\"endpoint_allow\":\"127.0.0.1\"}")).toBe("endpoint_allow: must be an array of at most 64 CIDR strings");
    expect(err("{\"endpoint_allow\":[\"127.0.0.1\",\"nope\"]}")).toBe("endpoint_allow[1]: must be an IPv4 or IPv6 address or CIDR");
    expect(err("{\"endpoint_allow\":[1]}")).toBe("endpoint_allow[0]: must be an IPv4 or IPv6 address or CIDR");
    expect(err("{\"endpoint_allow\":[\"10.0.0.0/33\"]}")).toBe("endpoint_allow[0]: must be an IPv4 or IPv6 address or CIDR");
  });
  it("key objects", () => {
    expect(err("{\"client_key\":{}}")).toBe("client_key.source: is required");
    expect(err("{\"client_key\":{\"source\":\"ip\"}}")).toBe("client_key.source: must be one of \"global\", \"address\", \"header\", \"metadata\", \"peer_identity\"");
    expect(err("{\"client_key\":{\"source\":\"global\"}}")).toBe("client_key.source: \"global\" is not allowed here");
    expect(err("{\"client_key\":{\"source\":\"header\"}}")).toBe("client_key.header: must be a header name (lower-case token, not a pseudo-header)");
    expect(err("{\"client_key\":{\"source\":\"header\",\"header\":\":authority\"}}")).toBe("client_key.header: must be a header name (lower-case token, not a pseudo-header)");
    expect(err("{\"client_key\":{\"source\":\"header\",\"header\":5}}")).toBe("client_key.header: must be a string, got number");
    expect(err("{\"rate_limit\":{\"key\":{\"source\":\"global\",\"header\":\"x\"}}}")).toBe("rate_limit.key.header: only allowed with source \"header\"");
    expect(err("{\"rate_limit\":{\"key\":{\"source\":\"address\",\"namespace\":\"n\"}}}")).toBe("rate_limit.key.namespace: only allowed with source \"metadata\"");
    expect(err("{\"rate_limit\":{\"key\":{\"source\":\"address\",\"path\":[\"a\"]}}}")).toBe("rate_limit.key.path: only allowed with source \"metadata\"");
    expect(err("{\"client_key\":{\"source\":\"metadata\",\"path\":[\"a\"]}}")).toBe("client_key.namespace: is required with source \"metadata\"");
    expect(err("{\"client_key\":{\"source\":\"metadata\",\"namespace\":\"n\"}}")).toBe("client_key.path: must be an array of 1..8 strings");
    expect(err("{\"client_key\":{\"source\":\"metadata\",\"namespace\":\"n\",\"path\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}}")).toBe("client_key.path: must be an array of 1..8 strings");
    expect(err("{\"client_key\":{\"source\":\"metadata\",\"namespace\":\"n\",\"path\":[1]}}")).toBe("client_key.path: must be an array of 1..8 non-empty strings");
  });
  it("cross-field rules", () => {
    expect(err("{\"max_pods\":8}")).toBe("max_pods: only allowed with mode \"upstream\"");
    expect(err("{\"mode\":\"inbound\",\"max_pods\":8}")).toBe("max_pods: only allowed with mode \"upstream\"");
    expect(err("{\"mode\":\"upstream\",\"pod_name\":\"p\"}")).toBe("pod_name: only allowed with mode \"inbound\" (upstream mode learns the pod from upstream.address)");
    expect(err("{\"frames\":{\"message_burst\":3}}")).toBe("frames.message_burst: requires frames.messages_per_second");
    expect(err("{\"mode\":\"upstream\",\"pod_name\":\"\"}")).toBe("<accepted>");
  });
});

describe("config: JSON integers", () => {
  it("reads 1e3 and 1000.0 as the integer 1000 (JSON Schema 'integer')", () => {
    const a = parseConfig("{\"max_connections_per_pod\": 1e3}");
    expect(a.error).toBe("");
    expect((a.config as Config).maxPerPod).toBe(1000);
    const b = parseConfig("{\"max_connections_per_pod\": 1000.0, \"tick_ms\": 2.5e2}");
    expect(b.error).toBe("");
    expect((b.config as Config).maxPerPod).toBe(1000);
    expect((b.config as Config).tickMs).toBe(250);
  });
  it("rejects numbers with a fractional part", () => {
    expect(parseConfig("{\"tick_ms\": 250.5}").error).toBe("tick_ms: must be an integer in 100..60000");
    expect(parseConfig("{\"tick_ms\": 1e-1}").error).toBe("tick_ms: must be an integer in 100..60000");
  });
  it("treats a path of \\u0001 as a bad path, not as absent", () => {
    expect(parseConfig("{\"metrics_path\": \"\\u0001\"}").error).toBe("metrics_path: must be empty or start with '/' (at most 256 characters, no '?')");
  });
});
