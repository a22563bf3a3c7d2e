// Bounded polling helpers. Every wait has a time limit and a poll interval; nothing sleeps where a condition exists.

export interface WaitOptions {
  timeoutMs?: number;   // default 5000
  intervalMs?: number;  // default 25
  what?: string;        // used in the timeout message
}

/** Polls `check` until it returns a value other than undefined/false (that value is returned) or the time runs out. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  const maxPolls = Math.ceil(timeoutMs / intervalMs) + 2;
  let lastError: unknown;
  for (let i = 0; i < maxPolls; i++) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
  const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? "condition"}${why}`);
}

/** The filter hands counters and the gauge to Envoy on its tick (assembly/host/metrics.ts): a stats read that must
 *  reflect what just happened waits one tick period first (plus a margin for the tick callback itself). */
export function afterTick(tickMs = 1000): Promise<void> {
  return delay(tickMs + 150);
}

/** A plain timer; only for pacing where no observable condition exists (e.g. letting time pass for a rate window). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects if `p` has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
