# Shared by the scripts: install what the tests and benchmarks need when it is missing.
# Real third-party programs are installed (never mocked) and a failure to install is fatal.

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: $* (install them, or run as root so the scripts can)" >&2
    return 1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >&2; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_test_tools() {
  local need=()
  command -v python3 >/dev/null || need+=(python3)
  command -v psql >/dev/null || need+=(postgresql-client)
  command -v curl >/dev/null || need+=(curl)
  command -v promtool >/dev/null || need+=(prometheus)
  # validates compose.yml offline (no Docker engine runs on CI machines)
  command -v docker-compose >/dev/null || need+=(docker-compose)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
}
