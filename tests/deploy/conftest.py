"""Fixtures for the deployment tests: the image-equivalent venv, the dev side's converted model, the real
worker, and the platform's database side (private PostgreSQL with pg_cron, stand-ins named as such)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from shared.engine.model_source import converted_dir, resolve
from shared.settings import load_settings
from tests.deploy.image import CACHE, build_image_venv
from tests.deploy.postgres import STANDINS_SQL, PrivatePostgres
from tests.deploy.postgrest_standin import PostgrestStandIn
from tests.e2e.conftest import ROOT, worker_env


@pytest.fixture(scope="session")
def converted_model() -> Path:
    """The embedded GGUF as converted by the dev side (safetensors + tokenizer), for MODEL_PATH."""
    target = converted_dir(resolve(None), load_settings().model_cache_dir)
    if not (target / "config.json").is_file():  # the dev entry converts and caches it on first start
        warmup = [sys.executable, "-m", "handler", "--test_input", '{"input": {"action": "health"}}']
        subprocess.run(warmup, cwd=ROOT, env=worker_env(), check=True, capture_output=True, timeout=300)
    assert (target / "config.json").is_file() and list(target.glob("*.safetensors"))
    return target


@pytest.fixture(scope="session")
def image_python() -> Iterator[Path]:
    CACHE.mkdir(exist_ok=True)
    venv = Path(tempfile.mkdtemp(prefix="image-venv-", dir=CACHE))  # same disk as uv's cache: hardlinks
    yield build_image_venv(venv)
    shutil.rmtree(venv, ignore_errors=True)


# The real worker (the RunPod SDK's local API on the embedded model), shared with tests/e2e.
from tests.e2e.conftest import api, start_api  # noqa: E402, F401

MIGRATION = ROOT / "infra" / "supabase" / "migrations" / "20261126000000_chat_worker_warmup.sql"
SERVICE_KEY = "service-role-key-for-the-stand-in"
WARMUP_URL = "https://project-ref.supabase.co/functions/v1/chat-worker-warmup"
WARMUP_SECRET = "vault-stored-warmup-secret-9c1e"
TEMPLATE = (
    "Platform template: rewrite the idea as ONE line of comma-separated tags (subject, setting, lighting, camera, "
    "style) for an image model. Keep every word the user wrote."
)
TEMPLATES_SQL = """
create table public.prompt_templates (id serial primary key, job_type text not null, system_prompt text not null,
                                      is_active boolean not null default true, updated_at timestamptz default now())
"""
TEMPLATES_ROWS = """
insert into public.prompt_templates (job_type, system_prompt, is_active, updated_at) values
  ('sdxl_image_fast', 'An older template that must not be used.', true, now() - interval '1 day'),
  ('sdxl_image_fast', %(template)s, true, now()),
  ('sdxl_image_fast', 'An inactive template.', false, now() + interval '1 day');
"""


@dataclass
class PlatformDb:
    pg: PrivatePostgres
    migration: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def platform_db() -> Iterator[PlatformDb]:
    """The private PostgreSQL with the stand-ins, the platform's templates, the warm-up migration applied
    and its secrets in the Vault stand-in. Started once, early: pg_cron 1.4 runs jobs on minute boundaries."""
    pg = PrivatePostgres()
    try:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(STANDINS_SQL)
            conn.execute(TEMPLATES_SQL)
            conn.execute(TEMPLATES_ROWS, {"template": TEMPLATE})
        migration = pg.psql_file(MIGRATION)
        if migration.returncode == 0:
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                conn.execute("select vault.create_secret(%s, 'chat_worker_warmup_url')", [WARMUP_URL])
                conn.execute("select vault.create_secret(%s, 'chat_worker_warmup_secret')", [WARMUP_SECRET])
                # the migration's every-5-minutes job, moved to every minute so the test sees it run
                conn.execute(
                    "select cron.alter_job(jobid, schedule := '* * * * *') from cron.job"
                    " where jobname = 'chat-worker-warmup'"
                )
        yield PlatformDb(pg, migration)
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def postgrest(platform_db: PlatformDb) -> Iterator[PostgrestStandIn]:
    server = PostgrestStandIn(platform_db.pg.dsn, SERVICE_KEY)
    yield server
    server.stop()
