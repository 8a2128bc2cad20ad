/**
 * Stand-in for RunPod's queue API (api.runpod.ai/v2/<endpoint>), named as such: no RunPod account
 * here, and the SDK's local API has neither /cancel nor result retention nor a job that takes
 * minutes. It serves /run, /runsync?wait=, GET /status/{id}, GET /stream/{id} and POST /cancel/{id}
 * on a local port, on a FakeClock shared with the functions' RunPodClient: a job "takes" durationMs
 * of that clock, /runsync holds the request up to `wait` by moving the clock, and results expire as
 * RunPod documents (/runsync about 1 minute after completion, /run 30 minutes), so a test runs
 * minutes of RunPod time without waiting.
 */
import type { Clock } from "../_shared/runpod.ts";

export class FakeClock implements Clock {
  constructor(public t = 1_750_000_000_000) {}
  now = () => this.t;
  sleep = (ms: number) => {
    this.t += ms;
    return Promise.resolve();
  };
  advance(ms: number) {
    this.t += ms;
  }
}

export const RETENTION_MS = { runsync: 60_000, run: 30 * 60_000 };

export interface Job {
  id: string;
  input: Record<string, unknown>;
  via: "run" | "runsync";
  submittedAt: number;
  doneAt: number;
  cancelled: boolean;
  streamed: number;
}

export interface QueueOptions {
  /** How long every job takes on the fake clock. */
  durationMs: number;
  /** The finished job's output (default: a chat reply echoing the message). */
  output?: (job: Job) => unknown;
  /** A job's /stream items at `now` that were not sent yet (default: none until it finishes). */
  streamItems?: (job: Job, now: number) => Array<{ output: unknown }>;
}

export function runpodQueue(clock: FakeClock, opts: QueueOptions) {
  const jobs = new Map<string, Job>();
  const requests: string[] = [];
  let onCancel: (id: string) => void = () => {};
  const cancelled = new Promise<string>((resolve) => onCancel = resolve);
  const output = opts.output ?? ((job: Job) => ({ success: true, response: `re: ${job.input.message}` }));
  const reply = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

  const state = (job: Job) => {
    if (job.cancelled) return { id: job.id, status: "CANCELLED" };
    if (clock.now() < job.doneAt) {
      return { id: job.id, status: clock.now() < job.submittedAt + 1000 ? "IN_QUEUE" : "IN_PROGRESS" };
    }
    return { id: job.id, status: "COMPLETED", output: output(job) };
  };
  /** A finished job past its retention is gone, as on RunPod. */
  const find = (id: string) => {
    const job = jobs.get(id);
    if (!job) return undefined;
    const expires = Math.max(job.doneAt, job.submittedAt) + RETENTION_MS[job.via];
    return clock.now() > expires ? undefined : job;
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const text = await req.text();
    const [, action, id] = url.pathname.split("/");
    if (req.method === "POST" && (action === "run" || action === "runsync")) {
      const job: Job = {
        id: `job-${jobs.size + 1}`,
        input: JSON.parse(text).input,
        via: action,
        submittedAt: clock.now(),
        doneAt: clock.now() + opts.durationMs,
        cancelled: false,
        streamed: 0,
      };
      jobs.set(job.id, job);
      if (action === "run") return reply({ id: job.id, status: "IN_QUEUE" });
      const wait = Number(url.searchParams.get("wait") ?? 90_000);
      clock.advance(Math.min(wait, Math.max(0, job.doneAt - clock.now()))); // RunPod holds the request
      return reply(state(job));
    }
    const job = id ? find(id) : undefined;
    if (!job) return reply({ error: "job not found" }, 404);
    if (req.method === "POST" && action === "cancel") {
      job.cancelled = true;
      onCancel(job.id);
      return reply({ id: job.id, status: "CANCELLED" });
    }
    if (req.method === "GET" && action === "status") return reply(state(job));
    if (req.method === "GET" && action === "stream") {
      const all = opts.streamItems?.(job, clock.now()) ?? [];
      const fresh = all.slice(job.streamed);
      job.streamed = all.length;
      const now = state(job);
      if (now.status === "COMPLETED" && !opts.streamItems) fresh.push({ output: now.output });
      return reply({ id: job.id, status: now.status, stream: fresh });
    }
    return reply({ error: "not found" }, 404);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    jobs,
    requests,
    /** Resolves with the job id when a /cancel arrives. */
    cancelled,
    close: () => server.shutdown(),
  };
}
