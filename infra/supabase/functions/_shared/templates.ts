/**
 * The platform's enhancement templates: the newest active `prompt_templates` row for a job type.
 * Columns read: job_type, system_prompt, is_active, updated_at (the platform's table; change the
 * query here if its columns differ). A failed read is logged and the worker's own prompt is used.
 */
import { createClient } from "@supabase/supabase-js";
import type { Env } from "./config.ts";

export async function readTemplate(env: Env, jobType: string): Promise<string | null> {
  const url = env.get("SUPABASE_URL");
  const key = env.get("SUPABASE_SERVICE_ROLE_KEY");
  if (!url || !key) return null;
  const supabase = createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false } });
  const { data, error } = await supabase
    .from("prompt_templates")
    .select("system_prompt")
    .eq("job_type", jobType)
    .eq("is_active", true)
    .order("updated_at", { ascending: false })
    .limit(1);
  if (error) {
    console.error(`prompt_templates read failed: ${error.code ?? ""} ${error.message}`);
    return null;
  }
  const text = data?.[0]?.system_prompt;
  return typeof text === "string" && text.trim() ? text : null;
}
