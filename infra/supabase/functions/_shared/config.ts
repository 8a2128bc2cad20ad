/** Settings from the function's environment (Supabase injects secrets there). Read per request. */

export interface Env {
  get(name: string): string | undefined;
}

export interface RunPodConfig {
  /** https://api.runpod.ai/v2/<RUNPOD_ENDPOINT_ID>, or RUNPOD_ENDPOINT_URL (a local API in tests). */
  endpointUrl: string;
  apiKey: string;
  /**
   * How long a non-streamed answer may wait on RunPod: Supabase's request limit (150 s, every plan)
   * or the function's wall clock if shorter, less a margin to answer.
   */
  budgetMs: number;
  /** How long a streamed (SSE) relay may run: the function's wall-clock limit less the margin. */
  streamBudgetMs: number;
  /** Server-sent events: a keep-alive comment after this long without an event. */
  keepAliveMs: number;
  pollIntervalMs: number;
  /** Tries for one request that RunPod refused (429, 502, 503, connection refused). */
  maxAttempts: number;
  backoffMs: number;
  /** Retry-After sent to the browser when the worker is overloaded. */
  retryAfterS: number;
}

export class ConfigError extends Error {}

/** Supabase's request idle limit: a function that has not begun its response by then gets a 504. */
export const REQUEST_LIMIT_S = 150;

export function number(env: Env, name: string, fallback: number, min: number): number {
  const raw = env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new ConfigError(`${name} must be a number >= ${min}`);
  return value;
}

export function loadConfig(env: Env = Deno.env): RunPodConfig {
  const apiKey = env.get("RUNPOD_API_KEY") ?? "";
  if (!apiKey) throw new ConfigError("RUNPOD_API_KEY is not set");
  const endpointId = env.get("RUNPOD_ENDPOINT_ID") ?? "";
  const endpointUrl = env.get("RUNPOD_ENDPOINT_URL") ||
    (endpointId ? `https://api.runpod.ai/v2/${endpointId}` : "");
  if (!endpointUrl) throw new ConfigError("RUNPOD_ENDPOINT_ID (or RUNPOD_ENDPOINT_URL) is not set");
  // The function's wall clock: 150 s on the free plan, 400 s on paid plans (streamed relays use it).
  const wallClockS = number(env, "EDGE_WALL_CLOCK_S", REQUEST_LIMIT_S, 1);
  // A request that has not started its response by 150 s gets Supabase's 504, whatever the plan.
  const answerS = Math.min(wallClockS, REQUEST_LIMIT_S);
  const marginS = number(env, "EDGE_MARGIN_S", Math.min(10, answerS / 5), 0);
  return {
    endpointUrl: endpointUrl.replace(/\/+$/, ""),
    apiKey,
    budgetMs: Math.max(1, answerS - marginS) * 1000,
    streamBudgetMs: Math.max(1, wallClockS - marginS) * 1000,
    keepAliveMs: number(env, "SSE_KEEPALIVE_S", 15, 0.01) * 1000,
    pollIntervalMs: number(env, "RUNPOD_POLL_INTERVAL_MS", 1000, 10),
    maxAttempts: number(env, "RUNPOD_MAX_ATTEMPTS", 3, 1),
    backoffMs: number(env, "RUNPOD_BACKOFF_MS", 500, 0),
    retryAfterS: number(env, "OVERLOADED_RETRY_AFTER_S", 5, 0),
  };
}
