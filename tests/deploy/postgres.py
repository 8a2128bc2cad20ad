"""A private PostgreSQL 15 with pg_cron in a temporary folder (the machine's own server is untouched),
and the test-only stand-ins for what Supabase has and Debian does not package: Vault and pg_net."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")

# Test-only stand-ins, named as such. Vault: the same view and create_secret() as supabase_vault,
# without encryption. pg_net: net.http_post with pg_net's signature that records each call
# instead of sending it.
STANDINS_SQL = """
create schema vault;
create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique, secret text not null,
                            description text not null default '');
create view vault.decrypted_secrets as select id, name, description, secret as decrypted_secret from vault.secrets;
create function vault.create_secret(new_secret text, new_name text default null, new_description text default '',
                                    new_key_id uuid default null) returns uuid
language sql as $$
  insert into vault.secrets (name, secret, description) values (new_name, new_secret, new_description) returning id
$$;

create schema net;
create table net.standin_calls (id bigserial primary key, url text, body jsonb, params jsonb, headers jsonb,
                                timeout_milliseconds int, called_by text default current_user,
                                at timestamptz default clock_timestamp());
create function net.http_post(url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
                              headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
                              timeout_milliseconds int default 5000) returns bigint
language sql as $$
  insert into net.standin_calls (url, body, params, headers, timeout_milliseconds)
  values (url, body, params, headers, timeout_milliseconds) returning id
$$;
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """initdb + pg_ctl in a temp folder; as root, the server runs as the `postgres` system user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chatw-pg-"))
        self.port = _free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        data = self.root / "data"
        self._run(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": "'postgres'",
            "fsync": "off",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._run(PG_BIN / "pg_ctl", "-D", data, "-l", self.root / "server.log", "-w", "-t", "60", "start")

    def _run(self, *cmd: object) -> None:
        done = subprocess.run(
            [*self._as_user, *map(str, cmd)], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def psql_file(self, path: Path) -> subprocess.CompletedProcess[str]:
        """Apply a file with psql, stopping at the first error (as `supabase db push` would)."""
        cmd = [PG_BIN / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn, "-f", path]
        return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
