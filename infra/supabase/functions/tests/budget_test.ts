/**
 * Budgets inside Supabase's limits, on RunPod's queue stand-in (runpod_standin.ts) and a fake clock
 * shared by both sides: minutes of RunPod time pass in milliseconds, and every bound asserted here is
 * on that clock, never on elapsed real time.
 */
import assert from "node:assert/strict";
import { chatHandler } from "../chat/handler.ts";
import { RunPodClient, UpstreamRejected } from "../_shared/runpod.ts";
import { loadConfig } from "../_shared/config.ts";
import { call, get, makeEnv, userToken } from "./helpers.ts";
import { FakeClock, RETENTION_MS, runpodQueue } from "./runpod_standin.ts";

const REQUEST_LIMIT_MS = 150_000;

Deno.test("a worker slower than 150 s: chat answers 202 + link before Supabase's limit, even with EDGE_WALL_CLOCK_S=400", async () => {
  const clock = new FakeClock();
  const rp = runpodQueue(clock, { durationMs: 200_000 });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, EDGE_WALL_CLOCK_S: "400" });
    const token = await userToken("user-a");
    const started = clock.now();
    const res = await call(chatHandler(env, fetch, clock), { message: "hello" }, token);
    const answeredAfter = clock.now() - started;
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.ok(answeredAfter < REQUEST_LIMIT_MS - 5_000, `answered after ${answeredAfter} ms of RunPod time`);
    assert.ok(answeredAfter >= 100_000, "it waited most of the budget before handing over the link");
    assert.equal(rp.requests[0], "POST /run", "a job that may outlive the answer goes through /run");
    assert.ok(!rp.requests.some((r) => r.includes("/runsync")));
    const job = rp.jobs.get(String(res.body.job_id))!;
    assert.equal(job.input.message, "hello");

    // two minutes after the job finished (past /runsync's retention), the link still finds the result
    clock.t = job.doneAt + 120_000;
    assert.ok(120_000 > RETENTION_MS.runsync);
    const poll = await get(chatHandler(env, fetch, clock), String(res.body.status_url), token);
    assert.equal(poll.status, 200);
    assert.equal((await poll.json()).response, "re: hello");
  } finally {
    await rp.close();
  }
});

Deno.test("the stand-in's retention can miss: a /runsync result is gone two minutes after it finished", async () => {
  const clock = new FakeClock();
  const rp = runpodQueue(clock, { durationMs: 200_000 });
  try {
    const client = new RunPodClient(loadConfig(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url })), fetch, clock);
    const outcome = await client.runsync({ message: "hello" }, client.deadline());
    assert.equal(outcome.kind, "pending");
    const job = rp.jobs.get(outcome.kind === "pending" ? outcome.id : "")!;
    clock.t = job.doneAt + 30_000;
    assert.equal((await client.status(job.id, clock.now() + 1000))?.status, "COMPLETED");
    clock.t = job.doneAt + 120_000;
    await assert.rejects(client.status(job.id, clock.now() + 1000), UpstreamRejected);
  } finally {
    await rp.close();
  }
});

Deno.test("a worker inside the budget: chat answers 200 from /run + /status", async () => {
  const clock = new FakeClock();
  const rp = runpodQueue(clock, { durationMs: 3_000 });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url });
    const res = await call(chatHandler(env, fetch, clock), { message: "hi" }, await userToken("user-b"));
    assert.equal(res.status, 200);
    assert.equal(res.body.response, "re: hi");
    assert.ok(
      rp.requests.every((r) => r === "POST /run" || r.startsWith("GET /status/")),
      rp.requests.join(),
    );
  } finally {
    await rp.close();
  }
});

/** server-sent events as [event, data] pairs, a comment as ["comment", text] */
async function events(res: Response): Promise<Array<[string, unknown]>> {
  return (await res.text()).trim().split("\n\n").map((block): [string, unknown] => {
    if (block.startsWith(":")) return ["comment", block.slice(1).trim()];
    const [event, data] = block.split("\n");
    return [event.replace("event: ", ""), JSON.parse(data.replace("data: ", ""))];
  });
}

function streamRequest(token: string, message = "hi"): Request {
  return new Request("http://localhost/functions/v1/chat", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ message, stream: true }),
  });
}

Deno.test("SSE: a quiet stretch gets a keep-alive comment every SSE_KEEPALIVE_S; a relay may outlast 150 s", async () => {
  const clock = new FakeClock();
  const rp = runpodQueue(clock, { durationMs: 200_000 });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, EDGE_WALL_CLOCK_S: "400", SSE_KEEPALIVE_S: "15" });
    const res = await chatHandler(env, fetch, clock)(streamRequest(await userToken("user-k")));
    const got = await events(res);
    const comments = got.filter(([event]) => event === "comment");
    assert.equal(comments.length, Math.floor(200 / 15), JSON.stringify(got));
    assert.ok(comments.every(([, text]) => text === "keep-alive"));
    assert.deepEqual(got.at(-1), ["done", { success: true, response: "re: hi" }]);
  } finally {
    await rp.close();
  }
});

Deno.test("SSE: a client that disconnects cancels the RunPod job (POST /cancel/{id})", async () => {
  const clock = new FakeClock(); // the stand-in's jobs never finish; the relay itself runs on real time
  const rp = runpodQueue(clock, {
    durationMs: 3_600_000,
    streamItems: () => [{ output: { delta: "Hel" } }],
  });
  const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, RUNPOD_POLL_INTERVAL_MS: "20" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, chatHandler(env));
  try {
    const token = await userToken("user-c");
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/functions/v1/chat`, streamRequest(token));
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes("event: delta")) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the stream ended before its first delta");
      seen += new TextDecoder().decode(value);
    }
    await reader.cancel(); // the browser goes away
    assert.equal(await rp.cancelled, "job-1");
    assert.ok(rp.requests.includes("POST /cancel/job-1"));
    assert.equal(rp.jobs.get("job-1")!.cancelled, true);
  } finally {
    await server.shutdown();
    await rp.close();
  }
});
