#!/usr/bin/env bash
# Deno for the Supabase edge functions' checks and tests, from the npm registry's `deno`
# package (it ships the binary), into the project-local folder .deno/ (like .venv), and the
# functions' npm: imports cached in .deno/cache so tests run offline.
set -euo pipefail
DENO_VERSION=2.9.6
HOME_DIR=.deno
FUNCTIONS=infra/supabase/functions
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "ensure_deno: installing npm from Debian's packages" >&2
    (apt-get install -y -qq npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq npm; }) >&2
  else
    echo "ensure_deno: npm is needed to install Deno (apt-get install npm)" >&2
    exit 1
  fi
fi
npm install --prefix "$HOME_DIR" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION"
export DENO_DIR="$PWD/$HOME_DIR/cache"
# deno.lock pins every npm package's integrity; --frozen fails if the lock would change.
DENO="$PWD/$HOME_DIR/node_modules/.bin/deno"
(cd "$FUNCTIONS" && "$DENO" install --frozen --quiet)
touch "$HOME_DIR/.installed"
