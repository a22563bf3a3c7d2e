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
  COUNT,
}


export const STAT_NAMES: string[] = [
  "ws_governor.upgrades_total", "ws_governor.accepted_total",
  "ws_governor.rejected_total.reason.rate_limited", "ws_governor.rejected_total.reason.pod_full", "ws_governor.rejected_total.reason.client_full",
  "ws_governor.rejected_total.reason.draining", "ws_governor.rejected_total.reason.contention",
  "ws_governor.shadow_rejected_total.reason.rate_limited", "ws_governor.shadow_rejected_total.reason.pod_full",
  "ws_governor.shadow_rejected_total.reason.client_full", "ws_governor.shadow_rejected_total.reason.draining",
  "ws_governor.shadow_rejected_total.reason.contention",
  "ws_governor.released_total", "ws_governor.cas_retries_total",
  "ws_governor.contention_decisions_total.decision.allow", "ws_governor.contention_decisions_total.decision.deny",
  "ws_governor.reclaimed_total", "ws_governor.orphan_releases_total", "ws_governor.corrupt_values_total",
  "ws_governor.active_connections", "ws_governor.connection_duration_ms",
  "ws_governor.frames_total.direction.downstream", "ws_governor.frames_total.direction.upstream",
  "ws_governor.messages_total.direction.downstream", "ws_governor.messages_total.direction.upstream",
  "ws_governor.bytes_total.direction.downstream", "ws_governor.bytes_total.direction.upstream",
  "ws_governor.control_frames_total.kind.ping", "ws_governor.control_frames_total.kind.pong", "ws_governor.control_frames_total.kind.close",
  "ws_governor.frame_closes_total.code.1001", "ws_governor.frame_closes_total.code.1002", "ws_governor.frame_closes_total.code.1008",
  "ws_governor.frame_closes_total.code.1009", "ws_governor.frame_resets_total",
  "ws_governor.shadow_frame_closes_total",
];

export function statKind(s: i32): i32 {
  if (s == S.Active) return GAUGE;
  if (s == S.Duration) return HISTOGRAM;
  return COUNTER;
}

/** Rejection reasons, in the order of the Rej* and Shadow* rows above. */
export const enum Reason { Rate = 0, PodFull = 1, ClientFull = 2, Draining = 3, Contention = 4 }

export const REASON_NAMES: string[] = ["rate_limited", "pod_full", "client_full", "draining", "contention"];
export const REASON_DETAILS: string[] = [
  "ws_governor_rate_limited", "ws_governor_pod_full", "ws_governor_client_limit", "ws_governor_draining",
  "ws_governor_contention",
];
export const REASON_STATUS: u32[] = [429, 503, 429, 503, 503];
