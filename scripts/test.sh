#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh Debian machine, starts a
# throwaway MariaDB server, runs the whole suite on SQLite and on MariaDB, and stops the server.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` or `bash scripts/test.sh -k queue`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

need_pkgs=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server mariadb-client)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
# Firmware tests (tests/firmware): build the Uno and STM32 images, run them in simavr and QEMU.
command -v avr-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-avr binutils-avr)
[ -e /usr/lib/avr/include/avr/io.h ] || need_pkgs+=(avr-libc)
[ -e /usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h ] || need_pkgs+=(arduino-core-avr)
[ -e /usr/include/simavr/sim_avr.h ] || need_pkgs+=(libsimavr-dev)
[ -e /usr/include/libelf.h ] || need_pkgs+=(libelf-dev)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-arm-none-eabi binutils-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/include/string.h ] || need_pkgs+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need_pkgs+=(qemu-system-arm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
ensure_venv

DB_DIR=$(mktemp -d /tmp/maosic-mariadb.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SOCK="$DB_DIR/mysqld.sock"
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
stop_db() {
  if [ -f "$DB_DIR/pid" ]; then kill "$(cat "$DB_DIR/pid")" 2>/dev/null || true; fi
  if [ -n "${DB_PID:-}" ]; then wait "$DB_PID" 2>/dev/null || true; fi
  rm -rf "$DB_DIR"
}
trap stop_db EXIT

echo "== starting a throwaway MariaDB server on 127.0.0.1:$PORT ($DB_DIR)"
mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --auth-root-authentication-method=normal \
  --user=root >"$DB_DIR/install.log" 2>&1 || { cat "$DB_DIR/install.log"; exit 1; }
"$MARIADBD" --no-defaults --datadir="$DB_DIR/data" --socket="$SOCK" --port="$PORT" \
  --bind-address=127.0.0.1 --user=root --pid-file="$DB_DIR/pid" --skip-log-bin \
  --innodb-buffer-pool-size=128M --max-connections=400 --log-error="$DB_DIR/error.log" &
DB_PID=$!
for _ in $(seq 1 60); do
  mariadb --no-defaults -uroot --socket="$SOCK" -e "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.5
done
mariadb --no-defaults -uroot --socket="$SOCK" -e "
  CREATE USER IF NOT EXISTS 'maosic'@'127.0.0.1' IDENTIFIED BY 'maosic';
  GRANT ALL PRIVILEGES ON *.* TO 'maosic'@'127.0.0.1';" \
  || { echo "MariaDB did not start:"; cat "$DB_DIR/error.log"; exit 1; }

export MAOSIC_TEST_MYSQL_URL="mysql+pymysql://maosic:maosic@127.0.0.1:$PORT/"
export MAOSIC_TEST_MYSQL_SOCKET="$SOCK"
export MAOSIC_TEST_MYSQL_DATADIR="$DB_DIR/data"
export MAOSIC_TEST_REQUIRE_MYSQL=1
export MAOSIC_TEST_ARTIFACTS="$ROOT/test-artifacts"
mkdir -p "$MAOSIC_TEST_ARTIFACTS"

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== pytest (SQLite and MariaDB)"
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
status=$?
set -e
# pytest exit 5 means no test ran: that is a failure here, never a pass.
if [ $status -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi
exit $status
