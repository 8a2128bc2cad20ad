/**
 * POST /functions/v1/chat: the signed-in user's chat turn, run on the chat worker.
 * The user id comes from the verified JWT (never from the body) and travels as `user_id`, so
 * conversations are per user. `stream: true` answers with server-sent events; a job that outlives
 * the answer's budget (inside Supabase's 150 s request limit) answers 202 with a status URL that
 * only the same user can poll
 * (GET /functions/v1/chat?job_id=...&sig=..., see _shared/job_links.ts; anyone else gets 404).
 */
import { authConfig, verifyUser } from "../_shared/auth.ts";
import { type Env, loadConfig } from "../_shared/config.ts";
import { json, pick, preflight, readObject } from "../_shared/http.ts";
import { JobLinks, unknownJob } from "../_shared/job_links.ts";
import { failureResponse, jobStatus, outcomeResponse } from "../_shared/respond.ts";
import { type Clock, realClock, RunPodClient } from "../_shared/runpod.ts";
import { streamChat } from "./stream.ts";

// The chat action's fields a browser may set; anything else (admin_token, user_id, ...) is dropped.
const CHAT_FIELDS = [
  "message",
  "system_prompt",
  "conversation_id",
  "project_id",
  "context_type",
  "conversation_history",
  "unrestricted",
  "max_tokens",
  "temperature",
  "top_p",
  "top_k",
  "repetition_penalty",
  "seed",
  "stop",
] as const;

export function chatHandler(env: Env = Deno.env, fetchImpl: typeof fetch = fetch, clock: Clock = realClock) {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return preflight();
    let retryAfterS: number | undefined;
    try {
      const cfg = loadConfig(env);
      retryAfterS = cfg.retryAfterS;
      const userId = await verifyUser(req, authConfig(env));
      const client = new RunPodClient(cfg, fetchImpl, clock);
      const links = await JobLinks.of(env, "chat", userId);
      const query = new URL(req.url).searchParams;
      const jobId = query.get("job_id");
      if (req.method === "GET" && jobId) {
        if (!await links.owns(jobId, query.get("sig"))) return unknownJob();
        return await jobStatus(jobId, client, cfg, links.url);
      }
      if (req.method !== "POST") {
        return json(405, { success: false, error_code: "method_not_allowed", error: "use POST" });
      }
      const body = await readObject(req);
      if (!body) {
        return json(400, {
          success: false,
          error_code: "invalid_input",
          error: "body must be a JSON object",
          field: "body",
        });
      }
      const input = { ...pick(body, CHAT_FIELDS), action: "chat", user_id: userId };
      if (body.stream === true) return await streamChat(input, client, links.url);
      // /run: a job that outlives the answer's budget stays readable at the 202's link for 30 minutes
      const outcome = await client.runAndWait(input, client.deadline());
      return await outcomeResponse(outcome, cfg, links.url);
    } catch (err) {
      return failureResponse(err, retryAfterS);
    }
  };
}
