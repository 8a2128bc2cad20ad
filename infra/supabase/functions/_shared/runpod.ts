/**
 * The one RunPod client the functions share: submit a job, wait for it within the function's
 * wall-clock budget, poll /status and /stream. Secrets are sent, never logged.
 *
 * Non-streamed calls a user may poll later go through /run (RunPod keeps a /run job's result for
 * 30 minutes; a /runsync result only about a minute) and /status polls, within a budget that ends
 * before Supabase's 150 s request limit (config.ts). Time comes from a Clock, so tests can run
 * minutes of RunPod time in milliseconds.
 *
 * Retries: a request RunPod refused before taking it (429, 502, 503, connection refused) is
 * retried with backoff. A submit whose answer never came (timeout, reset, 504) may have been
 * accepted, so it is never resubmitted: the caller gets WorkerNoAnswer; a 500 is not retried either. Reads (/status, /stream)
 * are safe to repeat and are retried on any 429/5xx or network error while time remains.
 */
import type { RunPodConfig } from "./config.ts";

export type JobInput = Record<string, unknown>;

export interface JobAnswer {
  id?: string;
  status: string;
  output?: unknown;
  error?: string;
  stream?: Array<{ output: unknown }>;
}

/** RunPod's per-job policy; a lowPriority job never makes the endpoint scale up. */
export interface JobPolicy {
  lowPriority?: boolean;
  ttl?: number;
  executionTimeout?: number;
}

export const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

export type Outcome =
  | { kind: "done"; answer: JobAnswer }
  | { kind: "pending"; id: string; status: string };

/** Nothing was accepted: RunPod refused or could not be reached. Safe to fall back. */
export class WorkerUnavailable extends Error {
  constructor(message: string, readonly retryAfterS?: number) {
    super(message);
  }
}

/** The request went out and no answer came in time: the job may run, its id is unknown. */
export class WorkerNoAnswer extends Error {}

/** RunPod rejected our request (401/403/404/400, 500): a deployment problem, not the user's. */
export class UpstreamRejected extends Error {
  constructor(readonly status: number) {
    super(`RunPod answered HTTP ${status}`);
  }
}

const REFUSED_STATUSES = new Set([429, 502, 503]);

/** Wall-clock time and waiting; tests pass a fake one that RunPod's stand-in also reads. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The first /status polls of a /run job come quickly (a warm worker answers in well under a second). */
const FIRST_POLL_MS = 100;

function retryAfterMs(response: Response): number | undefined {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** A connect-phase failure: the request never left, so repeating it cannot duplicate a job. */
function connectFailed(err: unknown): boolean {
  const text = `${err} ${(err as { cause?: unknown })?.cause ?? ""}`;
  return /\(Connect\)|connection refused|dns error/i.test(text);
}

export class RunPodClient {
  private pollMethod = "GET";

  constructor(
    private readonly cfg: RunPodConfig,
    private readonly fetchImpl: typeof fetch = fetch,
    readonly clock: Clock = realClock,
  ) {}

  /** When a non-streamed answer must be on its way (inside Supabase's request limit). */
  deadline(): number {
    return this.clock.now() + this.cfg.budgetMs;
  }

  /** When a streamed relay must end (the function's wall clock). */
  streamDeadline(): number {
    return this.clock.now() + this.cfg.streamBudgetMs;
  }

  get keepAliveMs(): number {
    return this.cfg.keepAliveMs;
  }

  get pollIntervalMs(): number {
    return this.cfg.pollIntervalMs;
  }

  /** /runsync, then /status polls until the job finishes or the budget ends. */
  async runsync(input: JobInput, deadline: number, policy?: JobPolicy): Promise<Outcome> {
    // RunPod's wait is in milliseconds, 1000..300000; leave time to poll and answer.
    const waitMs = Math.min(300_000, Math.max(1000, deadline - this.clock.now() - 2000));
    const answer = await this.submit(`/runsync?wait=${Math.round(waitMs)}`, input, deadline, policy);
    return await this.follow(answer, deadline);
  }

  /**
   * /run, then /status polls until the job finishes or the budget ends: for answers whose job a
   * user may poll later (a 202's status link), since RunPod keeps a /run result 30 minutes.
   */
  async runAndWait(input: JobInput, deadline: number, policy?: JobPolicy): Promise<Outcome> {
    const answer = await this.submit("/run", input, deadline, policy);
    if (!answer.id) throw new WorkerNoAnswer("RunPod accepted the job without an id");
    return await this.follow(answer, deadline, FIRST_POLL_MS);
  }

  /** POST /cancel/{id}: best effort (the job may have finished); false when RunPod did not take it. */
  async cancel(id: string): Promise<boolean> {
    try {
      const response = await this.fetchImpl(`${this.cfg.endpointUrl}/cancel/${encodeURIComponent(id)}`, {
        method: "POST",
        headers: this.headers(),
        signal: AbortSignal.timeout(5000),
      });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** /run: queue the job and return its id at once (streaming follows it with /stream). */
  async run(input: JobInput, deadline: number): Promise<string> {
    const answer = await this.submit("/run", input, deadline);
    if (!answer.id) throw new WorkerNoAnswer("RunPod accepted the job without an id");
    return answer.id;
  }

  /** Poll /status until the job finishes or the budget ends. */
  async follow(answer: JobAnswer, deadline: number, firstPollMs?: number): Promise<Outcome> {
    let current = answer;
    let interval = Math.min(firstPollMs ?? this.cfg.pollIntervalMs, this.cfg.pollIntervalMs);
    while (!FINISHED.has(current.status)) {
      if (!current.id) throw new WorkerNoAnswer(`job ${current.status} without an id`);
      if (this.clock.now() + interval >= deadline) {
        return { kind: "pending", id: current.id, status: current.status };
      }
      await this.clock.sleep(interval);
      interval = Math.min(interval * 2, this.cfg.pollIntervalMs);
      const next = await this.read(`/status/${encodeURIComponent(current.id)}`, deadline);
      if (!next) return { kind: "pending", id: current.id, status: current.status };
      current = { ...next, id: next.id ?? current.id };
    }
    return { kind: "done", answer: current };
  }

  /** One /stream poll: the new items since the last poll, or null when the budget ran out. */
  stream(id: string, deadline: number): Promise<JobAnswer | null> {
    return this.read(`/stream/${encodeURIComponent(id)}`, deadline);
  }

  /** One /status poll, or null when the budget ran out. */
  status(id: string, deadline: number): Promise<JobAnswer | null> {
    return this.read(`/status/${encodeURIComponent(id)}`, deadline);
  }

  private headers(): HeadersInit {
    return { authorization: `Bearer ${this.cfg.apiKey}`, "content-type": "application/json" };
  }

  private async submit(
    path: string,
    input: JobInput,
    deadline: number,
    policy?: JobPolicy,
  ): Promise<JobAnswer> {
    const body = JSON.stringify(policy ? { input, policy } : { input });
    for (let attempt = 1;; attempt++) {
      const timeLeft = deadline - this.clock.now();
      let response: Response;
      try {
        response = await this.fetchImpl(this.cfg.endpointUrl + path, {
          method: "POST",
          headers: this.headers(),
          body,
          signal: AbortSignal.timeout(Math.max(1, timeLeft)),
        });
      } catch (err) {
        if (!connectFailed(err)) throw new WorkerNoAnswer("no answer from RunPod in time");
        if (!(await this.backoff(attempt, deadline))) throw new WorkerUnavailable("RunPod cannot be reached");
        continue;
      }
      if (response.ok) return await response.json() as JobAnswer;
      await response.body?.cancel();
      if (!REFUSED_STATUSES.has(response.status)) {
        // a gateway timeout may hide an accepted job; anything else is not retried either
        if (response.status === 504) throw new WorkerNoAnswer("RunPod's gateway timed out");
        throw new UpstreamRejected(response.status);
      }
      const hint = retryAfterMs(response);
      if (!(await this.backoff(attempt, deadline, hint))) {
        throw new WorkerUnavailable(`RunPod answered HTTP ${response.status}`, hint && hint / 1000);
      }
    }
  }

  private async read(path: string, deadline: number): Promise<JobAnswer | null> {
    for (let attempt = 1;; attempt++) {
      let response: Response | undefined;
      try {
        response = await this.fetchImpl(this.cfg.endpointUrl + path, {
          method: this.pollMethod,
          headers: this.headers(),
          signal: AbortSignal.timeout(Math.max(1, deadline - this.clock.now())),
        });
      } catch {
        response = undefined; // a read is safe to repeat
      }
      if (response?.status === 405 && this.pollMethod === "GET") {
        // RunPod serves GET; the SDK's local API (rp_serve_api) registers these routes for POST only.
        await response.body?.cancel();
        this.pollMethod = "POST";
        continue;
      }
      if (response?.ok) return await response.json() as JobAnswer;
      if (response && response.status < 500 && response.status !== 429) {
        await response.body?.cancel();
        throw new UpstreamRejected(response.status);
      }
      await response?.body?.cancel();
      const hint = response && retryAfterMs(response);
      if (!(await this.backoff(attempt, deadline, hint, Infinity))) return null;
    }
  }

  /** Sleep before the next try; false when no try is left or it would not fit the budget. */
  private async backoff(
    attempt: number,
    deadline: number,
    hintMs?: number,
    maxAttempts?: number,
  ): Promise<boolean> {
    if (attempt >= (maxAttempts ?? this.cfg.maxAttempts)) return false;
    const jittered = this.cfg.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
    const delay = Math.max(50, Math.min(hintMs ?? jittered, 10_000));
    if (this.clock.now() + delay >= deadline) return false;
    await this.clock.sleep(delay);
    return true;
  }
}
