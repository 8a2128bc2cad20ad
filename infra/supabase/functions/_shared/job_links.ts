/**
 * Status links bound to the user who started the job. A job id alone must read nothing: the 202
 * answer's status URL carries `sig`, an HMAC-SHA-256 of the function, the job id and the user id
 * (key: JOB_STATUS_SECRET, required: no other secret stands in for it; a fixed label keeps the
 * message apart from anything else signed).
 * The GET recomputes it for the caller's verified user id with crypto.subtle.verify (constant
 * time); a missing, altered or other user's link is 404, the same as a job that does not exist.
 */
import { ConfigError, type Env } from "./config.ts";
import { json } from "./http.ts";

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export function statusSecret(env: Env): string {
  const own = env.get("JOB_STATUS_SECRET") ?? "";
  if (own.length < 32) throw new ConfigError("JOB_STATUS_SECRET is not set (or shorter than 32 characters)");
  return own;
}

export class JobLinks {
  private constructor(
    private readonly key: CryptoKey,
    private readonly fn: string,
    private readonly userId: string,
  ) {}

  static async of(env: Env, fn: string, userId: string): Promise<JobLinks> {
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(statusSecret(env)),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return new JobLinks(key, fn, userId);
  }

  private message(id: string): Uint8Array<ArrayBuffer> {
    return encoder.encode(`chat-worker job status\n${this.fn}\n${id}\n${this.userId}`);
  }

  /** GET /functions/v1/<fn>?job_id=...&sig=...: where this user polls this job. */
  url = async (id: string): Promise<string> => {
    const sig = new Uint8Array(await crypto.subtle.sign("HMAC", this.key, this.message(id)));
    return `/functions/v1/${this.fn}?job_id=${encodeURIComponent(id)}&sig=${base64url(sig)}`;
  };

  /** Whether `sig` is this user's link to job `id`. */
  async owns(id: string, sig: string | null): Promise<boolean> {
    const given = sig ? fromBase64url(sig) : null;
    return given !== null && await crypto.subtle.verify("HMAC", this.key, given, this.message(id));
  }
}

/** The answer to any status link that is not the caller's: indistinguishable from an unknown job. */
export function unknownJob(): Response {
  return json(404, { success: false, error_code: "not_found", error: "no such job for this user" });
}
