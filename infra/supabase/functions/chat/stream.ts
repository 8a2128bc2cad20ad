/**
 * Chat as server-sent events: /run the job with stream: true, then poll RunPod's /stream/{id},
 * relaying each `{delta}` item as `event: delta` and the worker's last item as `event: done`
 * (or `event: error` with the mapped error body). The worker streams only when its endpoint runs
 * with STREAM_ENABLED=true; otherwise the whole reply arrives as the one `done` event.
 *
 * While nothing new arrives, a `: keep-alive` comment goes out every SSE_KEEPALIVE_S (15 s), so
 * proxies and browsers keep the connection. A client that disconnects cancels the relay and the
 * RunPod job (POST /cancel/{id}): nobody is left to read the reply. The relay may run for the
 * function's wall clock (EDGE_WALL_CLOCK_S); past it, `event: pending` hands over the status link.
 */
import { errorBody, finalOutput, jobError } from "../_shared/errors.ts";
import { corsHeaders } from "../_shared/http.ts";
import type { StatusLink } from "../_shared/respond.ts";
import { FINISHED, type JobInput, type RunPodClient, WorkerNoAnswer } from "../_shared/runpod.ts";

interface Channel {
  send(event: string, data: unknown): void;
  /** A keep-alive comment when nothing was sent for keepAliveMs. */
  idle(): void;
  readonly closed: boolean;
}

export async function streamChat(
  input: JobInput,
  client: RunPodClient,
  link: StatusLink,
): Promise<Response> {
  const deadline = client.streamDeadline();
  const id = await client.run({ ...input, stream: true }, deadline);
  const encoder = new TextEncoder();
  let closed = false;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      let lastSent = client.clock.now();
      const write = (text: string) => {
        if (closed) return;
        controller.enqueue(encoder.encode(text));
        lastSent = client.clock.now();
      };
      const channel: Channel = {
        send: (event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
        idle: () => {
          if (client.clock.now() - lastSent >= client.keepAliveMs) write(": keep-alive\n\n");
        },
        get closed() {
          return closed;
        },
      };
      try {
        await relay(id, client, deadline, channel, link);
      } catch (err) {
        const code = err instanceof WorkerNoAnswer ? "worker_timeout" : "upstream_error";
        channel.send("error", errorBody({ code, message: "" }, id));
      }
      if (!closed) {
        closed = true;
        controller.close();
      }
    },
    async cancel() {
      // the client went away: stop polling, and stop the job nobody will read
      if (closed) return;
      closed = true;
      await client.cancel(id);
    },
  });
  const headers = { ...corsHeaders(), "content-type": "text/event-stream", "cache-control": "no-cache" };
  return new Response(body, { headers });
}

async function relay(
  id: string,
  client: RunPodClient,
  deadline: number,
  out: Channel,
  link: StatusLink,
): Promise<void> {
  let last: unknown;
  while (!out.closed) {
    const chunk = await client.stream(id, deadline);
    if (out.closed) return;
    if (!chunk) {
      out.send("pending", { job_id: id, status_url: await link(id) });
      return;
    }
    for (const item of chunk.stream ?? []) {
      const output = item.output as Record<string, unknown> | null;
      if (output && typeof output.delta === "string") out.send("delta", { delta: output.delta });
      else last = output;
    }
    if (FINISHED.has(chunk.status)) {
      if (last === undefined && chunk.status === "COMPLETED") {
        last = (await client.status(id, deadline))?.output;
      }
      const error = jobError({ ...chunk, output: last });
      out.send(error ? "error" : "done", error ? errorBody(error, id) : finalOutput(last));
      return;
    }
    out.idle();
    if (client.clock.now() + client.pollIntervalMs >= deadline) {
      out.send("pending", { job_id: id, status_url: await link(id) });
      return;
    }
    await client.clock.sleep(client.pollIntervalMs);
  }
}
