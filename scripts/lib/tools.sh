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
  # the notification tests deliver to a real Alertmanager; the page tests drive Debian's Chromium
  command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v node >/dev/null || need+=(nodejs)
  # the shipper tests send with real rsyslog (omfwd, omelasticsearch) and util-linux's logger
  command -v rsyslogd >/dev/null || need+=(rsyslog)
  [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so ] || ls /usr/lib/*/rsyslog/omelasticsearch.so >/dev/null 2>&1 \
    || need+=(rsyslog-elasticsearch)
  command -v logger >/dev/null || need+=(bsdutils)
  command -v npm >/dev/null || need+=(npm)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  ensure_otel_sdk
  ensure_shipper_clients
  ensure_schemathesis
  ensure_playwright
}

# playwright-core from npm drives /usr/bin/chromium for the page tests (tests/api/browser.rs)
# and `bench.sh ui`. playwright-core never downloads a browser; the variable makes sure of it.
ensure_playwright() {
  local dir="$PWD/.data/node"
  export LOGMON_PLAYWRIGHT="$dir/node_modules/playwright-core"
  if [ -f "$LOGMON_PLAYWRIGHT/package.json" ]; then return 0; fi
  echo "installing playwright-core into $dir" >&2
  mkdir -p "$dir"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --silent 'playwright-core@^1.65' >&2
  [ -f "$LOGMON_PLAYWRIGHT/package.json" ]
}

# A Python venv under .data/ with the given pip requirements; $1 = venv name, $2 = an import or
# command check, the rest = requirements. Fails loudly when it cannot be built.
ensure_venv() {
  local venv="$PWD/.data/$1" check=$2; shift 2
  if "$venv/bin/python" -c "$check" 2>/dev/null; then return 0; fi
  echo "installing $* into $venv" >&2
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >&2; then
    apt_install python3-venv python3-pip
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
  "$venv/bin/python" -c "$check"
}

# schemathesis drives the OpenAPI document against the server (tests/api/contract.rs).
ensure_schemathesis() {
  ensure_venv schemathesis-venv 'import schemathesis' 'schemathesis>=4.32,<5'
  export LOGMON_SCHEMATHESIS="$PWD/.data/schemathesis-venv/bin/schemathesis"
}

# The official OpenTelemetry Python SDK, in a venv under .data/ (the OTLP tests send with it).
ensure_otel_sdk() {
  local venv="$PWD/.data/otel-venv"
  export LOGMON_OTEL_PYTHON="$venv/bin/python"
  if "$LOGMON_OTEL_PYTHON" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
    return 0
  fi
  echo "installing the OpenTelemetry Python SDK into $venv" >&2
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >&2; then
    apt_install python3-venv python3-pip
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'opentelemetry-sdk>=1.30,<2' 'opentelemetry-exporter-otlp-proto-http>=1.30,<2' >&2
  "$LOGMON_OTEL_PYTHON" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http'
}

# The shippers' own client libraries the Loki and Elasticsearch tests send with: Python's
# python-logging-loki and the official elasticsearch client in a venv, winston-loki from npm.
ensure_shipper_clients() {
  local node="$PWD/.data/node"
  export LOGMON_SHIPPERS_PYTHON="$PWD/.data/shippers-venv/bin/python" LOGMON_NODE_MODULES="$node/node_modules"
  ensure_venv shippers-venv 'import logging_loki, elasticsearch.helpers' 'python-logging-loki==0.3.1' 'elasticsearch>=9,<10'
  if ! node -e "require('$node/node_modules/winston-loki'); require('$node/node_modules/winston')" 2>/dev/null; then
    echo "installing winston and winston-loki into $node" >&2
    mkdir -p "$node"
    npm install --silent --no-audit --no-fund --prefix "$node" 'winston@3' 'winston-loki@6' >&2
    node -e "require('$node/node_modules/winston-loki'); require('$node/node_modules/winston')"
  fi
}
