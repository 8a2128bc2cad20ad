/**
 * The platform user's Supabase access token, verified as Supabase Auth issues it today: signed with
 * the project's asymmetric key (ES256 or RS256) published at ${SUPABASE_URL}/auth/v1/.well-known/jwks.json,
 * or, only on a project that still has one configured (JWT_SECRET), with the legacy HS256 secret.
 * Every token must carry exp (unexpired), iss = ${SUPABASE_URL}/auth/v1, aud = authenticated and a sub.
 * alg: none, and any algorithm the project's keys do not allow, are refused (jose checks the key's
 * type and declared alg against the header).
 */
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from "jose";
import { ConfigError, type Env } from "./config.ts";

export class AuthError extends Error {}

/** The project's JWKS could not be read: nobody can be verified now, which is not the user's fault. */
export class AuthUnavailable extends Error {}

/** jose's codes for a key set it could not fetch or parse (a bad token's errors are others). */
const JWKS_UNAVAILABLE = new Set(["ERR_JWKS_TIMEOUT", "ERR_JWKS_INVALID", "ERR_JOSE_GENERIC"]);

/** What Supabase Auth signs user tokens with on projects with signing keys. */
const JWKS_ALGORITHMS = ["ES256", "RS256"];

/** One key set per project URL for the isolate's life: jose caches it and refetches on an unknown kid. */
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(jwksUrl: string): ReturnType<typeof createRemoteJWKSet> {
  let set = keySets.get(jwksUrl);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
    keySets.set(jwksUrl, set);
  }
  return set;
}

export interface AuthConfig {
  /** ${SUPABASE_URL}/auth/v1: the tokens' required issuer. */
  issuer: string;
  jwksUrl: string;
  /** The legacy JWT secret (HS256), only where the project still uses it; otherwise HS256 is refused. */
  legacySecret?: Uint8Array;
}

/** SUPABASE_URL (Supabase injects it into every function) and the optional legacy JWT_SECRET. */
export function authConfig(env: Env): AuthConfig {
  const base = (env.get("SUPABASE_URL") ?? "").replace(/\/+$/, "");
  if (!/^https?:\/\/./.test(base)) throw new ConfigError("SUPABASE_URL is not set");
  const legacy = env.get("JWT_SECRET") ?? "";
  if (legacy && legacy.length < 32) throw new ConfigError("JWT_SECRET is shorter than 32 characters");
  return {
    issuer: `${base}/auth/v1`,
    jwksUrl: `${base}/auth/v1/.well-known/jwks.json`,
    legacySecret: legacy ? new TextEncoder().encode(legacy) : undefined,
  };
}

/** The user id (the token's `sub`) of a valid, unexpired user token from the Authorization header. */
export async function verifyUser(req: Request, cfg: AuthConfig): Promise<string> {
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!token) throw new AuthError("a user token is required (Authorization: Bearer <access token>)");
  let payload: JWTPayload;
  let viaJwks = false;
  try {
    const options = {
      issuer: cfg.issuer,
      audience: "authenticated", // signed-in users; the anon key's token has no user
      requiredClaims: ["exp", "sub"],
    };
    const alg = decodeProtectedHeader(token).alg;
    if (alg === "HS256" && cfg.legacySecret) {
      ({ payload } = await jwtVerify(token, cfg.legacySecret, { ...options, algorithms: ["HS256"] }));
    } else {
      viaJwks = true;
      ({ payload } = await jwtVerify(token, keySet(cfg.jwksUrl), {
        ...options,
        algorithms: JWKS_ALGORITHMS,
      }));
    }
  } catch (err) {
    // the JWKS endpoint itself failing (unreachable, not 200, not a key set) is 503, not 401
    const code = (err as { code?: string })?.code;
    if (viaJwks && (err instanceof TypeError || (code && JWKS_UNAVAILABLE.has(code)))) {
      console.error(`JWKS unavailable: ${code ?? "fetch failed"}`);
      throw new AuthUnavailable("the project's signing keys cannot be read right now");
    }
    throw new AuthError("the user token is invalid or expired");
  }
  const sub = payload.sub;
  if (typeof sub !== "string" || !sub) throw new AuthError("the user token names no user");
  return sub;
}
