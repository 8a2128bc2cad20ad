/** From a job's outcome, or a failure on the way, to the HTTP answer the browser gets. */
import { AuthError } from "./auth.ts";
import { ConfigError, type RunPodConfig } from "./config.ts";
import { errorResponse, finalOutput, jobError } from "./errors.ts";
import { json } from "./http.ts";
import {
  FINISHED,
  type Outcome,
  type RunPodClient,
  UpstreamRejected,
  WorkerNoAnswer,
  WorkerUnavailable,
} from "./runpod.ts";

/** Where a client polls a job that outlived the function's budget: GET /functions/v1/<fn>?job_id=... */
export function statusUrl(functionName: string, id: string): string {
  return `/functions/v1/${functionName}?job_id=${encodeURIComponent(id)}`;
}

export function outcomeResponse(
  outcome: Outcome,
  cfg: RunPodConfig,
  functionName: string,
  shape: (output: unknown) => unknown = (output) => output,
): Response {
  if (outcome.kind === "pending") {
    const body = {
      job_id: outcome.id,
      status: outcome.status,
      status_url: statusUrl(functionName, outcome.id),
    };
    return json(202, body, { location: body.status_url });
  }
  const error = jobError(outcome.answer);
  if (error) return errorResponse(error, cfg.retryAfterS, outcome.answer.id);
  return json(200, shape(finalOutput(outcome.answer.output)));
}

/** The status route: one /status read; 202 again while the job runs. */
export async function jobStatus(
  id: string,
  client: RunPodClient,
  cfg: RunPodConfig,
  functionName: string,
  shape?: (output: unknown) => unknown,
): Promise<Response> {
  const answer = await client.status(id, Date.now() + Math.min(cfg.budgetMs, 10_000));
  const outcome: Outcome = answer && FINISHED.has(answer.status)
    ? { kind: "done", answer }
    : { kind: "pending", id, status: answer?.status ?? "IN_PROGRESS" };
  return outcomeResponse(outcome, cfg, functionName, shape);
}

/** Failures before a job's answer; logged by kind and message only (never headers or secrets). */
export function failureResponse(err: unknown, retryAfterS = 5): Response {
  if (err instanceof AuthError) {
    return json(401, { success: false, error_code: "unauthorized", error: err.message });
  }
  if (err instanceof WorkerUnavailable) {
    return errorResponse({ code: "worker_unavailable", message: "" }, err.retryAfterS ?? retryAfterS);
  }
  if (err instanceof WorkerNoAnswer) {
    return errorResponse({ code: "worker_timeout", message: "" }, retryAfterS);
  }
  console.error(
    `chat-worker call failed: ${err instanceof Error ? `${err.name}: ${err.message}` : "unknown"}`,
  );
  if (err instanceof ConfigError) {
    return json(500, {
      success: false,
      error_code: "misconfigured",
      error: "the function is not configured",
    });
  }
  if (err instanceof UpstreamRejected) {
    return errorResponse({ code: "upstream_error", message: "" }, retryAfterS);
  }
  return json(500, { success: false, error_code: "internal_error", error: "unexpected error" });
}
