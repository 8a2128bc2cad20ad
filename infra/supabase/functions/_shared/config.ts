/** Settings from the function's environment (Supabase injects secrets there). Read per request. */

export interface Env {
  get(name: string): string | undefined;
}

export interface RunPodConfig {
  /** https://api.runpod.ai/v2/<RUNPOD_ENDPOINT_ID>, or RUNPOD_ENDPOINT_URL (a local API in tests). */
  endpointUrl: string;
  apiKey: string;
  /** How long one call may wait on RunPod: the function's wall-clock limit less a margin to answer. */
  budgetMs: number;
  pollIntervalMs: number;
  /** Tries for one request that RunPod refused (429, 502, 503, connection refused). */
  maxAttempts: number;
  backoffMs: number;
  /** Retry-After sent to the browser when the worker is overloaded. */
  retryAfterS: number;
}

export class ConfigError extends Error {}

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
  // 150 s is Supabase's wall-clock limit for a function on the free plan (400 s on paid plans).
  const wallClockS = number(env, "EDGE_WALL_CLOCK_S", 150, 1);
  const marginS = number(env, "EDGE_MARGIN_S", Math.min(10, wallClockS / 5), 0);
  return {
    endpointUrl: endpointUrl.replace(/\/+$/, ""),
    apiKey,
    budgetMs: Math.max(1, wallClockS - marginS) * 1000,
    pollIntervalMs: number(env, "RUNPOD_POLL_INTERVAL_MS", 1000, 10),
    maxAttempts: number(env, "RUNPOD_MAX_ATTEMPTS", 3, 1),
    backoffMs: number(env, "RUNPOD_BACKOFF_MS", 500, 0),
    retryAfterS: number(env, "OVERLOADED_RETRY_AFTER_S", 5, 0),
  };
}
