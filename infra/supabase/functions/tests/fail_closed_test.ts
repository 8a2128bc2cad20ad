/**
 * Fail closed (docs/CONTENT_POLICY.md): enhance-prompt answers success: true only with a prompt the
 * worker checked and returned as a success. A worker that is down, slower than the budget, failing
 * inside the policy (internal_error), overloaded, or answering something that is not a success never
 * gets the caller's raw prompt back as an enhancement.
 */
import assert from "node:assert/strict";
import { enhanceHandler } from "../enhance-prompt/handler.ts";
import { answer, API_KEY, call, closedUrl, fakeRunPod, get, makeEnv, userToken } from "./helpers.ts";
import { FakeClock, runpodQueue } from "./runpod_standin.ts";

const PROMPT = "an unchecked prompt that must not come back 4f1c";

/** Nothing in the answer is a prompt the caller could send on to image generation. */
function assertNoPrompt(
  res: { status: number; body: Record<string, unknown>; headers: Headers },
  why: string,
) {
  assert.notEqual(res.body.success, true, why);
  assert.equal(res.body.prompt_checked, false, why);
  assert.ok(!("enhanced_prompt" in res.body), why);
  assert.ok(!JSON.stringify(res.body).includes(PROMPT), why);
  assert.equal(res.body.enhancement_source, undefined, why);
}

Deno.test("worker down: 503 worker_unavailable with Retry-After, no prompt; the API key is never logged", async () => {
  const logged: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args.join(" "));
  try {
    const env = makeEnv({
      RUNPOD_ENDPOINT_URL: closedUrl(),
      RUNPOD_MAX_ATTEMPTS: "2",
      OVERLOADED_RETRY_AFTER_S: "9",
    });
    const res = await call(enhanceHandler(env), { prompt: PROMPT }, await userToken("u"));
    assert.equal(res.status, 503);
    assert.equal(res.body.error_code, "worker_unavailable");
    assert.equal(res.headers.get("retry-after"), "9");
    assertNoPrompt(res, "worker down");
  } finally {
    console.error = original;
  }
  assert.ok(logged.every((line) => !line.includes(API_KEY)));
});

Deno.test("worker failing, overloaded, or answering no checked prompt: 503 with the code, no prompt", async () => {
  const cases: Array<[string, Response, string]> = [
    [
      "internal_error from inside the policy (a failed job)",
      answer({ id: "j", status: "FAILED", error: "internal_error: the worker hit an unexpected error" }),
      "internal_error",
    ],
    [
      "internal_error in the worker's output",
      answer({
        id: "j",
        status: "COMPLETED",
        output: {
          success: false,
          error_code: "internal_error",
          error: "internal_error: policy check failed",
        },
      }),
      "internal_error",
    ],
    ["overloaded", answer({ id: "j", status: "FAILED", error: "overloaded: 64 waiting" }), "overloaded"],
    [
      "engine_timeout",
      answer({ id: "j", status: "FAILED", error: "engine_timeout: too slow" }),
      "engine_timeout",
    ],
    ["RunPod's job timeout", answer({ id: "j", status: "TIMED_OUT" }), "worker_timeout"],
    ["a cancelled job", answer({ id: "j", status: "CANCELLED" }), "upstream_error"],
    [
      "a success without an enhanced prompt",
      answer({ id: "j", status: "COMPLETED", output: { success: true, original_prompt: PROMPT } }),
      "upstream_error",
    ],
    [
      "an output that is not a success",
      answer({ id: "j", status: "COMPLETED", output: { enhanced_prompt: PROMPT } }),
      "upstream_error",
    ],
    ["a 500 from RunPod", answer({ error: "boom" }, 500), "upstream_error"],
  ];
  for (const [why, response, code] of cases) {
    const rp = fakeRunPod(() => response.clone());
    try {
      const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, OVERLOADED_RETRY_AFTER_S: "7" });
      const res = await call(enhanceHandler(env), { prompt: PROMPT }, await userToken("u"));
      assertNoPrompt(res, why);
      assert.equal(res.body.error_code, code, why);
      assert.equal(res.status, 503, why);
      assert.equal(res.headers.get("retry-after"), "7", why);
    } finally {
      await rp.close();
    }
  }
});

Deno.test("worker slower than the budget: 202 with the status link, no prompt; the link answers the checked prompt", async () => {
  const clock = new FakeClock();
  const checked = {
    success: true,
    enhanced_prompt: "a checked, enhanced prompt",
    enhancement_source: "worker_fallback",
  };
  const rp = runpodQueue(clock, { durationMs: 200_000, output: () => checked });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, EDGE_WALL_CLOCK_S: "400" });
    const token = await userToken("u");
    const res = await call(enhanceHandler(env, fetch, clock), { prompt: PROMPT }, token);
    assert.equal(res.status, 202);
    assertNoPrompt(res, "slow");
    assert.equal(res.body.error_code, "enhancement_pending");
    const link = String(res.body.status_url);
    assert.match(link, /^\/functions\/v1\/enhance-prompt\?job_id=job-1&sig=/);
    // still running: 202 again, still no prompt
    const early = await get(enhanceHandler(env, fetch, clock), link, token);
    assert.equal(early.status, 202);
    assert.ok(!("enhanced_prompt" in await early.json()));
    clock.advance(120_000);
    const late = await get(enhanceHandler(env, fetch, clock), link, token);
    assert.equal(late.status, 200);
    assert.deepEqual(await late.json(), checked);
  } finally {
    await rp.close();
  }
});

Deno.test("the status link applies the same rule: a finished job without a checked prompt is 503", async () => {
  const clock = new FakeClock();
  const rp = runpodQueue(clock, { durationMs: 200_000, output: () => ({ success: true }) });
  try {
    const env = makeEnv({ RUNPOD_ENDPOINT_URL: rp.url });
    const token = await userToken("u");
    const res = await call(enhanceHandler(env, fetch, clock), { prompt: PROMPT }, token);
    assert.equal(res.status, 202);
    clock.advance(120_000);
    const late = await get(enhanceHandler(env, fetch, clock), String(res.body.status_url), token);
    assert.equal(late.status, 503);
    const body = await late.json();
    assert.equal(body.prompt_checked, false);
    assert.ok(!("enhanced_prompt" in body));
  } finally {
    await rp.close();
  }
});
