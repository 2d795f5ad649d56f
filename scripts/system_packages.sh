#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when missing: nats-server (the
# monitor's JetStream tests start their own server), MPICH with its headers and libclang (the
# `mpi` feature binds the system MPI through bindgen; the data-parallel tests run mpiexec).
set -euo pipefail
missing=()
command -v nats-server > /dev/null || missing+=(nats-server)
command -v mpiexec > /dev/null || missing+=(mpich)
dpkg -s libmpich-dev > /dev/null 2>&1 || missing+=(libmpich-dev)
dpkg -s libclang-dev > /dev/null 2>&1 || missing+=(libclang-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
{ "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"; } > /dev/null || {
  echo "error: cannot install ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
}
