/**
 * The shared client and error mapping against local servers that misbehave on purpose (stand-ins
 * for RunPod's API: rate limits, a worker that never answers, a cold start, failures).
 */
import assert from "node:assert/strict";
import { chatHandler } from "../chat/handler.ts";
import { warmupHandler } from "../chat-worker-warmup/handler.ts";
import { enhanceHandler } from "../enhance-prompt/handler.ts";
import { parseWorkerError } from "../_shared/errors.ts";
import {
  anonToken,
  answer,
  API_KEY,
  AUTH,
  call,
  closedUrl,
  fakeRunPod,
  get,
  makeEnv,
  userToken,
  WARMUP_SECRET,
} from "./helpers.ts";

const done = (output: unknown) => answer({ id: "job-1", status: "COMPLETED", output });

Deno.test("a 429 then a 200 is one retry, with the API key as a Bearer token", async () => {
  const rp = fakeRunPod((_req, seen) =>
    seen.length === 1 ? answer({ error: "rate limited" }, 429) : done({ success: true, response: "hi" })
  );
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url });
    const res = await call(chatHandler(env), { message: "hello" }, await userToken("user-a"));
    assert.equal(res.status, 200);
    assert.equal(res.body.response, "hi");
    assert.equal(rp.seen.length, 2);
    assert.ok(rp.seen.every((r) => r.path === "/run"));
    assert.equal(rp.seen[1].headers.get("authorization"), `Bearer ${API_KEY}`);
    const input = (rp.seen[1].body as { input: Record<string, unknown> }).input;
    assert.deepEqual(input, { message: "hello", action: "chat", user_id: "user-a" });
  } finally {
    await rp.close();
  }
});

Deno.test("a worker that never answers: 504 within the wall-clock budget, submitted once", async () => {
  let release = (_: Response) => {};
  const never = new Promise<Response>((resolve) => release = resolve);
  const rp = fakeRunPod(() => never);
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, EDGE_WALL_CLOCK_S: "2", EDGE_MARGIN_S: "0" });
    const started = Date.now();
    const res = await call(chatHandler(env), { message: "hello" }, await userToken("user-a"));
    assert.equal(res.status, 504);
    assert.equal(res.body.error_code, "worker_timeout");
    assert.ok(Date.now() - started < 4000, "the function must answer inside its budget");
    assert.equal(rp.seen.length, 1, "a job that may have been accepted is never resubmitted");
  } finally {
    release(new Response("too late")); // lets the stand-in server shut down
    await rp.close();
  }
});

/** A one-second wall clock, polled every 100 ms: a cold start outlives it. */
function shortBudget(url: string) {
  return makeEnv({
    RUNPOD_ENDPOINT_URL: url,
    EDGE_WALL_CLOCK_S: "1",
    EDGE_MARGIN_S: "0",
    RUNPOD_POLL_INTERVAL_MS: "100",
  });
}

Deno.test("a cold start outliving the budget: 202 with the job id, then the status route answers", async () => {
  let finished = false;
  const rp = fakeRunPod((req) => {
    if (req.path === "/run") return answer({ id: "job-7", status: "IN_QUEUE" });
    return finished
      ? done({ success: true, response: "late" })
      : answer({ id: "job-7", status: "IN_PROGRESS" });
  });
  try {
    const env = shortBudget(rp.url);
    const token = await userToken("user-a");
    const res = await call(chatHandler(env), { message: "hello" }, token);
    assert.equal(res.status, 202);
    assert.equal(res.body.job_id, "job-7");
    const statusUrl = String(res.body.status_url);
    assert.match(statusUrl, /^\/functions\/v1\/chat\?job_id=job-7&sig=[A-Za-z0-9_-]{43}$/);
    assert.equal(res.headers.get("location"), statusUrl);
    assert.equal(rp.seen.filter((r) => r.path === "/run").length, 1);
    assert.ok(rp.seen.some((r) => r.method === "GET" && r.path === "/status/job-7"));
    finished = true;
    const poll = await get(chatHandler(env), statusUrl, token);
    assert.equal(poll.status, 200);
    assert.equal((await poll.json()).response, "late");
  } finally {
    await rp.close();
  }
});

Deno.test("a status link reads only its own user's job: anyone else, or no link, gets 404", async () => {
  let finished = false;
  const rp = fakeRunPod((req) =>
    finished && req.path.startsWith("/status/")
      ? answer({ id: "job-8", status: "COMPLETED", output: { success: true, response: "private" } })
      : answer({ id: "job-8", status: "IN_QUEUE" })
  );
  try {
    const env = shortBudget(rp.url);
    const owner = await userToken("user-a");
    const other = await userToken("user-b");
    const started = await call(chatHandler(env), { message: "hello" }, owner);
    assert.equal(started.status, 202);
    const statusUrl = String(started.body.status_url);
    assert.ok(statusUrl.startsWith("/functions/v1/chat?job_id=job-8&sig="), statusUrl);
    finished = true;
    const reads = () => rp.seen.filter((r) => r.path.startsWith("/status/")).length;
    const before = reads();
    for (
      const [url, token] of [
        [statusUrl, other], // another user's token with the owner's link
        ["/functions/v1/chat?job_id=job-8", owner], // the job id alone
        [statusUrl.replace(/sig=./, (m) => m.endsWith("A") ? "sig=B" : "sig=A"), owner], // an altered link
        [statusUrl.replace("job-8", "job-9"), owner], // the link moved to another job
        [statusUrl.replace("/chat?", "/enhance-prompt?"), owner], // the link used on another function
      ]
    ) {
      const handler = url.includes("/enhance-prompt?") ? enhanceHandler(env) : chatHandler(env);
      const res = await get(handler, url, token);
      assert.equal(res.status, 404, url);
      const body = await res.json();
      assert.equal(body.error_code, "not_found");
      assert.ok(!JSON.stringify(body).includes("private"));
    }
    assert.equal(reads(), before, "a link that is not the caller's never reaches RunPod");
    const mine = await get(chatHandler(env), statusUrl, owner);
    assert.equal(mine.status, 200);
    assert.equal((await mine.json()).response, "private");
  } finally {
    await rp.close();
  }
});

Deno.test("a 500 on submit is not retried (the job may exist) and answers 502", async () => {
  const rp = fakeRunPod(() => answer({ error: "boom" }, 500));
  try {
    const res = await call(
      chatHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url })),
      { message: "x" },
      await userToken("u"),
    );
    assert.equal(res.status, 502);
    assert.equal(res.body.error_code, "upstream_error");
    assert.equal(rp.seen.length, 1);
  } finally {
    await rp.close();
  }
});

Deno.test("worker codes map to HTTP; server-side failures carry no worker internals", async () => {
  const cases: Array<[string, number, string | undefined]> = [
    ["invalid_input: 'max_tokens' must be an integer (field: max_tokens)", 400, "max_tokens"],
    ["unauthorized: admin_token is wrong (field: admin_token)", 401, "admin_token"],
    ["adult_content_disabled: adult content is not enabled on this worker", 403, undefined],
    ["content_policy_violation: this request cannot be served", 422, undefined],
    ["overloaded: 64 generations are waiting", 503, undefined],
    ["engine_out_of_memory: CUDA out of memory in /app/shared/engine/batching.py", 502, undefined],
    ["internal_error: the worker hit an unexpected error; it is still serving", 502, undefined],
  ];
  for (const [error, status, field] of cases) {
    const rp = fakeRunPod(() => answer({ id: "job-1", status: "FAILED", error }));
    try {
      const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, OVERLOADED_RETRY_AFTER_S: "7" });
      const res = await call(chatHandler(env), { message: "x" }, await userToken("u"));
      assert.equal(res.status, status, error);
      assert.equal(res.body.error_code, parseWorkerError(error).code);
      assert.equal(res.body.field, field);
      if (status >= 500) {
        assert.ok(!String(res.body.error).includes("CUDA") && !String(res.body.error).includes("/app"));
      }
      assert.equal(res.headers.get("retry-after"), status === 503 ? "7" : null);
    } finally {
      await rp.close();
    }
  }
});

Deno.test("no token, a forged token or an anon token: 401 before any RunPod call", async () => {
  const rp = fakeRunPod(() => done({ success: true }));
  try {
    const handler = chatHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url }));
    assert.equal((await call(handler, { message: "x" })).status, 401);
    assert.equal(
      (await call(handler, { message: "x" }, await userToken("u", { signer: AUTH.other }))).status,
      401,
    );
    assert.equal((await call(handler, { message: "x" }, await anonToken())).status, 401);
    assert.equal(rp.seen.length, 0);
  } finally {
    await rp.close();
  }
});

Deno.test("the warm-up needs its secret and sends a normal-priority warmup job", async () => {
  const rp = fakeRunPod(() => done({ success: true, warm: true, model_loaded: true }));
  try {
    const handler = warmupHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url }));
    assert.equal((await call(handler, {}, "wrong-secret")).status, 401);
    const res = await call(handler, {}, WARMUP_SECRET);
    assert.equal(res.status, 200);
    assert.deepEqual(rp.seen[0].body, { input: { action: "warmup" }, policy: { lowPriority: false } });
  } finally {
    await rp.close();
  }
});

Deno.test("an unreachable worker: chat answers 503 worker_unavailable with Retry-After", async () => {
  const env = makeEnv({ RUNPOD_ENDPOINT_URL: closedUrl(), RUNPOD_MAX_ATTEMPTS: "2" });
  const chat = await call(chatHandler(env), { message: "x" }, await userToken("u"));
  assert.equal(chat.status, 503);
  assert.equal(chat.body.error_code, "worker_unavailable");
  assert.equal(chat.headers.get("retry-after"), "5");
});

Deno.test("stream: true relays /stream items as server-sent events, the last one as `done`", async () => {
  const chunks = [
    { status: "IN_PROGRESS", stream: [{ output: { delta: "Hel" } }] },
    {
      status: "COMPLETED",
      stream: [{ output: { delta: "lo" } }, { output: { success: true, response: "Hello" } }],
    },
  ];
  const rp = fakeRunPod((req, seen) => {
    if (req.path === "/run") return answer({ id: "job-s", status: "IN_QUEUE" });
    const polls = seen.filter((r) => r.path === "/stream/job-s").length;
    return answer({ id: "job-s", ...chunks[Math.min(polls, chunks.length) - 1] });
  });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, RUNPOD_POLL_INTERVAL_MS: "10" });
    const res = await chatHandler(env)(
      new Request("http://localhost/functions/v1/chat", {
        method: "POST",
        headers: { authorization: `Bearer ${await userToken("user-s")}`, "content-type": "application/json" },
        body: JSON.stringify({ message: "hi", stream: true }),
      }),
    );
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = (await res.text()).trim().split("\n\n").map((block) => {
      const [event, data] = block.split("\n");
      return [event.replace("event: ", ""), JSON.parse(data.replace("data: ", ""))];
    });
    assert.deepEqual(events, [
      ["delta", { delta: "Hel" }],
      ["delta", { delta: "lo" }],
      ["done", { success: true, response: "Hello" }],
    ]);
    const submitted = rp.seen[0].body as { input: Record<string, unknown> };
    assert.equal(submitted.input.stream, true);
    assert.equal(submitted.input.user_id, "user-s");
  } finally {
    await rp.close();
  }
});
