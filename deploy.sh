#!/usr/bin/env bash
# deploy.sh: one command to install, start and later upgrade mexc-pump-scanner on a Linux VPS.
#
#   ./deploy.sh                  Docker: installs Docker when missing, builds, starts, waits healthy
#   ./deploy.sh --systemd        no Docker: a venv under --prefix and a systemd unit instead
#   ./deploy.sh --dry-run [...]  prints every action and changes nothing
#   curl -fsSL <raw URL of deploy.sh> | sudo -E bash [-s -- --systemd ...]
#                                without a checkout: clones REPO_URL at REF into <prefix>/app first
#
# Re-running upgrades in place: the image (or venv and build) is rebuilt and the service restarted;
# without a checkout the clone is first fetched and checked out at REF again;
# .env and the data directory are kept. Secrets come from the environment, from the existing .env,
# or (only on an interactive terminal) from a prompt; .env is written with mode 0600.
set -euo pipefail

# Where the project is published; REPO_URL overrides it (a fork, a mirror, a file:// bare repo).
DEFAULT_REPO_URL="https://github.com/<owner>/mexc-pump-scanner.git"
REPO_URL="${REPO_URL:-$DEFAULT_REPO_URL}"
REF="${REF:-main}"
# The checkout this script sits in, if any. Read from a pipe (curl ... | bash) it has no file and no
# checkout beside it: then FETCH=1 and the sources are cloned into the install directory instead.
SRC_DIR=""
FETCH=1
if [ -n "${BASH_SOURCE[0]:-}" ] && [ -f "${BASH_SOURCE[0]}" ]; then
  SELF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  if [ -f "$SELF_DIR/setup.py" ] && [ -f "$SELF_DIR/deploy/mexc-pump-scanner.service" ]; then
    SRC_DIR="$SELF_DIR"
    FETCH=0
  fi
fi
MODE=docker
DRY_RUN=0
START=1
USE_SYSTEMCTL=1
PREFIX=""
DATA_DIR=""
SERVICE_USER=""
UNIT_NAME="mexc-pump-scanner.service"
TRAIN_UNITS=(mexc-pump-scanner-train.service mexc-pump-scanner-train.timer)
TRAINING=0
UNIT_DIR="/etc/systemd/system"
PYTHON_BIN="${PYTHON:-python3}"
HEALTH_TIMEOUT_S="${HEALTH_TIMEOUT_S:-180}"
ENV_KEYS=(TG_TOKEN ALLOWED_IDS MEXC_KEY MEXC_SECRET TG_BASE_URL MEXC_WS_URL MEXC_REST_URL MEXC_FUTURES_WS_URL MEXC_FUTURES_REST_URL
          METRICS_PORT LOG_LEVEL GRAFANA_ADMIN_PASSWORD)
SECRET_KEYS=" TG_TOKEN MEXC_KEY MEXC_SECRET GRAFANA_ADMIN_PASSWORD "
PROMPT_KEYS=(TG_TOKEN ALLOWED_IDS MEXC_KEY MEXC_SECRET)

usage() {
  cat <<'USAGE'
usage: ./deploy.sh [--docker | --systemd] [options]

  --docker           Docker + compose (default); installs Docker when missing
  --systemd          a Python venv and a systemd unit instead of Docker
  --dry-run          print every action, change nothing
  --prefix DIR       install under DIR (default /opt/mexc-pump-scanner): with --systemd always;
                     with Docker only when run without a checkout (the clone goes to DIR/app)
  --data-dir DIR     SQLite, Parquet, alerts.log (default: <prefix>/data, or ./data with Docker)
  --user NAME        --systemd: run as NAME (default mexc-scanner when root, else the current user)
  --no-start         install and build only; do not start or restart the service
  --no-systemctl     --systemd: write the unit next to the install instead of calling systemctl
                     (no root needed; for trying the install, and for tests)
  --self-training    also the daily self-training job at 03:00 UTC (systemd timer, or the compose
                     profile "training"); it trains on the tick recorder's dumps: set
                     recorder.enabled: true in config.yaml
  -h, --help         this help

Environment read for .env: TG_TOKEN ALLOWED_IDS MEXC_KEY MEXC_SECRET TG_BASE_URL MEXC_WS_URL
MEXC_REST_URL MEXC_FUTURES_WS_URL MEXC_FUTURES_REST_URL METRICS_PORT LOG_LEVEL GRAFANA_ADMIN_PASSWORD;
PYTHON (default python3).

Run without a checkout beside it (curl -fsSL <raw URL of deploy.sh> | sudo -E bash), it clones
REPO_URL (default DEFAULT_REPO_URL in this script) at REF (default main: a branch, tag or commit)
into <prefix>/app, and on later runs fetches and checks out REF there again.
USAGE
}

die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

# Every action goes through run: printed with --dry-run, executed otherwise.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# write_file DEST MODE < content: atomically, with the mode set before any byte lands.
# With --dry-run only the names (never the values) of KEY=value lines are shown.
write_file() {
  local dest="$1" mode="$2" tmp
  if [ "$DRY_RUN" = 1 ]; then
    printf '+ write %s (mode %s)\n' "$dest" "$mode"
    sed -E 's/^([A-Z_]+)=.*/    \1=.../' | sed -n '1,60p'
    return
  fi
  tmp="$(umask 077 && mktemp "$(dirname "$dest")/.deploy.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
}

is_root() { [ "$(id -u)" = 0 ]; }
# A person at a terminal: prompts read /dev/tty, since from `curl | bash` stdin is the script itself.
interactive() { [ "$DRY_RUN" = 0 ] && [ -t 1 ] && { [ -t 0 ] || (: </dev/tty) 2>/dev/null; }; }

check_os() {
  [ "$(uname -s)" = Linux ] || die "Linux only (this is $(uname -s))"
  local pretty="unknown Linux"
  if [ -r /etc/os-release ]; then
    pretty="$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release | head -n 1)"
  fi
  say "OS: ${pretty:-unknown Linux}, mode: $MODE$([ "$DRY_RUN" = 1 ] && printf ' (dry run)')"
}

# existing_value FILE KEY: the value of KEY in an existing .env (read as data, never sourced).
existing_value() {
  local file="$1" key="$2" line
  [ -r "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$key="*) printf '%s' "${line#*=}"; return 0 ;;
    esac
  done <"$file"
}

# write_env FILE: .env from the environment, else the existing file, else a prompt (interactive only).
write_env() {
  local file="$1" key value content=""
  for key in "${ENV_KEYS[@]}"; do
    value="${!key-}"
    [ -n "$value" ] || value="$(existing_value "$file" "$key")"
    if [ -z "$value" ] && interactive && [[ " ${PROMPT_KEYS[*]} " == *" $key "* ]]; then
      if [[ "$SECRET_KEYS" == *" $key "* ]]; then
        read -r -s -p "$key (empty to skip): " value </dev/tty; printf '\n'
      else
        read -r -p "$key (empty to skip): " value </dev/tty
      fi
    fi
    case "$value" in *$'\n'*) die "$key must be one line" ;; esac
    [ -z "$value" ] || content+="$key=$value"$'\n'
  done
  if [[ "$content" != *"TG_TOKEN="* ]]; then
    say "no TG_TOKEN: signals will be printed to the log instead of Telegram"
  fi
  if [[ "$content" == *"TG_TOKEN="* && "$content" != *"ALLOWED_IDS="* ]]; then
    say "warning: TG_TOKEN without ALLOWED_IDS: the bot answers nobody"
  fi
  printf '%s' "$content" | write_file "$file" 600
}

wait_healthy_url() {
  local url="$1" deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  if [ "$DRY_RUN" = 1 ]; then
    printf '+ wait until %s answers 200 (up to %ss)\n' "$url" "$HEALTH_TIMEOUT_S"
    return
  fi
  until "$PYTHON_BIN" -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('$url', timeout=3).status == 200 else 1)" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "not healthy after ${HEALTH_TIMEOUT_S}s: see the logs"
    sleep 3
  done
  say "healthy: $url"
}

# fetch_sources DIR: DIR becomes a checkout of REPO_URL at REF: cloned the first time, fetched and
# checked out again on a re-run (an upgrade in place). Untracked files there (.env, data/, the venv
# and the build) are kept; local edits to tracked files are not: this is an install, not a workspace.
fetch_sources() {
  local dir="$1"
  case "$REPO_URL" in
    *"<owner>"*) die "no checkout beside deploy.sh and no repository to fetch: set REPO_URL=<git URL of mexc-pump-scanner>" ;;
  esac
  if ! command -v git >/dev/null 2>&1; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      say "installing git"
      run apt-get update -qq
      run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git
    elif [ "$DRY_RUN" = 0 ]; then
      die "git is needed to fetch the sources (Debian/Ubuntu: apt-get install git)"
    fi
  fi
  if [ -d "$dir/.git" ]; then
    say "upgrading the checkout in $dir to $REF of $REPO_URL"
    run git -C "$dir" remote set-url origin "$REPO_URL"
  elif [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    # An earlier install copied from a checkout: make it a checkout; its untracked files stay.
    say "making $dir a checkout of $REPO_URL"
    run git -C "$dir" init --quiet
    run git -C "$dir" remote add origin "$REPO_URL"
  else
    say "fetching $REPO_URL into $dir"
    run mkdir -p "$(dirname "$dir")"
    run git clone --quiet --no-checkout "$REPO_URL" "$dir"
  fi
  run git -C "$dir" fetch --quiet origin "$REF"
  run git -C "$dir" checkout --quiet --force --detach FETCH_HEAD
  [ "$DRY_RUN" = 1 ] || say "sources: $REF at $(git -C "$dir" rev-parse --short HEAD)"
}

deploy_docker() {
  if [ "$FETCH" = 1 ]; then
    PREFIX="${PREFIX:-/opt/mexc-pump-scanner}"
    SRC_DIR="$PREFIX/app"
    fetch_sources "$SRC_DIR"
  fi
  local compose=(docker compose --project-directory "$SRC_DIR" -f "$SRC_DIR/docker-compose.yml")
  if [ "$TRAINING" = 1 ]; then compose+=(--profile training); fi
  DATA_DIR="${DATA_DIR:-$SRC_DIR/data}"
  if ! command -v docker >/dev/null 2>&1; then
    is_root || [ "$DRY_RUN" = 1 ] || die "Docker is missing; run as root to install it, or use --systemd"
    say "installing Docker (get.docker.com)"
    run sh -c "curl -fsSL https://get.docker.com | sh"
  fi
  if [ "$DRY_RUN" = 0 ] && ! docker compose version >/dev/null 2>&1; then
    die "the docker compose plugin is missing (Debian/Ubuntu: apt-get install docker-compose-plugin)"
  fi
  run mkdir -p "$DATA_DIR"
  # The container runs as uid 10001 and must own its data volume.
  if is_root; then run chown -R 10001:10001 "$DATA_DIR"; fi
  write_env "$SRC_DIR/.env"
  [ "$START" = 1 ] || { say "built nothing started (--no-start)"; run "${compose[@]}" build; return; }
  run "${compose[@]}" up -d --build --remove-orphans
  wait_healthy_url "http://127.0.0.1:$(metrics_port)/healthz"
  say "logs:    docker compose logs -f scanner   (errors also in $DATA_DIR/alerts.log)"
  say "metrics: http://127.0.0.1:$(metrics_port)/metrics   dashboards: docker compose --profile monitoring up -d"
}

metrics_port() {
  local port="${METRICS_PORT-}"
  [ -n "$port" ] || port="$(existing_value "${ENV_FILE:-$SRC_DIR/.env}" METRICS_PORT)"
  printf '%s' "${port:-8000}"
}

render_unit() {
  local name="${1:-$UNIT_NAME}"
  if [ ! -f "$SRC_DIR/deploy/$name" ] && [ "$DRY_RUN" = 1 ]; then
    printf '    (deploy/%s of the fetched sources, with the paths above)\n' "$name"  # a dry run fetched nothing
    return
  fi
  sed -e "s|@APP_DIR@|$APP_DIR|g" -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@ENV_FILE@|$ENV_FILE|g" \
      -e "s|@USER@|$SERVICE_USER|g" -e "s|@GROUP@|$SERVICE_GROUP|g" "$SRC_DIR/deploy/$name"
}

deploy_systemd() {
  PREFIX="${PREFIX:-/opt/mexc-pump-scanner}"
  APP_DIR="$PREFIX/app"
  DATA_DIR="${DATA_DIR:-$PREFIX/data}"
  ENV_FILE="$PREFIX/.env"
  if [ "$USE_SYSTEMCTL" = 1 ]; then
    is_root || [ "$DRY_RUN" = 1 ] || die "installing a systemd unit needs root (or pass --no-systemctl)"
    command -v systemctl >/dev/null 2>&1 || [ "$DRY_RUN" = 1 ] || die "systemctl not found: is this a systemd host?"
  fi
  if [ -z "$SERVICE_USER" ]; then
    # A system user of its own when installing for real as root; the caller otherwise.
    if is_root && [ "$USE_SYSTEMCTL" = 1 ]; then SERVICE_USER=mexc-scanner; else SERVICE_USER="$(id -un)"; fi
  fi
  "$PYTHON_BIN" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
    || die "$PYTHON_BIN must be Python 3.11 or newer (set PYTHON=...)"
  command -v gcc >/dev/null 2>&1 || die "gcc is needed to build the Cython core (Debian/Ubuntu: apt-get install gcc python3-dev python3-venv)"
  if is_root && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    command -v useradd >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
    run useradd --system --home-dir "$PREFIX" --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
  SERVICE_GROUP="$(id -gn "$SERVICE_USER" 2>/dev/null || printf '%s' "$SERVICE_USER")"
  run mkdir -p "$APP_DIR" "$DATA_DIR"
  if [ "$FETCH" = 1 ]; then
    fetch_sources "$APP_DIR"
    SRC_DIR="$APP_DIR"
  fi
  if [ "$SRC_DIR" != "$APP_DIR" ]; then
    say "copying the sources to $APP_DIR (data, venv and builds are not copied)"
    if [ "$DRY_RUN" = 1 ]; then
      printf '+ tar -C %q --exclude=.git --exclude=.venv --exclude=data --exclude=build -cf - . | tar -C %q -xf -\n' "$SRC_DIR" "$APP_DIR"
    else
      tar -C "$SRC_DIR" --exclude=./.git --exclude=./.venv --exclude=./data --exclude=./build --exclude='*.so' -cf - . | tar -C "$APP_DIR" -xf -
    fi
  fi
  if [ "$DRY_RUN" = 1 ] || [ ! -x "$APP_DIR/.venv/bin/python" ]; then
    run "$PYTHON_BIN" -m venv "$APP_DIR/.venv"
  fi
  local requirements="requirements.txt"
  if [ "$TRAINING" = 1 ]; then requirements="requirements-train.txt"; fi  # + scikit-learn, scipy for the trainer
  run "$APP_DIR/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$APP_DIR/$requirements"
  run env -C "$APP_DIR" "$APP_DIR/.venv/bin/python" setup.py --quiet build_ext --inplace
  write_env "$ENV_FILE"
  if is_root; then run chown -R "$SERVICE_USER:$SERVICE_GROUP" "$DATA_DIR"; fi
  if [ "$USE_SYSTEMCTL" = 0 ]; then
    render_unit | write_file "$PREFIX/$UNIT_NAME" 644
    if [ "$TRAINING" = 1 ]; then
      for unit in "${TRAIN_UNITS[@]}"; do render_unit "$unit" | write_file "$PREFIX/$unit" 644; done
    fi
    say "unit written to $PREFIX/$UNIT_NAME (not installed: --no-systemctl)"
    say "start by hand: env \$(cat $ENV_FILE) SCANNER_DATA_DIR=$DATA_DIR $APP_DIR/.venv/bin/python -m supervisor --config $APP_DIR/config.yaml"
    return
  fi
  render_unit | write_file "$UNIT_DIR/$UNIT_NAME" 644
  if [ "$TRAINING" = 1 ]; then
    for unit in "${TRAIN_UNITS[@]}"; do render_unit "$unit" | write_file "$UNIT_DIR/$unit" 644; done
  fi
  run systemctl daemon-reload
  run systemctl enable "$UNIT_NAME"
  if [ "$TRAINING" = 1 ]; then run systemctl enable --now mexc-pump-scanner-train.timer; fi
  [ "$START" = 1 ] || { say "installed, not started (--no-start)"; return; }
  run systemctl restart "$UNIT_NAME"
  wait_healthy_url "http://127.0.0.1:$(metrics_port)/healthz"
  say "logs:    journalctl -u ${UNIT_NAME%.service} -f   (errors also in $DATA_DIR/alerts.log)"
  say "metrics: http://127.0.0.1:$(metrics_port)/metrics   reload config: systemctl reload ${UNIT_NAME%.service}"
}

# Everything runs from main, called on the last line: read from a pipe (curl | bash), bash has then
# parsed the whole script before the first action, so a download cut short runs nothing, and no
# command that reads stdin can swallow the rest of the script.
main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --docker) MODE=docker ;;
      --systemd) MODE=systemd ;;
      --dry-run) DRY_RUN=1 ;;
      --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift ;;
      --data-dir) [ $# -ge 2 ] || die "--data-dir needs a directory"; DATA_DIR="$2"; shift ;;
      --user) [ $# -ge 2 ] || die "--user needs a name"; SERVICE_USER="$2"; shift ;;
      --no-start) START=0 ;;
      --no-systemctl) USE_SYSTEMCTL=0 ;;
      --self-training) TRAINING=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  check_os
  case "$MODE" in
    docker) deploy_docker ;;
    systemd) deploy_systemd ;;
  esac
  say "done"
}

main "$@"
