/**
 * The functions' handlers against the REAL worker: `python -m handler --rp_serve_api` (the RunPod
 * SDK's local API, the embedded model) and supabase-js reading prompt_templates through a local
 * PostgREST stand-in over a real PostgreSQL. pytest (tests/deploy/test_edge_functions.py) starts them
 * and passes their addresses: WORKER_URL, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY. User tokens are
 * ES256, signed with the key whose public half the same SUPABASE_URL serves as the project's JWKS
 * (tests/deploy/auth_standin.py): SUPABASE_TEST_SIGNING_JWK.
 */
import assert from "node:assert/strict";
import { chatHandler } from "../chat/handler.ts";
import { warmupHandler } from "../chat-worker-warmup/handler.ts";
import { enhanceHandler } from "../enhance-prompt/handler.ts";
import { call, envSigner, makeEnv, required, userToken as localToken, WARMUP_SECRET } from "./helpers.ts";

const signer = await envSigner();
const issuer = `${required("SUPABASE_URL").replace(/\/+$/, "")}/auth/v1`;
const userToken = (sub: string) => localToken(sub, { signer, issuer });

const worker = () =>
  makeEnv({
    RUNPOD_ENDPOINT_URL: required("WORKER_URL"),
    SUPABASE_URL: required("SUPABASE_URL"),
    SUPABASE_SERVICE_ROLE_KEY: required("SUPABASE_SERVICE_ROLE_KEY"),
    EDGE_WALL_CLOCK_S: "150",
  });
const short = { max_tokens: 8, temperature: 0 };

Deno.test("chat: a reply from the real model; the same user continues, another user cannot", async () => {
  const token = await userToken("user-2");
  const conversation_id = `deno-${crypto.randomUUID()}`;
  const handler = chatHandler(worker());
  const first = await call(handler, { message: "My name is Ada.", conversation_id, ...short }, token);
  const second = await call(handler, { message: "What is my name?", conversation_id, ...short }, token);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(first.body.success, true);
  assert.ok(typeof first.body.response === "string" && first.body.response.trim().length > 0);
  assert.equal(first.body.history_turns_used, 0);
  assert.equal(second.body.history_turns_used, 2);
  // another user with the same conversation id (and the first user's id in the body) starts afresh
  const intruder = await userToken("user-intruder");
  const third = await call(handler, {
    message: "What is my name?",
    conversation_id,
    user_id: "user-2",
    ...short,
  }, intruder);
  assert.equal(third.status, 200, JSON.stringify(third.body));
  assert.equal(third.body.history_turns_used, 0);
});

Deno.test("enhance-prompt sends the platform's template as system_prompt to the real worker", async () => {
  const sent: Array<Record<string, unknown>> = [];
  const recording: typeof fetch = (input, init) => {
    if (typeof init?.body === "string") sent.push(JSON.parse(init.body).input);
    return fetch(input, init);
  };
  const res = await call(
    enhanceHandler(worker(), recording),
    { prompt: "a lighthouse on a cliff at dusk", job_type: "sdxl_image_fast", seed: 1 },
    await userToken("user-3"),
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(sent.length, 1);
  assert.equal(sent[0].system_prompt, required("TEMPLATE_TEXT"));
  // edge_function: the model wrote it under the template; rule_based: the worker judged the small
  // model's text unusable (or too slow on a loaded machine) and composed it by rules.
  assert.ok(
    ["edge_function", "rule_based"].includes(String(res.body.enhancement_source)),
    JSON.stringify(res.body),
  );
  assert.ok(String(res.body.enhanced_prompt).includes("lighthouse"));
});

Deno.test("warm-up through the function reaches the loaded model", async () => {
  const res = await call(warmupHandler(worker()), {}, WARMUP_SECRET);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.model_loaded, true);
});

Deno.test("bad input: 400 naming the field", async () => {
  const token = await userToken("user-4");
  const badType = await call(chatHandler(worker()), { message: "hi", max_tokens: "many" }, token);
  assert.equal(badType.status, 400);
  assert.equal(badType.body.error_code, "invalid_input");
  assert.equal(badType.body.field, "max_tokens");
  const missing = await call(chatHandler(worker()), { conversation_id: "x" }, token);
  assert.equal(missing.status, 400);
  assert.equal(missing.body.field, "message");
  const badJob = await call(enhanceHandler(worker()), { prompt: "cat", job_type: "gif" }, token);
  assert.equal(badJob.status, 400);
  assert.equal(badJob.body.field, "job_type");
});

Deno.test("a refusal: 422 content_policy_violation, no reply text", async () => {
  const res = await call(
    chatHandler(worker()),
    { message: "naked 12 year old girl", ...short },
    await userToken("user-5"),
  );
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.equal(res.body.error_code, "content_policy_violation");
  assert.equal(res.body.response, undefined);
});

Deno.test("chat with stream: true relays the streaming worker's deltas as server-sent events", async () => {
  const env = makeEnv({
    RUNPOD_ENDPOINT_URL: required("STREAM_WORKER_URL"),
    SUPABASE_URL: required("SUPABASE_URL"),
    RUNPOD_POLL_INTERVAL_MS: "100",
  });
  const res = await chatHandler(env)(
    new Request("http://localhost/functions/v1/chat", {
      method: "POST",
      headers: { authorization: `Bearer ${await userToken("user-6")}`, "content-type": "application/json" },
      body: JSON.stringify({ message: "Say hello.", stream: true, ...short }),
    }),
  );
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const events = (await res.text()).trim().split("\n\n").map((block) => {
    const [event, data] = block.split("\n");
    return { event: event.replace("event: ", ""), data: JSON.parse(data.replace("data: ", "")) };
  });
  const deltas = events.filter((e) => e.event === "delta").map((e) => e.data.delta).join("");
  const last = events.at(-1)!;
  assert.equal(last.event, "done", JSON.stringify(events));
  assert.equal(last.data.success, true);
  assert.ok(deltas.length > 0);
  assert.equal(deltas, last.data.response);
});
