-- Scheduled warm-up of the chat worker (Supabase's documented way to call a function on a schedule):
-- pg_cron runs chat_worker.warmup() every 5 minutes; it POSTs to the chat-worker-warmup edge
-- function with pg_net, reading the function's URL and secret from Supabase Vault at run time.
-- The interval against RunPod's idle timeout and FlashBoot, and its cost: docs/DEPLOYMENT.md.
--
-- Before the first run, store the two secrets once (SQL editor; values never go in a migration):
--   select vault.create_secret('https://<project-ref>.supabase.co/functions/v1/chat-worker-warmup',
--                              'chat_worker_warmup_url');
--   select vault.create_secret('<the WARMUP_SECRET set on the function>', 'chat_worker_warmup_secret');

create extension if not exists pg_cron;

-- pg_net provides net.http_post; enable it unless it is already there (enabled from the dashboard).
do $$
begin
  if to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
    create extension if not exists pg_net;
  end if;
end
$$;

-- A schema of its own: Supabase's API (PostgREST) exposes `public`, where new functions are
-- executable by anon and authenticated; nobody but the scheduler should trigger warm-ups.
create schema if not exists chat_worker;
revoke all on schema chat_worker from public;

create or replace function chat_worker.warmup() returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  target text := (select decrypted_secret from vault.decrypted_secrets where name = 'chat_worker_warmup_url');
  secret text := (select decrypted_secret from vault.decrypted_secrets where name = 'chat_worker_warmup_secret');
begin
  if target is null or secret is null then
    raise exception 'chat_worker_warmup_url and chat_worker_warmup_secret must be stored in Vault';
  end if;
  -- pg_net queues the request and returns its id at once; the function waits up to 30 s on RunPod
  return net.http_post(
    url := target,
    body := jsonb_build_object('action', 'warmup'),
    headers := jsonb_build_object('content-type', 'application/json', 'authorization', 'Bearer ' || secret),
    timeout_milliseconds := 40000
  );
end
$$;

-- Only the scheduler (the owner) runs it: it reads secrets.
revoke all on function chat_worker.warmup() from public;

-- Same name again updates the existing job, so the migration can be re-applied.
select cron.schedule('chat-worker-warmup', '*/5 * * * *', 'select chat_worker.warmup()');
