"""The warm-up migration on a real PostgreSQL with pg_cron: the scheduled command runs and posts."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.deploy.conftest import MIGRATION, WARMUP_SECRET, WARMUP_URL, PlatformDb

pytestmark = pytest.mark.e2e


def test_migration_applies_and_schedules_the_warmup(platform_db: PlatformDb) -> None:
    assert platform_db.migration.returncode == 0, platform_db.migration.stderr
    with psycopg.connect(platform_db.pg.dsn) as conn:
        jobs = conn.execute("select command from cron.job where jobname = 'chat-worker-warmup'").fetchall()
    assert jobs == [("select chat_worker.warmup()",)]


def test_migration_can_be_applied_again(platform_db: PlatformDb) -> None:
    again = platform_db.pg.psql_file(MIGRATION)
    assert again.returncode == 0, again.stderr
    with psycopg.connect(platform_db.pg.dsn) as conn:
        count = conn.execute("select count(*) from cron.job where jobname = 'chat-worker-warmup'").fetchone()
        conn.execute(
            "select cron.alter_job(jobid, schedule := '* * * * *') from cron.job where jobname = 'chat-worker-warmup'"
        )  # re-applying restored the 5-minute schedule
    assert count == (1,)


def test_scheduled_command_ran_and_posted_the_warmup_with_the_vault_secret(platform_db: PlatformDb) -> None:
    """pg_cron 1.4 (Debian's) schedules by the minute: wait for the next run, at most ~70 s."""
    deadline = time.time() + 75
    with psycopg.connect(platform_db.pg.dsn, autocommit=True) as conn:
        calls: list[tuple[object, ...]] = []
        while time.time() < deadline and not calls:
            calls = conn.execute("select url, body, headers, called_by from net.standin_calls").fetchall()
            time.sleep(1)
        runs = conn.execute(
            "select d.status from cron.job_run_details d join cron.job j using (jobid)"
            " where j.jobname = 'chat-worker-warmup'"
        ).fetchall()
    assert calls, "the scheduled warm-up did not run within 75 s"
    url, body, headers, called_by = calls[0]
    assert url == WARMUP_URL
    assert body == {"action": "warmup"}
    assert headers["authorization"] == f"Bearer {WARMUP_SECRET}"
    assert called_by == "postgres"
    assert ("succeeded",) in runs


def test_only_the_scheduler_may_run_the_warmup(platform_db: PlatformDb) -> None:
    """Like Supabase's API roles, a role other than the owner cannot trigger warm-ups (or read the secret)."""
    with psycopg.connect(platform_db.pg.dsn, autocommit=True) as conn:
        conn.execute("drop role if exists api_caller")
        conn.execute("create role api_caller nologin")
        conn.execute("set role api_caller")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select chat_worker.warmup()")
