/**
 * POST /functions/v1/enhance-prompt: the top tier of the seed's fallback hierarchy.
 * 1. the platform's template for the job type (prompt_templates) goes to the worker as system_prompt;
 * 2. without one, the worker uses its own profile prompts (enhancement_source "worker_fallback").
 *
 * Fail closed (docs/CONTENT_POLICY.md): every prompt this function answers with success: true is
 * one the worker checked and returned as a success. When the worker cannot answer (unreachable,
 * overloaded, failing on its side, a malformed answer) the answer is 503 with Retry-After and the
 * code, `prompt_checked: false`, and no prompt; a job still running past the budget is 202 with its
 * status link (GET /functions/v1/enhance-prompt?job_id=...&sig=..., the same user only; others get
 * 404). The caller's raw prompt never comes back as an enhancement.
 * Input errors (400 naming the field, 403, 422) are answered as errors.
 */
import { authConfig, verifyUser } from "../_shared/auth.ts";
import { type Env, loadConfig } from "../_shared/config.ts";
import {
  errorBody,
  errorResponse,
  finalOutput,
  httpStatus,
  jobError,
  type WorkerError,
} from "../_shared/errors.ts";
import { json, pick, preflight, readObject } from "../_shared/http.ts";
import { JobLinks, unknownJob } from "../_shared/job_links.ts";
import { failureResponse, jobStatus, type StatusLink } from "../_shared/respond.ts";
import {
  type Clock,
  type JobAnswer,
  realClock,
  RunPodClient,
  UpstreamRejected,
  WorkerNoAnswer,
  WorkerUnavailable,
} from "../_shared/runpod.ts";
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

/** The worker did not give a checked prompt: 503, Retry-After, the code, and no prompt at all. */
function notChecked(err: WorkerError, retryAfterS: number, jobId?: string): Response {
  const body = { ...errorBody(err, jobId), prompt_checked: false };
  return json(503, body, { "retry-after": String(Math.ceil(retryAfterS)) });
}

/** Still running: 202 with the job's status link; not a result, and says so. */
async function pending(id: string, status: string, link: StatusLink, retryAfterS: number): Promise<Response> {
  const statusUrl = await link(id);
  return json(202, {
    success: false,
    error_code: "enhancement_pending",
    error: "the enhancement is still running; poll status_url for the checked prompt",
    prompt_checked: false,
    job_id: id,
    status,
    status_url: statusUrl,
  }, { location: statusUrl, "retry-after": String(Math.ceil(retryAfterS)) });
}

/** The worker's successful output, or null when it is not one (anything else never passes as a prompt). */
function checkedOutput(answer: JobAnswer): Record<string, unknown> | null {
  const out = finalOutput(answer.output) as Record<string, unknown> | null | undefined;
  return out && out.success === true && typeof out.enhanced_prompt === "string" ? out : null;
}

/** A finished job as the answer: the checked output, the caller's error, or 503 without a prompt. */
function finished(answer: JobAnswer, retryAfterS: number): Response {
  const error = jobError(answer);
  if (error && httpStatus(error.code) < 500) return errorResponse(error, retryAfterS, answer.id);
  if (error) return notChecked(error, retryAfterS, answer.id);
  const out = checkedOutput(answer);
  if (!out) return notChecked({ code: "upstream_error", message: "" }, retryAfterS, answer.id);
  return json(200, out);
}

export function enhanceHandler(
  env: Env = Deno.env,
  fetchImpl: typeof fetch = fetch,
  clock: Clock = realClock,
) {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return preflight();
    let retryAfterS = 5;
    try {
      const cfg = loadConfig(env);
      retryAfterS = cfg.retryAfterS;
      const userId = await verifyUser(req, authConfig(env));
      const links = await JobLinks.of(env, "enhance-prompt", userId);
      const client = new RunPodClient(cfg, fetchImpl, clock);
      const query = new URL(req.url).searchParams;
      const jobId = query.get("job_id");
      if (req.method === "GET" && jobId) {
        if (!await links.owns(jobId, query.get("sig"))) return unknownJob();
        const read = await jobStatus(jobId, client, cfg, links.url, (output) => output);
        if (read.status !== 200) return read;
        // the same rule on the status route: only the worker's success passes
        const answer: JobAnswer = { id: jobId, status: "COMPLETED", output: await read.json() };
        return finished(answer, retryAfterS);
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
      let outcome;
      try {
        outcome = await client.runAndWait(input, client.deadline());
      } catch (err) {
        if (err instanceof WorkerUnavailable) {
          return notChecked({ code: "worker_unavailable", message: "" }, err.retryAfterS ?? retryAfterS);
        }
        if (err instanceof WorkerNoAnswer) {
          return notChecked({ code: "worker_timeout", message: "" }, retryAfterS);
        }
        if (err instanceof UpstreamRejected) {
          console.error(`chat-worker call failed: ${err.message}`);
          return notChecked({ code: "upstream_error", message: "" }, retryAfterS);
        }
        throw err;
      }
      if (outcome.kind === "pending") {
        return await pending(outcome.id, outcome.status, links.url, retryAfterS);
      }
      return finished(outcome.answer, retryAfterS);
    } catch (err) {
      return failureResponse(err, retryAfterS);
    }
  };
}
