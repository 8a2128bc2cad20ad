/** Test helpers: env maps, signed user tokens, requests to a handler, and local stand-in servers. */
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import type { Env } from "../_shared/config.ts";

export const API_KEY = "rp-test-key-never-logged-7f3a";
export const WARMUP_SECRET = "warmup-secret-for-tests-42";
export const JOB_STATUS_SECRET = "job-status-secret-for-tests-0123456789abcdef";
/** A legacy HS256 JWT secret, for the tests of projects that still have one. */
export const LEGACY_SECRET = "test-jwt-secret-that-is-long-enough-0123456789";

/** A key that signs tokens: an asymmetric private key (with its JWKS kid) or a legacy HS256 secret. */
export interface Signer {
  alg: string;
  key: CryptoKey | Uint8Array;
  kid?: string;
}

async function keyPair(alg: "ES256" | "RS256", kid: string): Promise<{ signer: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    signer: { alg, key: privateKey, kid },
    jwk: { ...await exportJWK(publicKey), kid, alg, use: "sig" },
  };
}

/**
 * Stand-in for Supabase Auth's JWKS endpoint (GET /auth/v1/.well-known/jwks.json), served locally
 * with an ES256 and an RS256 key generated here; SUPABASE_URL points at it. `other` signs with a key
 * the project never published.
 */
async function localAuth() {
  const es = await keyPair("ES256", "es-key-1");
  const rs = await keyPair("RS256", "rs-key-1");
  const other = await keyPair("ES256", "es-key-1"); // same kid, another key: a forgery
  let fetches = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname !== "/auth/v1/.well-known/jwks.json") {
      return new Response("", { status: 404 });
    }
    fetches++;
    return new Response(JSON.stringify({ keys: [es.jwk, rs.jwk] }), {
      headers: { "content-type": "application/json", connection: "close" },
    });
  });
  server.unref();
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    issuer: `${url}/auth/v1`,
    es: es.signer,
    rs: rs.signer,
    other: other.signer,
    fetches: () => fetches,
  };
}

export const AUTH = await localAuth();

export function makeEnv(overrides: Record<string, string> = {}): Env {
  const values = new Map(Object.entries({
    RUNPOD_API_KEY: API_KEY,
    SUPABASE_URL: AUTH.url,
    JOB_STATUS_SECRET,
    WARMUP_SECRET,
    RUNPOD_BACKOFF_MS: "20",
    ...overrides,
  }));
  return { get: (name) => values.get(name) };
}

export interface TokenOptions {
  signer?: Signer;
  issuer?: string;
  audience?: string | null;
  /** seconds from now; null: no exp claim */
  expiresIn?: number | null;
  role?: string;
}

/** A user's access token as Supabase Auth issues it (ES256 from the local JWKS stand-in by default). */
export function userToken(sub: string | null, opts: TokenOptions = {}): Promise<string> {
  const signer = opts.signer ?? AUTH.es;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ role: opts.role ?? "authenticated" })
    .setProtectedHeader(signer.kid ? { alg: signer.alg, kid: signer.kid, typ: "JWT" } : { alg: signer.alg })
    .setIssuer(opts.issuer ?? AUTH.issuer)
    .setIssuedAt(now);
  if (sub !== null) jwt.setSubject(sub);
  if (opts.audience !== null) jwt.setAudience(opts.audience ?? "authenticated");
  if (opts.expiresIn !== null) jwt.setExpirationTime(now + (opts.expiresIn ?? 3600));
  return jwt.sign(signer.key);
}

/** A legacy HS256 signer with `secret`. */
export const legacy = (secret = LEGACY_SECRET): Signer => ({
  alg: "HS256",
  key: new TextEncoder().encode(secret),
});

/** The signer whose public key pytest's Supabase stand-in serves (SUPABASE_TEST_SIGNING_JWK, a private JWK). */
export async function envSigner(): Promise<Signer> {
  const jwk = JSON.parse(required("SUPABASE_TEST_SIGNING_JWK")) as JWK;
  return { alg: jwk.alg ?? "ES256", kid: jwk.kid, key: await importJWK(jwk, jwk.alg) as CryptoKey };
}

export function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(`${name} is not set: run these tests through pytest (tests/deploy), as make test does`);
  }
  return value;
}

export async function call(
  handler: (req: Request) => Promise<Response>,
  body: unknown,
  token?: string,
  url = "http://localhost/functions/v1/fn",
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await handler(new Request(url, { method: "POST", headers, body: JSON.stringify(body) }));
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** A GET of a path (such as a status_url) with a user token. */
export function get(handler: (req: Request) => Promise<Response>, path: string, token: string) {
  return handler(new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } }));
}

export interface Recorded {
  method: string;
  path: string;
  headers: Headers;
  body: unknown;
}

/** A local HTTP server standing in for RunPod's API, answering with `route` and recording requests. */
export function fakeRunPod(route: (req: Recorded, seen: Recorded[]) => Response | Promise<Response>) {
  const seen: Recorded[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const text = await req.text();
    const recorded = {
      method: req.method,
      path: new URL(req.url).pathname + new URL(req.url).search,
      headers: req.headers,
      body: text ? JSON.parse(text) : null,
    };
    seen.push(recorded);
    return await route(recorded, seen);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

export const answer = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

/** A URL on which nothing listens (a port just released), so connections are refused. */
export function closedUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `http://127.0.0.1:${port}`;
}

/** What the anon key is: validly signed, but no user (role anon, no audience, no subject). */
export function anonToken(): Promise<string> {
  return userToken(null, { role: "anon", audience: null });
}
