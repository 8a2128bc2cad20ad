/**
 * POST /functions/v1/chat-worker-warmup: the scheduled warm-up (pg_cron -> pg_net, see
 * migrations/). Sends the worker's `warmup` action as a normal-priority job, because RunPod never
 * scales up for a lowPriority one and starting a worker is the point. Deployed with
 * verify_jwt = false (config.toml); the caller must send Authorization: Bearer <WARMUP_SECRET>.
 * 200: a worker answered (warm or just loaded). 202: the job is queued while a worker starts.
 */
import { type Env, loadConfig, number } from "../_shared/config.ts";
import { json, preflight } from "../_shared/http.ts";
import { failureResponse, outcomeResponse } from "../_shared/respond.ts";
import { RunPodClient } from "../_shared/runpod.ts";

function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]; // no early exit: constant time
  return diff === 0;
}

export function warmupHandler(env: Env = Deno.env, fetchImpl: typeof fetch = fetch) {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return preflight();
    if (req.method !== "POST") {
      return json(405, { success: false, error_code: "method_not_allowed", error: "use POST" });
    }
    const secret = env.get("WARMUP_SECRET") ?? "";
    const given = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1] ?? "";
    if (secret.length < 16 || !sameSecret(given, secret)) {
      return json(401, {
        success: false,
        error_code: "unauthorized",
        error: "a valid warm-up secret is required",
      });
    }
    try {
      const cfg = loadConfig(env);
      const client = new RunPodClient(cfg, fetchImpl);
      // A cold start takes longer than a scheduler should wait; the queued job still starts a worker.
      const waitMs = number(env, "WARMUP_WAIT_S", 30, 1) * 1000;
      const deadline = Math.min(client.deadline(), client.clock.now() + waitMs);
      const outcome = await client.runsync({ action: "warmup" }, deadline, { lowPriority: false });
      return await outcomeResponse(outcome, cfg); // 202 names the job; there is no status route here
    } catch (err) {
      return failureResponse(err);
    }
  };
}
