#!/usr/bin/env bash
# README "## Production", run as written: the ```sh block between <!-- recipe --> and
# <!-- /recipe --> is read from README.md at run time and run line by line (set -v prints
# each line as it runs), with only the changes listed in SUBSTITUTIONS below: folders in a
# scratch folder instead of /srv, /etc, /run and /var/cache, a scratch PostgreSQL database,
# a redis-server and an SMTP server (aiosmtpd) of our own, a self-signed certificate, and the
# `# root` lines done our way (no useradd or chown; the systemd units' ExecStartPre=,
# ExecStart=, Environment= and EnvironmentFile= lines run by hand, as CI has no systemd;
# nginx started with a scratch main configuration around the recipe's conf.d file).
# Then, through nginx: /readyz (database, Redis, the worker's heartbeat), pages, a static
# file from disk, /metrics with and without the token, X-Request-ID, a password reset mailed
# to the staff account create-staff made (and one only the worker can send), and the one
# generated SECRET_KEY in both processes.
#
# RECIPE_DATABASE_URL names the scratch database (dropped WITH (FORCE), created, dropped at
# the end); default postgresql+psycopg://postgres@127.0.0.1:5432/patrons_recipe. NGINX_BIN:
# the nginx binary (/usr/sbin/nginx). Called by .ci/run after the wheel check.
set -euo pipefail
cd "$(dirname "$0")/../.."
checkout=$(pwd)
started=$(date +%s)
. tests/deploy/lib.sh  # free_port, wait_until
say() { echo "== [$(( $(date +%s) - started )) s] $*"; }

export PYTHON=${PYTHON:-python3}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}  # not NGINX: nginx reads that variable (inherited sockets)
SMTP_PYTHON=$checkout/.venv/bin/python  # has aiosmtpd (the test suite's SMTP server)
DATABASE_URL_FOR_RECIPE=${RECIPE_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/patrons_recipe}
scratch=$(mktemp -d /tmp/patrons-recipe.XXXXXX)

# ---------------------------------------------------------------------------------------------
# Every change made to the README's recipe, in this one place. The recipe text refers to these
# R_* variables (exported to the shell that runs it); each sed expression must change the
# recipe, so a README edit that drops or rewords one of these lines fails here, loudly.
export R_APP=$scratch/srv/patrons            # (a) APP=/srv/patrons
export R_CONF=$scratch/etc/patrons           # (a) CONF=/etc/patrons
export R_RUN=$scratch/run/patrons            # the units' /run/patrons (RuntimeDirectory=)
export R_CACHE_DIR=$scratch/var/cache/nginx/patrons  # step 6's CACHE_DIR
export R_NGINX_DIR=$scratch/nginx            # instead of /etc/nginx (conf.d/, main config)
export R_CERT=$scratch/tls/fullchain.pem     # a self-signed certificate for localhost
export R_CERT_KEY=$scratch/tls/privkey.pem
export R_DATABASE_URL=$DATABASE_URL_FOR_RECIPE
export R_HTTP_PORT R_HTTPS_PORT R_SMTP_PORT R_REDIS_PORT
R_HTTP_PORT=$(free_port) R_HTTPS_PORT=$(free_port) R_SMTP_PORT=$(free_port) R_REDIS_PORT=$(free_port)
export R_REDIS_URL=redis://127.0.0.1:$R_REDIS_PORT/0
HAVE_REDIS=1
command -v redis-server >/dev/null 2>&1 || HAVE_REDIS=0

SUBSTITUTIONS=(
  # (a) the install's folders in the scratch folder
  's|^APP=/srv/patrons CONF=/etc/patrons$|APP=$R_APP CONF=$R_CONF|'
  # (b) the `# root` lines, done our way
  's|^useradd .*  # root$|: "(CI) no useradd: everything runs as this user"|'
  's|^chown .*  # root$|: "(CI) no chown"|'
  's|^cp "$DEPLOY/patrons-web.service" "$DEPLOY/patrons-worker.service" /etc/systemd/system/  # root$|: "(CI) no systemd: the units are read where they are, in $DEPLOY"|'
  's|^systemctl daemon-reload \&\& systemctl enable --now \([a-z -]*\)  # root$|start_units \1|'
  's|^mkdir -p /var/cache/nginx/patrons \&\& chown www-data: /var/cache/nginx/patrons  # root$|mkdir -p "$R_CACHE_DIR"|'
  's|^SERVER_NAME=news.example.org HTTP_PORT=80 HTTPS_PORT=443 \\$|SERVER_NAME=localhost HTTP_PORT=$R_HTTP_PORT HTTPS_PORT=$R_HTTPS_PORT \\|'
  's|^TLS_CERTIFICATE=/etc/letsencrypt/live/news.example.org/fullchain.pem \\$|TLS_CERTIFICATE=$R_CERT \\|'
  's|^TLS_CERTIFICATE_KEY=/etc/letsencrypt/live/news.example.org/privkey.pem \\$|TLS_CERTIFICATE_KEY=$R_CERT_KEY \\|'
  's|^UPSTREAM=unix:/run/patrons/web.sock CACHE_DIR=/var/cache/nginx/patrons \\$|UPSTREAM=unix:$R_RUN/web.sock CACHE_DIR=$R_CACHE_DIR \\|'
  's|^  < "$DEPLOY/nginx.conf" > /etc/nginx/conf.d/patrons.conf  # root$|  < "$DEPLOY/nginx.conf" > "$R_NGINX_DIR/conf.d/patrons.conf"|'
  's|^nginx -t \&\& systemctl reload nginx  # root$|nginx_test_and_start|'
  # (c) the settings' placeholders (in the heredoc, expanded when it runs)
  's|^DATABASE_URL=postgresql+psycopg://patrons:DB_PASSWORD@127.0.0.1:5432/patrons$|DATABASE_URL=$R_DATABASE_URL|'
  's|^MAIL_URL=smtp://.*$|MAIL_URL=smtp://127.0.0.1:$R_SMTP_PORT|'
  's|^SITE_URL=https://news.example.org$|SITE_URL=https://localhost:$R_HTTPS_PORT|'
  '/^STRIPE_\(SECRET_KEY\|PUBLISHABLE_KEY\|WEBHOOK_SECRET\)=[a-z_]*REPLACE$/d'  # no Stripe: pledges closed
  # (e) the last step asks our nginx
  's|^curl -fsS https://news.example.org/readyz$|curl -fsS -k https://localhost:$R_HTTPS_PORT/readyz|'
)
if [ "$HAVE_REDIS" = 1 ]; then
  SUBSTITUTIONS+=('s|^REDIS_URL=redis://127.0.0.1:6379/0$|REDIS_URL=$R_REDIS_URL|')  # (c) our redis-server
else
  SUBSTITUTIONS+=('/^REDIS_URL=redis:\/\/127.0.0.1:6379\/0$/d')  # (c) no redis-server here: no Redis
fi
# (d) step 1 (up to the line "# 2.") runs in the checkout; its dist/ and requirements.lock
#     are then copied to $scratch/server, where the rest runs.
# The units: /srv/patrons, /etc/patrons and /run/patrons in their lines become these.
UNIT_PATHS=("/srv/patrons=$R_APP" "/etc/patrons=$R_CONF" "/run/patrons=$R_RUN")
# ---------------------------------------------------------------------------------------------

pids_dir=$scratch/pids
database_made=0
cleanup() {
  local status=$?
  set +e
  for name in patrons-web patrons-worker; do  # SIGTERM, as systemctl stop would
    [ -f "$pids_dir/$name" ] && kill -TERM "$(cat "$pids_dir/$name")" 2>/dev/null
  done
  if [ -f "$R_NGINX_DIR/nginx.pid" ]; then
    "$NGINX_BIN" -p "$R_NGINX_DIR" -e "$R_NGINX_DIR/error.log" -c "$R_NGINX_DIR/nginx.conf" -s quit 2>/dev/null
  fi
  for name in smtp redis; do
    [ -f "$pids_dir/$name" ] && kill -TERM "$(cat "$pids_dir/$name")" 2>/dev/null
  done
  for pidfile in "$pids_dir"/* "$R_NGINX_DIR/nginx.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  if [ "$database_made" = 1 ]; then
    psql -q -d "$pg_admin" -c "DROP DATABASE IF EXISTS \"$pg_name\" WITH (FORCE)" >/dev/null
  fi
  [ -d "$checkout/build" ] && [ "${had_build:-1}" = 0 ] && rm -rf "$checkout/build"
  [ -d "$checkout/dist" ] && [ "${had_dist:-1}" = 0 ] && rm -rf "$checkout/dist"
  rm -rf "$scratch"
  if [ "$status" = 0 ]; then
    echo "== recipe check passed in $(( $(date +%s) - started )) s"
  else
    echo "== recipe check FAILED (exit $status) after $(( $(date +%s) - started )) s"
  fi
}
trap cleanup EXIT
trap "exit 143" TERM INT
mkdir -p "$pids_dir" "$R_RUN" "$R_NGINX_DIR/conf.d" "$scratch/tls" "$scratch/server"

# --- the recipe, as README.md has it now ---------------------------------------------------
awk '/^<!-- recipe -->$/ {on = 1; next} /^<!-- \/recipe -->$/ {on = 0} on' README.md \
  | sed '/^```/d' > "$scratch/recipe.orig.sh"
[ -s "$scratch/recipe.orig.sh" ] || { echo "README.md has no <!-- recipe --> block"; exit 1; }
cp "$scratch/recipe.orig.sh" "$scratch/recipe.sh"
for expression in "${SUBSTITUTIONS[@]}"; do
  sed "$expression" "$scratch/recipe.sh" > "$scratch/recipe.next"
  if cmp -s "$scratch/recipe.sh" "$scratch/recipe.next"; then
    echo "!! the README's recipe no longer has the line this changes: $expression"; exit 1
  fi
  mv "$scratch/recipe.next" "$scratch/recipe.sh"
done
left=$(grep -vE '^\s*#' "$scratch/recipe.sh" | grep -nE '# root$|news\.example\.org|/srv/|/etc/|/run/|/var/|_REPLACE|PASSWORD@' || true)
if [ -n "$left" ]; then
  echo "!! recipe lines this script does not know how to run here (teach SUBSTITUTIONS):"
  echo "$left"; exit 1
fi
line=$(grep -n '^# 2\. ' "$scratch/recipe.sh" | head -1 | cut -d: -f1)
[ -n "$line" ] || { echo "!! the recipe has no step '# 2.'"; exit 1; }
head -n $(( line - 1 )) "$scratch/recipe.sh" > "$scratch/recipe.step1.sh"
tail -n +"$line" "$scratch/recipe.sh" > "$scratch/recipe.server.sh"

# --- what the recipe's server needs besides it: PostgreSQL, Redis, SMTP, a certificate -------
pg_name=${DATABASE_URL_FOR_RECIPE##*/}
pg_name=${pg_name%%\?*}
pg_admin=${DATABASE_URL_FOR_RECIPE/postgresql+psycopg:/postgresql:}
pg_admin=${pg_admin%/*}/postgres
export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE for a database not there
say "a scratch database $pg_name"
psql -q -d "$pg_admin" -c "DROP DATABASE IF EXISTS \"$pg_name\" WITH (FORCE)" >/dev/null
database_made=1
psql -q -d "$pg_admin" -c "CREATE DATABASE \"$pg_name\"" >/dev/null

if [ "$HAVE_REDIS" = 1 ]; then
  say "redis-server on 127.0.0.1:$R_REDIS_PORT"
  redis-server --port "$R_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$scratch" > "$scratch/redis.log" 2>&1 &
  echo $! > "$pids_dir/redis"
  wait_until 20 "$(cat "$pids_dir/redis")" "$scratch/redis.log" \
    redis-cli -p "$R_REDIS_PORT" ping
else
  say "no redis-server on this machine: the recipe runs without REDIS_URL (Redis not checked)"
fi

say "an SMTP server (aiosmtpd) on 127.0.0.1:$R_SMTP_PORT, keeping the mail in $scratch/mail"
"$SMTP_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$R_SMTP_PORT" -c aiosmtpd.handlers.Mailbox \
  "$scratch/mail" > "$scratch/smtp.log" 2>&1 &
echo $! > "$pids_dir/smtp"
wait_until 20 "$(cat "$pids_dir/smtp")" "$scratch/smtp.log" \
  "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$R_SMTP_PORT"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$R_CERT_KEY" -out "$R_CERT" > /dev/null 2>&1

# nginx's main configuration: what Debian's /etc/nginx/nginx.conf is, in the scratch folder
# (workers as root: the scratch folder is private to root)
cat > "$R_NGINX_DIR/nginx.conf" <<NGINX
user root;
pid $R_NGINX_DIR/nginx.pid;
error_log $R_NGINX_DIR/error.log;
events { worker_connections 128; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $R_NGINX_DIR/access.log;
    client_body_temp_path $R_NGINX_DIR/body;
    proxy_temp_path $R_NGINX_DIR/proxy;
    fastcgi_temp_path $R_NGINX_DIR/fastcgi;
    uwsgi_temp_path $R_NGINX_DIR/uwsgi;
    scgi_temp_path $R_NGINX_DIR/scgi;
    include $R_NGINX_DIR/conf.d/*.conf;
}
NGINX

# A systemd unit's [Service] lines, run by hand: RuntimeDirectory=, Environment= then
# EnvironmentFile= (the file's values win, as in systemd), a clean environment as systemd
# gives, WorkingDirectory=, each ExecStartPre=, then ExecStart= (exec: the pid stays).
cat > "$scratch/run_unit.py" <<'PYTHON'
import os, re, shlex, subprocess, sys

unit, *maps = sys.argv[1:]
paths = [m.split("=", 1) for m in maps]


def here(text):
    for old, new in paths:
        text = text.replace(old, new)
    return text


def env_file(path):  # systemd's EnvironmentFile= syntax: KEY=VALUE, quotes optional
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            key, _, value = line.partition("=")
            value = value.strip()
            if value[:1] in ("'", '"'):
                value = "".join(shlex.split(value))
            values[key.strip()] = value
    return values


settings, section = [], None
for raw in open(unit):
    line = raw.strip()
    if line.startswith("["):
        section = line
    elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
        key, _, value = line.partition("=")
        settings.append((key.strip(), here(value.strip())))

env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "LANG": "C.UTF-8", "HOME": here("/srv/patrons"), "USER": "patrons", "LOGNAME": "patrons"}
files, workdir, pre, start = [], None, [], None
for key, value in settings:
    if key == "Environment":
        for word in shlex.split(value):
            name, _, val = word.partition("=")
            env[name] = val
    elif key == "EnvironmentFile":
        files.append(value)
    elif key == "WorkingDirectory":
        workdir = value.lstrip("-")
    elif key == "RuntimeDirectory":
        for name in value.split():
            os.makedirs(here("/run/" + name), exist_ok=True)
    elif key == "ExecStartPre":
        pre.append(value)
    elif key == "ExecStart":
        start = value
for path in files:
    optional = path.startswith("-")
    path = path.lstrip("-")
    if os.path.exists(path) or not optional:
        env.update(env_file(path))


def argv(command):
    command = command.lstrip("@-:+!")
    expand = lambda m: env.get(m.group(1) or m.group(2), "")
    return [re.sub(r"\$\{(\w+)\}|\$(\w+)", expand, word) for word in shlex.split(command)]


os.umask(0o022)
os.chdir(workdir or "/")
for command in pre:
    print("ExecStartPre:", command, flush=True)
    subprocess.run(argv(command), env=env, check=True)
print("ExecStart:", start, flush=True)
command = argv(start)
os.execve(command[0], command, env)
PYTHON

# start_units NAME...: what `systemctl enable --now NAME...` does here, from $DEPLOY/NAME.service
start_units() {
  local name pid log
  for name in "$@"; do
    log=$scratch/$name.log
    echo "   starting $name from $DEPLOY/$name.service (log: $log)"
    "$PYTHON" "$scratch/run_unit.py" "$DEPLOY/$name.service" "${UNIT_PATHS[@]}" \
      > "$log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$pids_dir/$name"
  done
  # systemctl would return at once (Type=simple); step 7 asks nginx right away, so wait for
  # the web server's socket to answer first
  if [ -f "$pids_dir/patrons-web" ]; then
    wait_until 60 "$(cat "$pids_dir/patrons-web")" "$scratch/patrons-web.log" \
      curl -fsS --unix-socket "$R_RUN/web.sock" http://localhost/healthz
  fi
}
# nginx_test_and_start: `nginx -t && systemctl reload nginx`, with the scratch main config
nginx_test_and_start() {
  local nginx=("$NGINX_BIN" -p "$R_NGINX_DIR" -e "$R_NGINX_DIR/error.log" -c "$R_NGINX_DIR/nginx.conf")
  "${nginx[@]}" -t
  "${nginx[@]}"
  wait_until 20 "" "$R_NGINX_DIR/error.log" curl -fsS -k -o /dev/null "https://localhost:$R_HTTPS_PORT/healthz"
}
export -f start_units nginx_test_and_start wait_until
export scratch pids_dir NGINX_BIN
export UNIT_PATHS_TEXT="${UNIT_PATHS[*]}"

# the shell the recipe runs in: none of the app's settings from this one
run_recipe() {
  (
    unset PYTHONPATH FLASK_APP VIRTUAL_ENV REDIS_URL MAIL_URL SITE_URL DATABASE_URL SECRET_KEY \
      SECRET_KEY_FALLBACKS METRICS_TOKEN TEST_DATABASE_URL SENTRY_DSN
    for name in $(compgen -e); do
      case "$name" in PATRONS_*|STRIPE_*) unset "$name" ;; esac
    done
    # UNIT_PATHS for start_units (arrays are not exported)
    # set -v: each line of the recipe printed as it is read, before it runs
    bash -euo pipefail -c 'read -ra UNIT_PATHS <<< "$UNIT_PATHS_TEXT"; set -v; . "$1"' recipe "$1"
  )
}

say "README recipe, step 1, in the checkout ($checkout)"
had_dist=0; [ -e dist ] && had_dist=1
had_build=0; [ -e build ] && had_build=1
(cd "$checkout" && run_recipe "$scratch/recipe.step1.sh")
# "Copy it and requirements.lock to the server"
mkdir -p "$scratch/server/dist"
cp dist/patrons-*.whl requirements.lock "$scratch/server/dist/"
mv "$scratch/server/dist/requirements.lock" "$scratch/server/"
[ "$had_dist" = 1 ] || rm -rf dist
[ "$had_build" = 1 ] || rm -rf build

say "README recipe, steps 2 to 7, on the \"server\" (working directory $scratch/server)"
(cd "$scratch/server" && run_recipe "$scratch/recipe.server.sh")
echo
say "the recipe ran; now the checks, through nginx on https://localhost:$R_HTTPS_PORT"

# --- checks --------------------------------------------------------------------------------
base=https://localhost:$R_HTTPS_PORT
get() { curl -sS -k -H 'Host: localhost' "$@"; }
failed=0
fail() { echo "!! $*"; failed=1; }
ok() { echo "   ok: $*"; }
env_file=$R_CONF/patrons.env
setting() { sed -n "s/^$1=//p" "$env_file" | tail -1; }
web_pid=$(cat "$pids_dir/patrons-web")
worker_pid=$(cat "$pids_dir/patrons-worker")
APP_PYTHON=$R_APP/venv/bin/python

# /readyz: the database, Redis and the worker's heartbeat (the worker's first pass writes it)
ready_ok() {
  get -f "$base/readyz" > "$scratch/readyz.json" || return 1
  "$PYTHON" - "$scratch/readyz.json" "$HAVE_REDIS" <<'PYTHON'
import json, sys
body = json.load(open(sys.argv[1]))
ok = body["database"] == "up" and body["worker"] is not None
ok = ok and body["redis"] == ("up" if sys.argv[2] == "1" else "not configured")
sys.exit(0 if ok else 1)
PYTHON
}
if wait_until 60 "$worker_pid" "$scratch/patrons-worker.log" ready_ok; then
  ok "/readyz 200: $(cat "$scratch/readyz.json")"
else
  fail "/readyz never said database up, redis up and a worker heartbeat: $(cat "$scratch/readyz.json" 2>/dev/null)"
fi

for path in / /login /support; do
  code=$(get -o /dev/null -w '%{http_code}' "$base$path")
  [ "$code" = 200 ] && ok "$path 200" || fail "$path answered $code"
done

# a static file from STATIC_ROOT (the installed package's patrons/static), served by nginx's
# /static/ location (no X-Cache-Status: that header is only on what goes to the app)
static_root=$(cd "$scratch/server" && "$APP_PYTHON" -c 'import patrons, pathlib; print(pathlib.Path(patrons.__file__).parent / "static")')
get -D "$scratch/static.headers" -o "$scratch/static.body" "$base/static/favicon.svg"
if head -1 "$scratch/static.headers" | grep -q ' 200' && cmp -s "$scratch/static.body" "$static_root/favicon.svg" \
    && ! grep -qi '^X-Cache-Status:' "$scratch/static.headers"; then
  ok "/static/favicon.svg 200 from $static_root"
else
  fail "/static/favicon.svg not served from disk by nginx: $(head -1 "$scratch/static.headers")"
fi

token=$(setting METRICS_TOKEN)
code=$(get -o "$scratch/metrics" -w '%{http_code}' -H "Authorization: Bearer $token" "$base/metrics")
if [ "$code" = 200 ] && grep -q '^patrons_http_requests_total' "$scratch/metrics"; then
  ok "/metrics with the bearer token 200, with patrons_http_requests_total"
else
  fail "/metrics with the token answered $code $(grep -c patrons_http_requests_total "$scratch/metrics") counter lines"
fi
code=$(get -o /dev/null -w '%{http_code}' "$base/metrics")
[ "$code" = 404 ] && ok "/metrics without the token 404" || fail "/metrics without the token answered $code"

request_id=$(get -D - -o /dev/null "$base/" | sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *\([^[:space:]]*\).*/\1/p')
[ -n "$request_id" ] && ok "X-Request-ID: $request_id" || fail "no X-Request-ID on /"

# the staff account create-staff made: a reset asked for through the site...
jar=$scratch/cookies
get -c "$jar" -b "$jar" -o "$scratch/reset.html" "$base/reset"
csrf=$(sed -n 's/.*name="csrf_token"[^>]*value="\([^"]*\)".*/\1/p' "$scratch/reset.html" | head -1)
[ -n "$csrf" ] || fail "no csrf_token on /reset"
# Referer as a browser on https://localhost/ sends it (Flask-WTF checks it over https; nginx
# passes the host without the port, so the test port must not be in it)
code=$(get -c "$jar" -b "$jar" -o "$scratch/reset_sent.html" -w '%{http_code}' \
  -H "Referer: https://localhost/reset" --data-urlencode "csrf_token=$csrf" \
  --data-urlencode "email=editor@example.org" "$base/reset")
[ "$code" = 200 ] && ok "POST /reset for editor@example.org 200" || fail "POST /reset answered $code"
# ...and one queued outside the web server (its own sender never sees it): only the worker
# sends that one
env -i PATH="$PATH" bash -c 'set -a; . "$1"; set +a; cd "$2"; exec "$3" - "$4"' recipe-env \
  "$env_file" "$scratch/server" "$APP_PYTHON" "$R_APP/instance" <<'PYTHON'
import os, sys
os.environ["PATRONS_INSTANCE"] = sys.argv[1]
from patrons import create_app
from patrons.accounts import recovery
from patrons.core.db import get_session
app = create_app()
with app.test_request_context():
    db = get_session()
    recovery.request_password_reset(db, "editor@example.org", "https://localhost/reset/new?token=", "https://localhost/signup")
    db.commit()
PYTHON
# the link in the reset mail starts with SITE_URL
site_link() {
  "$PYTHON" - "$scratch/mail" "https://localhost:$R_HTTPS_PORT/reset/new?token=" <<'PYTHON'
import mailbox, sys
for message in mailbox.Maildir(sys.argv[1], create=False):
    for part in message.walk():
        if part.get_content_type() == "text/plain" and sys.argv[2] in part.get_payload(decode=True).decode():
            sys.exit(0)
sys.exit(1)
PYTHON
}
reset_mails() { grep -l '^To: editor@example.org' "$scratch/mail/new/"* 2>/dev/null | xargs -r grep -l '^Subject: Set a new password' | wc -l; }
two_reset_mails() { [ "$(reset_mails)" -ge 2 ]; }
if wait_until 60 "$worker_pid" "$scratch/patrons-worker.log" two_reset_mails; then
  ok "both reset mails to editor@example.org reached the SMTP server"
else
  fail "$(reset_mails) reset mail(s) of 2 reached the SMTP server"
fi
site_link && ok "the reset link starts with SITE_URL" || fail "no reset link starting with SITE_URL in the mail"
grep -q 'send-mail: Sent [1-9]' "$scratch/patrons-worker.log" && ok "the worker says it sent mail" \
  || fail "the worker's log says it sent no mail"

# one SECRET_KEY, generated once, in the file both units read and in both processes
key=$(setting SECRET_KEY)
[ "${#key}" -ge 32 ] && ok "SECRET_KEY: ${#key} characters" || fail "SECRET_KEY has ${#key} characters"
for unit in patrons-web patrons-worker; do
  grep -qx "EnvironmentFile=/etc/patrons/patrons.env" "$R_APP"/venv/lib/python3*/site-packages/patrons/_data/deploy/$unit.service \
    || fail "$unit.service does not read /etc/patrons/patrons.env"
done
for pid in "$web_pid" "$worker_pid"; do
  seen=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n 's/^SECRET_KEY=//p')
  [ "$seen" = "$key" ] || fail "process $pid runs with another SECRET_KEY"
done
[ "$failed" = 0 ] && ok "both processes run with the SECRET_KEY of $env_file"

if [ "$failed" != 0 ]; then
  for log in patrons-web patrons-worker; do echo "-- $log.log"; tail -30 "$scratch/$log.log"; done
  echo "-- nginx error.log"; tail -20 "$R_NGINX_DIR/error.log" 2>/dev/null
  exit 1
fi
