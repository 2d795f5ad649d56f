#!/usr/bin/env bash
# A throwaway PostgreSQL server with pgvector, for the tests of `--store postgres://…`.
#
#   scripts/pg_test_server.sh start DIR   # stdout: postgres://positio@127.0.0.1:PORT/positio_test
#   scripts/pg_test_server.sh stop DIR
#
# What it installs, and why this way:
# - PostgreSQL 15 is Debian 12's own (apt package postgresql-15, installed only if missing).
# - Debian 12 has no pgvector package (neither does bookworm-backports), and no registry we can
#   reach ships a prebuilt pgvector for PostgreSQL 15 on Debian 12. Debian 13 (trixie) packages
#   pgvector, so its source package (pgvector 0.8.0-1, pinned; apt checks it against the signed
#   archive, and the script checks the upstream tarball's sha256) is fetched with `apt-get source`
#   through a private apt configuration under DIR (the system's apt sources stay untouched), and
#   compiled against the headers of the installed PostgreSQL version. Those headers come from the
#   postgresql-server-dev-15 .deb, unpacked under DIR rather than installed, because installing it
#   pulls clang and LLVM (hundreds of MB) that a plain C build of pgvector does not need. gcc,
#   make and libc6-dev are installed if missing. The result (vector.so, vector.control, its SQL
#   files) goes into PostgreSQL's system directories with `make install`, once per machine.
# - initdb refuses to run as root, and CI runs as root: then the server runs as an unprivileged
#   user the script creates (positio-pg). Otherwise it runs as the current user, and installing
#   (only needed once per machine) requires root or password-less sudo.
# - The server listens on 127.0.0.1 only (no Unix socket), with trust authentication, on $PGPORT
#   if set, else on 54329 or the next free port. It is a test server: fsync is off.
# - `start` is idempotent: what is installed is not installed again, and a server already
#   running in DIR is reused. Everything but the URL goes to stderr.
# - Set PGVECTOR_DEB_VERSION to build another pgvector version that trixie carries; if the pinned
#   one has left the archive (a Debian point release replaced it) the script builds trixie's
#   current one and says so.
set -euo pipefail

PG_MAJOR=15
PGVECTOR_DEB_VERSION=${PGVECTOR_DEB_VERSION:-0.8.0-1}
# sha256 of pgvector_0.8.0.orig.tar.gz (pgvector's upstream v0.8.0 release, as Debian carries it).
PGVECTOR_ORIG_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
PGVECTOR_SUITE=trixie
OS_USER=positio-pg
DB_USER=positio
DB_NAME=positio_test
DEFAULT_PORT=54329
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PGLIB=/usr/lib/postgresql/$PG_MAJOR/lib
PGSHARE=/usr/share/postgresql/$PG_MAJOR

# Only the URL goes to the real stdout (fd 3); everything else, our commands' output included,
# goes to stderr.
exec 3>&1 1>&2

log() { echo "pg_test_server: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

cmd=${1:-}
DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ] || [ $# -ne 2 ]; then
  die "usage: $0 start|stop DIR"
fi
if [ "$cmd" = start ]; then mkdir -p "$DIR"; fi
if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd); fi
DATA=$DIR/data
LOGDIR=$DIR/log
# The server's user may not be able to enter the caller's working directory.
cd /

is_root() { [ "$(id -u)" = 0 ]; }

# Run as root: directly, or through password-less sudo.
as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "installing needs root (or password-less sudo): $*"
  fi
}

# Run as the server's owner.
as_owner() {
  if is_root; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
}

apt_install() {
  log "apt-get install $*"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# apt refuses to drop privileges to _apt for a download into a folder only root can write.
APT_AS_ROOT=()
if is_root; then APT_AS_ROOT=(-o APT::Sandbox::User=root); fi

vector_installed() {
  [ -f "$PGLIB/vector.so" ] && [ -f "$PGSHARE/extension/vector.control" ]
}

# PostgreSQL, and the C toolchain if pgvector is to be built: one apt-get install for all.
install_packages() {
  local missing=()
  if ! [ -x "$PGBIN/postgres" ] || ! [ -x "$PGBIN/pg_config" ] || ! [ -x "$PGBIN/psql" ]; then
    missing+=("postgresql-$PG_MAJOR")
    # The package would otherwise create (and on some machines start) a default cluster.
    if [ ! -e /etc/postgresql-common/createcluster.d/positio-no-main-cluster.conf ]; then
      as_root mkdir -p /etc/postgresql-common/createcluster.d
      echo 'create_main_cluster = false' |
        as_root tee /etc/postgresql-common/createcluster.d/positio-no-main-cluster.conf >/dev/null
    fi
  fi
  if ! vector_installed; then
    command -v gcc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    [ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]}, and there is no apt-get to install them"
    apt_install "${missing[@]}"
  fi
}

# The URI of the Debian archive that apt is configured with (the one serving this release).
debian_archive_uri() {
  local codename uri
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  # shellcheck disable=SC2016 # apt's format, not the shell's
  uri=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' |
    awk -v c="$codename" '$2 == c && $3 == "deb" { print $1; exit }')
  [ -n "$uri" ] || die "found no apt source for Debian '$codename' to fetch pgvector's source from"
  echo "$uri"
}

install_pgvector() {
  vector_installed && return
  local b=$DIR/build
  rm -rf "$b"
  mkdir -p "$b/apt/lists/partial" "$b/apt/cache/archives/partial" "$b/apt/sources.list.d" "$b/dev"

  # Headers of the installed PostgreSQL version: postgresql-server-dev's, unpacked only.
  local incdir=/usr/include/postgresql/$PG_MAJOR/server
  if ! dpkg-query -W -f='${Status}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null | grep -q 'ok installed'; then
    local pgver dev
    pgver=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
    dev="postgresql-server-dev-$PG_MAJOR=$pgver"
    log "fetching $dev (headers only)"
    apt-cache show "$dev" >/dev/null 2>&1 || apt_update_once
    if ! (cd "$b" && apt-get "${APT_AS_ROOT[@]}" download -qq "$dev"); then
      # Same major version: extensions built against any 15.x run on any 15.y.
      log "$dev is not in the archive (any more); taking the current postgresql-server-dev-$PG_MAJOR"
      apt_update_once
      (cd "$b" && apt-get "${APT_AS_ROOT[@]}" download -qq "postgresql-server-dev-$PG_MAJOR")
    fi
    dpkg-deb -x "$b"/postgresql-server-dev-"$PG_MAJOR"_*.deb "$b/dev"
    incdir=$b/dev$incdir
  fi

  # pgvector's source from Debian trixie, through a private apt configuration.
  local uri
  uri=$(debian_archive_uri)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $PGVECTOR_SUITE main" \
    >"$b/apt/sources.list"
  local apt_src=(
    -o "Dir::Etc::sourcelist=$b/apt/sources.list" -o "Dir::Etc::sourceparts=$b/apt/sources.list.d"
    -o "Dir::State::Lists=$b/apt/lists" -o "Dir::Cache=$b/apt/cache" "${APT_AS_ROOT[@]}"
  )
  log "fetching the index of $PGVECTOR_SUITE's source packages"
  apt-get "${apt_src[@]}" update -qq
  log "fetching pgvector $PGVECTOR_DEB_VERSION's source"
  if ! (cd "$b" && apt-get "${apt_src[@]}" source --download-only -qq "pgvector=$PGVECTOR_DEB_VERSION"); then
    log "pgvector $PGVECTOR_DEB_VERSION is no longer in $PGVECTOR_SUITE; taking $PGVECTOR_SUITE's current pgvector"
    (cd "$b" && apt-get "${apt_src[@]}" source --download-only -qq pgvector)
  fi
  local orig
  orig=$(ls "$b"/pgvector_*.orig.tar.*)
  if [ "$orig" = "$b/pgvector_${PGVECTOR_DEB_VERSION%-*}.orig.tar.gz" ]; then
    echo "$PGVECTOR_ORIG_SHA256  $orig" | sha256sum -c --quiet - || die "pgvector's source has an unexpected sha256"
  fi
  tar -xf "$orig" -C "$b"
  local src
  src=$(ls -d "$b"/pgvector-*/)

  # Portable code (no -march=native, as Debian builds it), and no LLVM bitcode (Debian's
  # PostgreSQL build would want clang for it; the JIT works without it).
  local mk=(
    -C "$src" "PG_CONFIG=$PGBIN/pg_config" "includedir_server=$incdir"
    with_llvm=no OPTFLAGS=
  )
  log "building pgvector ($(basename "$src"))"
  make "${mk[@]}" -j"$(nproc)" >"$b/build.log" 2>&1 || {
    tail -n 40 "$b/build.log" >&2
    die "building pgvector failed (log: $b/build.log)"
  }
  as_root make "${mk[@]}" install >>"$b/build.log" 2>&1 || {
    tail -n 20 "$b/build.log" >&2
    die "installing pgvector failed (log: $b/build.log)"
  }
  vector_installed || die "pgvector was built but is not where PostgreSQL looks for it"
  rm -rf "$b"
}

# Root: an unprivileged user must own the data and be able to reach DIR.
prepare_owner() {
  is_root || return 0
  if ! id "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
  fi
  # Let others enter (not list) each folder on the way to DIR that the user cannot enter.
  local d="" part
  local IFS=/
  for part in ${DIR#/}; do
    d=$d/$part
    if ! runuser -u "$OS_USER" -- test -x "$d"; then
      log "chmod o+x $d (so that $OS_USER can reach $DIR)"
      chmod o+x "$d"
    fi
  done
}

# Run a command with only stdin, stdout and stderr open: the server it starts must not hold the
# caller's pipes (our fd 3 is the caller's stdout, and a `$(…)` would wait for it forever).
without_inherited_fds() {
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    "$@"
  )
}

port_busy() { (exec 4<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_running() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_() {
  PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_USER" "$@"
}

start() {
  install_packages
  install_pgvector
  prepare_owner

  if server_running; then
    PORT=$(sed -n 4p "$DATA/postmaster.pid")
    log "reusing the server already running in $DATA on port $PORT"
  else
    if [ -f "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$PG_MAJOR" ]; then
      log "$DATA holds a PostgreSQL $(cat "$DATA/PG_VERSION") cluster: starting over"
      rm -rf "$DATA"
    fi
    mkdir -p "$LOGDIR"
    if is_root; then chown "$OS_USER:" "$LOGDIR"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      rm -rf "$DATA"
      mkdir -m 700 "$DATA"
      if is_root; then chown "$OS_USER:" "$DATA"; fi
      log "initdb $DATA"
      as_owner "$PGBIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-locale >/dev/null
      cat >>"$DATA/postgresql.conf" <<'EOF'

# pg_test_server.sh: a throwaway test server.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    elif is_root && [ "$(stat -c %U "$DATA")" != "$OS_USER" ]; then
      chown -R "$OS_USER:" "$DATA"
    fi
    local tries=0
    while :; do
      if [ -n "${PGPORT:-}" ]; then
        PORT=$PGPORT
        ! port_busy "$PORT" || die "port $PORT (from PGPORT) is taken"
      else
        PORT=$DEFAULT_PORT
        while port_busy "$PORT"; do PORT=$((PORT + 1)); done
      fi
      log "starting PostgreSQL on 127.0.0.1:$PORT (log: $LOGDIR/server.log)"
      if without_inherited_fds as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOGDIR/server.log" -w -t 60 \
        -o "-p $PORT" start >/dev/null; then
        break
      fi
      tries=$((tries + 1))
      tail -n 20 "$LOGDIR/server.log" >&2 || true
      # Someone may have taken the port between the check and the start.
      if [ -n "${PGPORT:-}" ] || [ "$tries" -ge 3 ]; then die "PostgreSQL did not start"; fi
    done
  fi

  if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    psql_ -d postgres -c "CREATE DATABASE $DB_NAME"
  fi
  psql_ -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS vector"
  local versions
  versions=$(psql_ -d "$DB_NAME" -tAc "SELECT current_setting('server_version') || ', pgvector ' || extversion
    || ', cosine distance check: ' || ('[1,2,3]'::vector <=> '[1,2,3]'::vector) FROM pg_extension WHERE extname = 'vector'")
  log "ready: PostgreSQL $versions"
  echo "postgres://$DB_USER@127.0.0.1:$PORT/$DB_NAME" >&3
}

stop() {
  if [ -x "$PGBIN/pg_ctl" ] && server_running; then
    log "stopping the server in $DATA"
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  else
    log "no server running in $DATA"
  fi
}

case $cmd in
start) start ;;
stop) stop ;;
*) die "usage: $0 start|stop DIR" ;;
esac
