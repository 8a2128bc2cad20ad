/**
 * POST /functions/v1/enhance-prompt: the top tier of the seed's fallback hierarchy.
 * 1. the platform's template for the job type (prompt_templates) goes to the worker as system_prompt;
 * 2. without one, the worker uses its own profile prompts (enhancement_source "worker_fallback");
 * 3. when the worker cannot be reached, fails on its side or outlives the budget, the answer is the
 *    original prompt with enhancement_source "emergency" (the caller's generation still goes ahead);
 *    a job that was queued can still be read by the same user at its status_url
 *    (GET /functions/v1/enhance-prompt?job_id=...&sig=..., see _shared/job_links.ts; others get 404).
 * Input errors (400 naming the field, 403, 422) are answered as errors, never papered over.
 */
import { authConfig, verifyUser } from "../_shared/auth.ts";
import { type Env, loadConfig } from "../_shared/config.ts";
import { errorResponse, finalOutput, httpStatus, jobError } from "../_shared/errors.ts";
import { json, pick, preflight, readObject } from "../_shared/http.ts";
import { JobLinks, unknownJob } from "../_shared/job_links.ts";
import { failureResponse, jobStatus, type StatusLink } from "../_shared/respond.ts";
import { RunPodClient, WorkerNoAnswer, WorkerUnavailable } from "../_shared/runpod.ts";
import { readTemplate } from "../_shared/templates.ts";

const ENHANCE_FIELDS = [
  "prompt",
  "job_type",
  "quality",
  "enhancement_type",
  "context",
  "seed",
  "mode",
] as const;

async function emergency(
  prompt: string,
  jobType: string,
  reason: string,
  queued?: { id: string; link: StatusLink },
): Promise<Response> {
  const body: Record<string, unknown> = {
    success: true,
    original_prompt: prompt,
    enhanced_prompt: prompt,
    enhancement_source: "emergency",
    job_type: jobType,
    reason,
  };
  if (queued) Object.assign(body, { job_id: queued.id, status_url: await queued.link(queued.id) });
  return json(200, body);
}

export function enhanceHandler(env: Env = Deno.env, fetchImpl: typeof fetch = fetch) {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return preflight();
    try {
      const cfg = loadConfig(env);
      const userId = await verifyUser(req, authConfig(env));
      const links = await JobLinks.of(env, "enhance-prompt", userId);
      const query = new URL(req.url).searchParams;
      const jobId = query.get("job_id");
      if (req.method === "GET" && jobId) {
        if (!await links.owns(jobId, query.get("sig"))) return unknownJob();
        return await jobStatus(jobId, new RunPodClient(cfg, fetchImpl), cfg, links.url);
      }
      if (req.method !== "POST") {
        return json(405, { success: false, error_code: "method_not_allowed", error: "use POST" });
      }
      const body = await readObject(req);
      const prompt = body?.prompt;
      if (!body || typeof prompt !== "string" || !prompt.trim()) {
        const field = body ? "prompt" : "body";
        return json(400, {
          success: false,
          error_code: "invalid_input",
          error: `'${field}' is required`,
          field,
        });
      }
      const jobType = typeof body.job_type === "string" ? body.job_type : "sdxl_image_fast";
      const template = await readTemplate(env, jobType);
      const input = { ...pick(body, ENHANCE_FIELDS), action: "enhance" };
      if (template) Object.assign(input, { system_prompt: template });
      const client = new RunPodClient(cfg, fetchImpl);
      let outcome;
      try {
        outcome = await client.runsync(input, client.deadline());
      } catch (err) {
        if (err instanceof WorkerUnavailable || err instanceof WorkerNoAnswer) {
          return await emergency(
            prompt,
            jobType,
            err instanceof WorkerUnavailable ? "worker_unavailable" : "worker_timeout",
          );
        }
        throw err;
      }
      if (outcome.kind === "pending") {
        return await emergency(prompt, jobType, "worker_timeout", { id: outcome.id, link: links.url });
      }
      const error = jobError(outcome.answer);
      if (error && httpStatus(error.code) < 500) {
        return errorResponse(error, cfg.retryAfterS, outcome.answer.id);
      }
      if (error) return await emergency(prompt, jobType, error.code);
      return json(200, finalOutput(outcome.answer.output));
    } catch (err) {
      return failureResponse(err);
    }
  };
}
