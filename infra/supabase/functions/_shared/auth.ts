/** The platform user's Supabase JWT (HS256, signed with the project's JWT secret), verified with jose. */
import { jwtVerify } from "jose";

export class AuthError extends Error {}

/** The user id (the token's `sub`) of a valid, unexpired user token from the Authorization header. */
export async function verifyUser(req: Request, secret: string): Promise<string> {
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!token) throw new AuthError("a user token is required (Authorization: Bearer <access token>)");
  let sub: unknown;
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ["HS256"],
      audience: "authenticated", // signed-in users; the anon key's token has no user
    });
    sub = payload.sub;
  } catch {
    throw new AuthError("the user token is invalid or expired");
  }
  if (typeof sub !== "string" || !sub) throw new AuthError("the user token names no user");
  return sub;
}
