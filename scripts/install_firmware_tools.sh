#!/usr/bin/env bash
# Installs the Debian packages that build and simulate the firmware, when they are missing:
#   avr   gcc-avr, avr-libc, arduino-core-avr (the Arduino Uno core the sketches build on)
#   arm   gcc-arm-none-eabi with its newlib
#   sim   what the tests simulate the boards with: libsimavr-dev + libelf-dev (the Uno images
#         run in simavr), qemu-system-arm (the heater image runs in QEMU)
# Usage: bash scripts/install_firmware_tools.sh [avr] [arm] [sim]   (no argument: all three)
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(avr arm sim)

need=()
want() {  # want <check command or file> <packages...>
  local probe=$1
  shift
  if [[ $probe == /* ]]; then
    [ -e "$probe" ] && return 0
  else
    command -v "$probe" >/dev/null 2>&1 && return 0
  fi
  need+=("$@")
}
for group in "${groups[@]}"; do
  case $group in
    avr)
      want avr-gcc gcc-avr binutils-avr
      want /usr/lib/avr/include/avr/io.h avr-libc
      want /usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h arduino-core-avr
      ;;
    sim)
      want /usr/include/simavr/sim_avr.h libsimavr-dev
      want /usr/include/libelf.h libelf-dev
      want pkg-config pkg-config
      want gcc gcc
      want qemu-system-arm qemu-system-arm
      ;;
    arm)
      want arm-none-eabi-gcc gcc-arm-none-eabi binutils-arm-none-eabi
      want /usr/lib/arm-none-eabi/include/string.h libnewlib-arm-none-eabi
      ;;
    *) echo "unknown group '$group' (avr, sim, arm)" >&2; exit 2 ;;
  esac
done

if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
