// GCRA (generic cell rate algorithm, the virtual-scheduling form of a token bucket). Pure.
// State is one number, the theoretical arrival time (TAT, µs). A request at `now` is allowed when
// max(TAT, now) + T - now <= burst·T, where T = window / requests is the emission interval.
// Unlike a fixed window there is no edge at which twice the allowance passes: in any interval of length d at most
// burst + d/T requests pass.

export class RateDecision {
  allowed: bool = false;
  newTat: u64 = 0;        // state to store when allowed
  retryAfterUs: u64 = 0;  // when rejected: time until one request would pass
  remaining: u32 = 0;     // when allowed: requests that could still pass right now
}

export function intervalUs(windowMs: u64, requests: u32): u64 {
  const t = (windowMs * 1000) / u64(requests);
  return t > 0 ? t : 1;
}

/** `tat` is the stored state (0 = never used). `now` is wall-clock time, which can step (envoy-host.md §13.4).
 *  A TAT is never more than `limit` ahead of the clock that wrote it, so one further ahead (beyond one interval of
 *  slack for VMs reading the clock a moment apart) means the clock stepped back: the bucket is then taken as full but
 *  for one request, so the key neither stalls until the clock catches up nor gets a fresh burst. A step forward
 *  refills at most one burst, like any long pause. */
export function gcra(tat: u64, nowUs: u64, t: u64, burst: u32, out: RateDecision): void {
  const limit = t * u64(burst);
  let base = tat;
  if (base < nowUs) base = nowUs;
  else if (base > nowUs + limit + t) base = nowUs + limit - t;
  const newTat = base + t;
  const ahead = newTat - nowUs;
  if (ahead > limit) {
    out.allowed = false;
    out.retryAfterUs = ahead - limit;
    out.remaining = 0;
    out.newTat = tat;
    return;
  }
  out.allowed = true;
  out.newTat = newTat;
  out.retryAfterUs = 0;
  out.remaining = u32((limit - ahead) / t);
}

/** Whole seconds, rounded up, never 0 (Retry-After). */
export function ceilSeconds(us: u64): u64 {
  const s = (us + 999999) / 1000000;
  return s > 0 ? s : 1;
}
