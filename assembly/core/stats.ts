// The one table of Envoy stats this filter defines (all at configure time). Pure: names and kinds only; the host
// layer defines them and keeps the ids. Full names in Envoy are "wasmcustom." + name (envoy-host.md §5.1); tags are
// encoded as ".<tag>.<value>" suffixes that the bootstrap's stats_tags regexes turn into Prometheus labels
// (envoy/README.md, docs/contracts.md).

export const COUNTER: i32 = 0;
export const GAUGE: i32 = 1;
export const HISTOGRAM: i32 = 2;

export const enum S {
  Upgrades, Accepted,
  RejRate, RejPod, RejClient, RejDraining, RejContention,
  ShadowRate, ShadowPod, ShadowClient, ShadowDraining, ShadowContention,
  Released, CasRetries, ContAllow, ContDeny, Reclaimed, Orphans, Corrupt,
  Active, Duration,
  FramesDown, FramesUp, MsgDown, MsgUp, BytesDown, BytesUp,
  Pings, Pongs, Closes,
  Close1001, Close1002, Close1008, Close1009, FrameResets, ShadowFrameCloses,
  Seen1000, Seen1001, Seen1002, Seen1008, Seen1009, Seen1011, SeenOther,
  IdleDown, IdleUp,
  COUNT,
  // fleet module only (STAT_COUNT): etcd calls made, calls that failed (timeout, reset, HTTP status, unreadable
  // answer), upgrades that waited for etcd, refusals and fail-open admissions while etcd could not help, leases lost, slots
  // given back to etcd, connections registered under a new lease; rate-limit claims etcd confirmed, the tokens
  // they claimed, tokens that expired unspent; the fleet view (filter/fleet_view.ts): stats puts and failed ones,
  // metrics scrapes and those served without etcd
  FleetCalls = COUNT, FleetFailures, FleetWaits, FleetUnavailable, FleetOpenAdmits, FleetLeaseLost, FleetReturned, FleetRegistered,
  FleetRateClaims, FleetRateTokens, FleetRateExpired, FleetStatsPuts, FleetStatsPutFailures, FleetScrapes, FleetScrapeFailures,
  FLEET_COUNT,
}

/** How many stats this module defines: the fleet rows exist only in build/ws-governor-fleet.wasm. */
export const STAT_COUNT: i32 = FLEET ? S.FLEET_COUNT : S.COUNT;
/** Names of the fleet rows (a function, not a module-level array: the local module must not carry them). */
function fleetName(s: i32): string {
  const names: string[] = [
    "fleet_calls_total", "fleet_call_failures_total", "fleet_waits_total", "fleet_unavailable_total",
    "fleet_open_admits_total", "fleet_lease_lost_total", "fleet_returned_slots_total",
    "fleet_registered_slots_total", "fleet_rate_claims_total", "fleet_rate_tokens_claimed_total",
    "fleet_rate_tokens_expired_total", "fleet_stats_puts_total", "fleet_stats_put_failures_total",
    "fleet_scrapes_total", "fleet_scrape_failures_total",
  ];
  return names[s - S.COUNT];
}


// Names are assembled from parts (family, tag, value) so the module carries each word once. Full list: README
// "Statistics" and docs/contracts.md.
const FAMILIES: string[] = [
  "upgrades_total", "accepted_total", "rejected_total", "shadow_rejected_total", "released_total", "cas_retries_total",
  "contention_decisions_total", "reclaimed_total", "orphan_releases_total", "corrupt_values_total",
  "active_connections", "connection_duration_ms", "frames_total", "messages_total", "bytes_total",
  "control_frames_total", "frame_closes_total", "frame_resets_total", "shadow_frame_closes_total",
  "close_frames_total", "max_idle_ms",
];
const TAGS: string[] = ["", "reason", "decision", "direction", "kind", "code"];
const VALUES: string[] = [
  "", "rate_limited", "pod_full", "client_full", "draining", "contention", "allow", "deny", "downstream", "upstream",
  "ping", "pong", "close", "1001", "1002", "1008", "1009", "1000", "1011", "other",
];

// family | tag << 8 | value << 16, in the order of enum S. PARTS[s] is bounds-checked; the indices it holds are
// constants of this file, so the part tables are read unchecked.
const PARTS: u32[] = [
  0, 1,
  2 | 1 << 8 | 1 << 16, 2 | 1 << 8 | 2 << 16, 2 | 1 << 8 | 3 << 16, 2 | 1 << 8 | 4 << 16, 2 | 1 << 8 | 5 << 16,
  3 | 1 << 8 | 1 << 16, 3 | 1 << 8 | 2 << 16, 3 | 1 << 8 | 3 << 16, 3 | 1 << 8 | 4 << 16, 3 | 1 << 8 | 5 << 16,
  4, 5, 6 | 2 << 8 | 6 << 16, 6 | 2 << 8 | 7 << 16, 7, 8, 9,
  10, 11,
  12 | 3 << 8 | 8 << 16, 12 | 3 << 8 | 9 << 16, 13 | 3 << 8 | 8 << 16, 13 | 3 << 8 | 9 << 16,
  14 | 3 << 8 | 8 << 16, 14 | 3 << 8 | 9 << 16,
  15 | 4 << 8 | 10 << 16, 15 | 4 << 8 | 11 << 16, 15 | 4 << 8 | 12 << 16,
  16 | 5 << 8 | 13 << 16, 16 | 5 << 8 | 14 << 16, 16 | 5 << 8 | 15 << 16, 16 | 5 << 8 | 16 << 16, 17, 18,
  19 | 5 << 8 | 17 << 16, 19 | 5 << 8 | 13 << 16, 19 | 5 << 8 | 14 << 16, 19 | 5 << 8 | 15 << 16,
  19 | 5 << 8 | 16 << 16, 19 | 5 << 8 | 18 << 16, 19 | 5 << 8 | 19 << 16,
  20 | 3 << 8 | 8 << 16, 20 | 3 << 8 | 9 << 16,
];

/** Envoy stat name (without "wasmcustom."), e.g. "ws_governor.rejected_total.reason.pod_full". */
export function statName(s: i32): string {
  if (FLEET) { if (s >= S.COUNT) return "ws_governor." + fleetName(s); }
  const p = PARTS[s];
  let n = "ws_governor." + unchecked(FAMILIES[p & 0xff]);
  const tag = (p >> 8) & 0xff;
  if (tag != 0) n += "." + unchecked(TAGS[tag]) + "." + unchecked(VALUES[p >> 16]);
  return n;
}

/** Prometheus form, e.g. "ws_governor_rejected_total{reason=\"pod_full\"}". */
export function promStatName(s: i32): string {
  if (FLEET) { if (s >= S.COUNT) return "ws_governor_" + fleetName(s); }
  const p = PARTS[s];
  let n = "ws_governor_" + unchecked(FAMILIES[p & 0xff]);
  const tag = (p >> 8) & 0xff;
  if (tag != 0) n += "{" + unchecked(TAGS[tag]) + "=\"" + unchecked(VALUES[p >> 16]) + "\"}";
  return n;
}

/** Prometheus family (metric name without labels). */
export function promFamily(s: i32): string {
  if (FLEET) { if (s >= S.COUNT) return "ws_governor_" + fleetName(s); }
  return "ws_governor_" + unchecked(FAMILIES[PARTS[s] & 0xff]);
}

export function statKind(s: i32): i32 {
  if (s == S.Active) return GAUGE;
  if (s == S.Duration || s == S.IdleDown || s == S.IdleUp) return HISTOGRAM;
  return COUNTER;
}

/** Rejection reasons, in the order of the Rej* and Shadow* rows above. */
export const enum Reason { Rate = 0, PodFull = 1, ClientFull = 2, Draining = 3, Contention = 4 }

/** The reason's tag value, as in the stat names: "rate_limited", "pod_full", "client_full", "draining", "contention". */
export function reasonName(r: Reason): string {
  return unchecked(VALUES[1 + r]);
}
export const REASON_DETAILS: string[] = [
  "ws_governor_rate_limited", "ws_governor_pod_full", "ws_governor_client_limit", "ws_governor_draining",
  "ws_governor_contention",
];
export const REASON_STATUS: u32[] = [429, 503, 429, 503, 503];
