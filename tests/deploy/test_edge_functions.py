"""`deno test` drives the Supabase edge functions' handlers against the real worker and local stand-ins."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator

import pytest

from tests.deploy.auth_standin import SigningKey, new_signing_key
from tests.deploy.conftest import SERVICE_KEY, TEMPLATE, PlatformDb
from tests.deploy.postgrest_standin import PostgrestStandIn
from tests.e2e.conftest import ROOT, LocalApi

pytestmark = pytest.mark.e2e

FUNCTIONS = ROOT / "infra" / "supabase" / "functions"
DENO = ROOT / ".deno" / "node_modules" / ".bin" / "deno"


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return new_signing_key()


@pytest.fixture(scope="module")
def supabase(platform_db: PlatformDb, signing_key: SigningKey) -> Iterator[PostgrestStandIn]:
    """One SUPABASE_URL: the PostgREST stand-in, also serving the Auth JWKS stand-in's public key."""
    server = PostgrestStandIn(platform_db.pg.dsn, SERVICE_KEY, jwks=signing_key.jwks)
    yield server
    server.stop()


def test_deno_suite_against_the_real_worker(
    api: LocalApi,
    start_api: Callable[..., LocalApi],
    platform_db: PlatformDb,
    supabase: PostgrestStandIn,
    signing_key: SigningKey,
) -> None:
    streaming = start_api(STREAM_ENABLED="true")  # the generator handler: /stream serves the deltas
    assert DENO.is_file(), "Deno is missing: `make test` installs it (scripts/ensure_deno.sh)"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DENO_DIR": str(ROOT / ".deno" / "cache"),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
        "WORKER_URL": api.url,
        "STREAM_WORKER_URL": streaming.url,
        "SUPABASE_URL": supabase.url,
        "SUPABASE_TEST_SIGNING_JWK": signing_key.private_json(),
        "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY,
        "TEMPLATE_TEXT": TEMPLATE,  # the newest active row for sdxl_image_fast
    }
    cmd = [str(DENO), "test", "--frozen", "--cached-only", "--allow-net", "--allow-env", "tests/"]
    done = subprocess.run(cmd, cwd=FUNCTIONS, env=env, capture_output=True, text=True, timeout=600, check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-8000:]
    summary = re.search(r"ok \| (\d+) passed \| 0 failed", report)
    assert summary and int(summary.group(1)) >= 15, report[-3000:]
    # the functions verified the ES256 tokens against the stand-in's JWKS
    assert "/auth/v1/.well-known/jwks.json" in supabase.requests
    # supabase-js asked for the job type's active templates, newest first
    reads = [r for r in supabase.requests if r.startswith("/rest/v1/prompt_templates?")]
    assert any("job_type=eq.sdxl_image_fast" in r and "is_active=eq.true" in r for r in reads), reads


SUPABASE_DIR = ROOT / "infra" / "supabase"


def test_supabase_folder_is_a_cli_project() -> None:
    """infra/ is a Supabase CLI root as is (`supabase --workdir infra ...`): supabase/config.toml, one
    functions/<name>/index.ts per configured function, migrations/<14-digit timestamp>_<name>.sql."""
    config = tomllib.loads((SUPABASE_DIR / "config.toml").read_text())
    assert config["project_id"]
    functions = {
        p.parent.name for p in (SUPABASE_DIR / "functions").glob("*/index.ts") if not p.parent.name.startswith("_")
    }
    assert functions == {"chat", "enhance-prompt", "chat-worker-warmup"}
    assert set(config["functions"]) == functions, "every function has its own settings, and only those"
    for name, settings in config["functions"].items():
        # the gateway's verify_jwt takes legacy HS256 tokens only; each function checks its caller itself
        assert settings["verify_jwt"] is False, name
        assert (SUPABASE_DIR / settings["import_map"]).is_file(), name
        handler = (SUPABASE_DIR / "functions" / name / "handler.ts").read_text()
        checks = "WARMUP_SECRET" if name == "chat-worker-warmup" else "verifyUser(req, authConfig(env))"
        assert checks in handler, name
    migrations = sorted(p.name for p in (SUPABASE_DIR / "migrations").iterdir())
    assert migrations and all(re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", m) for m in migrations), migrations
