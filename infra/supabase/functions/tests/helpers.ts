/** Test helpers: env maps, signed user tokens, requests to a handler, and local stand-in servers. */
import { SignJWT } from "jose";
import type { Env } from "../_shared/config.ts";

export const JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789";
export const API_KEY = "rp-test-key-never-logged-7f3a";
export const WARMUP_SECRET = "warmup-secret-for-tests-42";

export function makeEnv(overrides: Record<string, string> = {}): Env {
  const values = new Map(Object.entries({
    RUNPOD_API_KEY: API_KEY,
    JWT_SECRET,
    WARMUP_SECRET,
    RUNPOD_BACKOFF_MS: "20",
    ...overrides,
  }));
  return { get: (name) => values.get(name) };
}

export function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(`${name} is not set: run these tests through pytest (tests/deploy), as make test does`);
  }
  return value;
}

export function userToken(sub: string, secret = JWT_SECRET): Promise<string> {
  return new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setAudience("authenticated")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
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
export function anonToken(secret = JWT_SECRET): Promise<string> {
  return new SignJWT({ role: "anon" }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime(
    "1h",
  )
    .sign(new TextEncoder().encode(secret));
}
