/** Response helpers shared by the functions: JSON bodies and CORS for the platform's browser app. */

export function corsHeaders(): Record<string, string> {
  return {
    "access-control-allow-origin": Deno.env.get("ALLOWED_ORIGIN") ?? "*",
    "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
    "access-control-allow-methods": "GET, POST, OPTIONS",
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders(), "content-type": "application/json", ...headers },
  });
}

export function preflight(): Response {
  return new Response(null, { status: 204, headers: corsHeaders() });
}

/** The request body as an object, or null when it is not a JSON object. */
export async function readObject(req: Request): Promise<Record<string, unknown> | null> {
  try {
    const body = await req.json();
    return body && typeof body === "object" && !Array.isArray(body) ? body as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** Only the named fields of a caller's body travel to the worker. */
export function pick(body: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    fields.filter((name) => body[name] !== undefined).map((name) => [name, body[name]]),
  );
}
