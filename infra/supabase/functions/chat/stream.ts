/**
 * Chat as server-sent events: /run the job with stream: true, then poll RunPod's /stream/{id},
 * relaying each `{delta}` item as `event: delta` and the worker's last item as `event: done`
 * (or `event: error` with the mapped error body). The worker streams only when its endpoint runs
 * with STREAM_ENABLED=true; otherwise the whole reply arrives as the one `done` event.
 */
import { errorBody, finalOutput, jobError } from "../_shared/errors.ts";
import { corsHeaders } from "../_shared/http.ts";
import type { StatusLink } from "../_shared/respond.ts";
import { FINISHED, type JobInput, type RunPodClient, WorkerNoAnswer } from "../_shared/runpod.ts";

type Send = (event: string, data: unknown) => void;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function streamChat(
  input: JobInput,
  client: RunPodClient,
  link: StatusLink,
): Promise<Response> {
  const deadline = client.deadline();
  const id = await client.run({ ...input, stream: true }, deadline);
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send: Send = (event, data) =>
        controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      try {
        await relay(id, client, deadline, send, link);
      } catch (err) {
        const code = err instanceof WorkerNoAnswer ? "worker_timeout" : "upstream_error";
        send("error", errorBody({ code, message: "" }, id));
      }
      controller.close();
    },
  });
  const headers = { ...corsHeaders(), "content-type": "text/event-stream", "cache-control": "no-cache" };
  return new Response(body, { headers });
}

async function relay(
  id: string,
  client: RunPodClient,
  deadline: number,
  send: Send,
  link: StatusLink,
): Promise<void> {
  let last: unknown;
  for (;;) {
    const chunk = await client.stream(id, deadline);
    if (!chunk) {
      send("pending", { job_id: id, status_url: await link(id) });
      return;
    }
    for (const item of chunk.stream ?? []) {
      const out = item.output as Record<string, unknown> | null;
      if (out && typeof out.delta === "string") send("delta", { delta: out.delta });
      else last = out;
    }
    if (FINISHED.has(chunk.status)) {
      if (last === undefined && chunk.status === "COMPLETED") {
        last = (await client.status(id, deadline))?.output;
      }
      const error = jobError({ ...chunk, output: last });
      send(error ? "error" : "done", error ? errorBody(error, id) : finalOutput(last));
      return;
    }
    await sleep(client.pollIntervalMs);
  }
}
