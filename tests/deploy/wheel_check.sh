#!/usr/bin/env bash
# The package as a newsroom installs it: build the wheel, install it with its pinned
# requirements into a scratch virtualenv, and from an empty folder (no checkout on the path)
# migrate a scratch database with `flask --app patrons db-upgrade`, seed the demo and serve it
# with `python -m patrons` (Gunicorn, deploy/gunicorn.conf.py from the package) on $PORT,
# then ask for the main pages. DATABASE_URL may name a scratch PostgreSQL database (wiped);
# unset, a SQLite file in the scratch folder. Called by .ci/run; pip's cache keeps it fast.
set -euo pipefail
cd "$(dirname "$0")/../.."
checkout=$(pwd)
python=${PYTHON:-python3}
. tests/deploy/lib.sh  # free_port, wait_until
scratch=$(mktemp -d /tmp/patrons-wheel.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
started=$(date +%s)

echo "== building the wheel"
rm -rf build  # setuptools' leftovers from an earlier build would go into the wheel
.venv/bin/pip wheel . --no-deps --quiet --wheel-dir "$scratch/dist"
rm -rf build
wheel=$(ls "$scratch"/dist/patrons-*.whl)
for inside in patrons/_data/templates/base.html patrons/_data/alembic/env.py \
    patrons/_data/deploy/gunicorn.conf.py patrons/static/favicon.svg \
    patrons/translations/en/LC_MESSAGES/messages.mo; do
  "$python" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
    "$wheel" "$inside" || { echo "the wheel lacks $inside"; exit 1; }
done

echo "== installing it into a scratch virtualenv"
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet --disable-pip-version-check -c requirements.lock "$wheel"
echo "   built and installed in $(( $(date +%s) - started )) s"

mkdir "$scratch/empty"
cd "$scratch/empty"
unset PYTHONPATH FLASK_APP
export PATRONS_ENV=development
export SECRET_KEY=wheel-check-secret-key-long-enough-for-any-mode
export DATABASE_URL=${DATABASE_URL:-sqlite:///$scratch/empty/patrons.db}
export PATRONS_INSTANCE="$scratch/empty/instance"
export PORT=$(PYTHON="$python" free_port)
export SITE_URL="http://127.0.0.1:$PORT"
unset REDIS_URL MAIL_URL STRIPE_SECRET_KEY

where=$("$scratch/venv/bin/python" -c 'import patrons; print(patrons.__file__)')
case "$where" in
  "$scratch/venv/"*) ;;
  *) echo "patrons imported from $where, not from the installed wheel"; exit 1 ;;
esac

echo "== flask --app patrons db-upgrade, seed-demo (from an empty folder)"
"$scratch/venv/bin/flask" --app patrons db-upgrade
"$scratch/venv/bin/flask" --app patrons seed-demo > /dev/null

echo "== python -m patrons on PORT=$PORT"
"$scratch/venv/bin/python" -m patrons > "$scratch/server.log" 2>&1 &
server=$!
wait_until 60 "$server" "$scratch/server.log" curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"

failed=0
css=$(cd "$scratch/venv" && ls lib/python3*/site-packages/patrons/static/css/*.css | head -1)
for path in / /articles/bilyi-brid-ferry-returns /support /login /signup /topics /healthz \
    /feed.atom "/static/css/$(basename "$css")"; do
  code=$(curl -sS -o "$scratch/page" -w '%{http_code}' "http://127.0.0.1:$PORT$path")
  printf '   %s %s\n' "$code" "$path"
  [ "$code" = 200 ] || failed=1
done
# the templates from the package rendered a real article (the demo seeded from the package)
grep -q "Bilyi Brid" <(curl -sS "http://127.0.0.1:$PORT/articles/bilyi-brid-ferry-returns") \
  || { echo "the article page lacks its title"; failed=1; }
if [ "$failed" != 0 ]; then
  tail -40 "$scratch/server.log"
  echo "wheel check: FAILED"
  exit 1
fi
echo "== wheel check passed in $(( $(date +%s) - started )) s"
