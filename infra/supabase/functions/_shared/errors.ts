/**
 * The worker's error codes as HTTP answers. A failed RunPod job carries only the string
 * "code: message (field: f)"; where the worker's output survives it is {success: false, error_code, ...}.
 * Client errors keep the worker's message (written for callers, it names the field); server-side
 * failures get a fixed message so no worker internals reach the browser.
 */
import type { JobAnswer } from "./runpod.ts";
import { json } from "./http.ts";

export interface ErrorBody {
  success: false;
  error_code: string;
  error: string;
  field?: string;
  job_id?: string;
}

const CLIENT_ERRORS: Record<string, number> = {
  invalid_input: 400,
  unknown_action: 400,
  unknown_command: 400,
  context_overflow: 400,
  unauthorized: 401,
  adult_content_disabled: 403,
  content_policy_violation: 422,
};

const SERVER_MESSAGES: Record<string, string> = {
  overloaded: "the chat worker is busy; retry shortly",
  worker_timeout: "the chat worker did not answer in time",
  worker_unavailable: "the chat worker cannot be reached right now",
};
const GENERIC = "the chat worker failed to answer; try again";
// Worker codes that are the worker's fault: the code is kept (machine-readable), the message is not.
const SERVER_CODES = new Set([
  "overloaded",
  "engine_error",
  "engine_timeout",
  "engine_out_of_memory",
  "model_not_loaded",
  "internal_error",
  "worker_timeout",
  "worker_unavailable",
]);

export interface WorkerError {
  code: string;
  message: string;
  field?: string;
}

export function parseWorkerError(text: string): WorkerError {
  const found = /^([a-z_]+): ([\s\S]*?)(?: \(field: ([^)]*)\))?$/.exec(text.trim());
  if (!found) return { code: "upstream_error", message: GENERIC };
  return { code: found[1], message: found[2], field: found[3] || undefined };
}

/** The job's usual output: a generator handler's /runsync output is the list of yielded items. */
export function finalOutput(output: unknown): unknown {
  return Array.isArray(output) ? output.at(-1) : output;
}

/** The worker's error carried by a finished job, or null when the job succeeded. */
export function jobError(answer: JobAnswer): WorkerError | null {
  if (answer.status === "FAILED") return parseWorkerError(answer.error ?? "");
  if (answer.status === "TIMED_OUT") return { code: "worker_timeout", message: "" };
  if (answer.status !== "COMPLETED") return { code: "upstream_error", message: "" };
  const out = finalOutput(answer.output) as Record<string, unknown> | undefined;
  if (out && out.success === false && typeof out.error_code === "string") {
    const parsed = parseWorkerError(String(out.error ?? ""));
    return {
      code: out.error_code,
      message: parsed.message,
      field: (out.field as string | null) ?? parsed.field,
    };
  }
  return null;
}

export function httpStatus(code: string): number {
  if (code in CLIENT_ERRORS) return CLIENT_ERRORS[code];
  if (code === "overloaded" || code === "worker_unavailable") return 503;
  if (code === "worker_timeout") return 504;
  return 502; // engine_error, engine_timeout, engine_out_of_memory, model_not_loaded, internal_error, ...
}

export function errorBody(err: WorkerError, jobId?: string): ErrorBody {
  const client = err.code in CLIENT_ERRORS;
  const body: ErrorBody = {
    success: false,
    error_code: client || SERVER_CODES.has(err.code) ? err.code : "upstream_error",
    error: client ? err.message : SERVER_MESSAGES[err.code] ?? GENERIC,
  };
  if (client && err.field) body.field = err.field;
  if (jobId) body.job_id = jobId;
  return body;
}

export function errorResponse(err: WorkerError, retryAfterS: number, jobId?: string): Response {
  const status = httpStatus(err.code);
  const headers: Record<string, string> = status === 503
    ? { "retry-after": String(Math.ceil(retryAfterS)) }
    : {};
  return json(status, errorBody(err, jobId), headers);
}
