/**
 * User tokens as Supabase Auth signs them now: keys generated here, the project's JWKS served by a
 * local stand-in (helpers.ts), jose verifying through the chat function. A refused token is 401
 * before any RunPod call.
 */
import assert from "node:assert/strict";
import { exportJWK, importJWK, SignJWT, UnsecuredJWT } from "jose";
import { chatHandler } from "../chat/handler.ts";
import {
  answer,
  AUTH,
  call,
  closedUrl,
  fakeRunPod,
  legacy,
  LEGACY_SECRET,
  makeEnv,
  userToken,
} from "./helpers.ts";

/** A RunPod stand-in that echoes the submitted input in the job's output (so the sent user_id shows). */
function echoWorker() {
  let input: Record<string, unknown> = {};
  return fakeRunPod((req) => {
    if (req.path === "/run") {
      input = (req.body as { input: Record<string, unknown> }).input;
      return answer({ id: "job-a", status: "IN_QUEUE" });
    }
    return answer({ id: "job-a", status: "COMPLETED", output: { success: true, response: "ok", ...input } });
  });
}

async function status(token: string, env: Record<string, string> = {}): Promise<number> {
  const rp = echoWorker();
  try {
    const res = await call(
      chatHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, ...env })),
      { message: "x" },
      token,
    );
    if (res.status !== 200) assert.equal(rp.seen.length, 0, "a refused token never reaches RunPod");
    return res.status;
  } finally {
    await rp.close();
  }
}

Deno.test("ES256 and RS256 tokens from the project's JWKS are accepted; the user id is the token's sub", async () => {
  for (const signer of [AUTH.es, AUTH.rs]) {
    const rp = echoWorker();
    try {
      const res = await call(
        chatHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, RUNPOD_POLL_INTERVAL_MS: "10" })),
        { message: "x", user_id: "someone-else" },
        await userToken(`user-${signer.alg}`, { signer }),
      );
      assert.equal(res.status, 200, signer.alg);
      assert.equal(res.body.user_id, `user-${signer.alg}`);
    } finally {
      await rp.close();
    }
  }
  assert.ok(AUTH.fetches() >= 1, "the keys came from the local JWKS endpoint");
});

Deno.test("expired, exp-less, wrong-issuer and wrong-audience tokens are refused", async () => {
  assert.equal(await status(await userToken("u", { expiresIn: -120 })), 401, "expired");
  assert.equal(await status(await userToken("u", { expiresIn: null })), 401, "no exp");
  assert.equal(
    await status(await userToken("u", { issuer: "https://other.supabase.co/auth/v1" })),
    401,
    "issuer",
  );
  assert.equal(await status(await userToken("u", { audience: "anon" })), 401, "audience");
  assert.equal(await status(await userToken(null)), 401, "no sub");
});

Deno.test("HS256 is refused on a JWKS-only project, accepted only with the legacy secret configured", async () => {
  const hs = await userToken("u", { signer: legacy() });
  assert.equal(await status(hs), 401, "no legacy secret configured");
  assert.equal(await status(hs, { JWT_SECRET: LEGACY_SECRET, RUNPOD_POLL_INTERVAL_MS: "10" }), 200);
  // the legacy secret does not turn off the other checks, nor accept another secret
  const expired = await userToken("u", { signer: legacy(), expiresIn: -120 });
  assert.equal(await status(expired, { JWT_SECRET: LEGACY_SECRET }), 401);
  const forged = await userToken("u", { signer: legacy("another-secret-".repeat(4)) });
  assert.equal(await status(forged, { JWT_SECRET: LEGACY_SECRET }), 401);
  // ES256 keeps working on a project that still has a legacy secret
  assert.equal(
    await status(await userToken("u"), { JWT_SECRET: LEGACY_SECRET, RUNPOD_POLL_INTERVAL_MS: "10" }),
    200,
  );
});

Deno.test("a token signed by a key the project never published is refused", async () => {
  assert.equal(await status(await userToken("u", { signer: AUTH.other })), 401);
  assert.equal(await status(await userToken("u", { signer: { ...AUTH.other, kid: "unknown-kid" } })), 401);
});

Deno.test("alg: none, and an algorithm the key does not allow, are refused", async () => {
  const none = new UnsecuredJWT({ role: "authenticated" }).setSubject("u").setIssuer(AUTH.issuer)
    .setAudience("authenticated").setIssuedAt().setExpirationTime("1h").encode();
  assert.equal(await status(none), 401, "alg none");
  assert.equal(await status(none, { JWT_SECRET: LEGACY_SECRET }), 401, "alg none with a legacy secret");
  // the RSA key signs RS384 fine, but the JWKS declares it RS256 and the project allows ES256/RS256 only
  const rs384 = await new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "RS384", kid: AUTH.rs.kid })
    .setSubject("u").setIssuer(AUTH.issuer).setAudience("authenticated").setIssuedAt().setExpirationTime("1h")
    .sign(await importJWK({ ...await exportJWK(AUTH.rs.key), alg: "RS384" }, "RS384"));
  assert.equal(await status(rs384), 401, "RS384");
  // an RS256 header naming the EC key's kid: the key's type and alg do not match
  const mixed = await new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "RS256", kid: AUTH.es.kid })
    .setSubject("u").setIssuer(AUTH.issuer).setAudience("authenticated").setIssuedAt().setExpirationTime("1h")
    .sign(AUTH.rs.key);
  assert.equal(await status(mixed), 401, "RS256 under the EC key's kid");
});

Deno.test("without SUPABASE_URL or JOB_STATUS_SECRET the function is misconfigured (500), never open", async () => {
  const cases: Array<Record<string, string>> = [{ SUPABASE_URL: "" }, { JOB_STATUS_SECRET: "" }, {
    JOB_STATUS_SECRET: "short",
  }];
  for (const missing of cases) {
    const rp = echoWorker();
    try {
      const res = await call(chatHandler(makeEnv({ RUNPOD_ENDPOINT_URL: rp.url, ...missing })), {
        message: "x",
      }, await userToken("u"));
      assert.equal(res.status, 500, JSON.stringify(missing));
      assert.equal(res.body.error_code, "misconfigured");
      assert.equal(rp.seen.length, 0);
    } finally {
      await rp.close();
    }
  }
});

Deno.test("a JWKS endpoint that cannot be read is 503 auth_unavailable, never a pass", async () => {
  const down = closedUrl();
  const token = await userToken("u", { issuer: `${down}/auth/v1` });
  assert.equal(await status(token, { SUPABASE_URL: down }), 503);
  const notJwks = fakeRunPod(() => answer({ error: "oops" }, 500)); // answers, but not a key set
  try {
    const other = await userToken("u", { issuer: `${notJwks.url}/auth/v1` });
    assert.equal(await status(other, { SUPABASE_URL: notJwks.url }), 503);
  } finally {
    await notJwks.close();
  }
});
