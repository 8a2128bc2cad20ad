/** From a job's outcome, or a failure on the way, to the HTTP answer the browser gets. */
import { AuthError, AuthUnavailable } from "./auth.ts";
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

/** Where a client polls a job that outlived the function's budget (see job_links.ts). */
export type StatusLink = (id: string) => Promise<string>;

/** The job's answer; a job still running is 202 with its id (and, given `link`, the caller's status URL). */
export async function outcomeResponse(
  outcome: Outcome,
  cfg: RunPodConfig,
  link?: StatusLink,
  shape: (output: unknown) => unknown = (output) => output,
): Promise<Response> {
  if (outcome.kind === "pending") {
    const body: Record<string, unknown> = { job_id: outcome.id, status: outcome.status };
    if (!link) return json(202, body);
    body.status_url = await link(outcome.id);
    return json(202, body, { location: body.status_url as string });
  }
  const error = jobError(outcome.answer);
  if (error) return errorResponse(error, cfg.retryAfterS, outcome.answer.id);
  return json(200, shape(finalOutput(outcome.answer.output)));
}

/** The status route, once the link is checked as the caller's: one /status read; 202 again while it runs. */
export async function jobStatus(
  id: string,
  client: RunPodClient,
  cfg: RunPodConfig,
  link: StatusLink,
  shape?: (output: unknown) => unknown,
): Promise<Response> {
  const answer = await client.status(id, client.clock.now() + Math.min(cfg.budgetMs, 10_000));
  const outcome: Outcome = answer && FINISHED.has(answer.status)
    ? { kind: "done", answer }
    : { kind: "pending", id, status: answer?.status ?? "IN_PROGRESS" };
  return await outcomeResponse(outcome, cfg, link, shape);
}

/** Failures before a job's answer; logged by kind and message only (never headers or secrets). */
export function failureResponse(err: unknown, retryAfterS = 5): Response {
  if (err instanceof AuthError) {
    return json(401, { success: false, error_code: "unauthorized", error: err.message });
  }
  if (err instanceof AuthUnavailable) {
    return json(503, { success: false, error_code: "auth_unavailable", error: err.message }, {
      "retry-after": String(Math.ceil(retryAfterS)),
    });
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
