#!/usr/bin/env bash
# Builds every firmware image from this repository into build/firmware/ (ELF and HEX, plus a
# raw .bin of the STM32 image for st-flash), prints each image's flash and RAM use against its
# chip's limits and fails on any compiler warning. Missing Debian packages are installed first.
#
# Usage: bash scripts/build_firmware.sh [avr] [arm] [sim]
#   avr  the two Arduino Uno images (MAB1 valve/stepper board, MSP1 syringe pump board)
#   arm  the STM32F103C8 heater board image (MHB1)
#   sim  host test programs: simavr_uno runs an Uno image in simavr behind a pseudo-terminal,
#        mhb1_host runs the heater firmware's code on the PC against a modelled block (tests)
#   (no argument: avr and arm)
# FIRMWARE_BUILD_DIR overrides the output folder (the tests build into a temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FW="$ROOT/hardware_interface/firmware"
OUT=${FIRMWARE_BUILD_DIR:-$ROOT/build/firmware}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(avr arm)
for t in "${targets[@]}"; do
  case $t in avr | arm | sim) ;; *) echo "unknown target '$t' (avr, arm, sim)" >&2; exit 2 ;; esac
done
bash "$ROOT/scripts/install_firmware_tools.sh" "${targets[@]}"
mkdir -p "$OUT"

# Print "<image> flash <used>/<limit> B (<pct>%)  RAM <used>/<limit> B (<pct>%)" and fail when an
# image does not fit: a sketch that overflows RAM links fine and then crashes on the board.
report_size() {  # report_size <name> <flash used> <flash limit> <ram used> <ram limit>
  local name=$1 flash=$2 flash_max=$3 ram=$4 ram_max=$5
  printf '%-12s flash %6d / %6d B (%3d%%)   RAM %5d / %5d B (%3d%%)\n' "$name" "$flash" \
    "$flash_max" $((flash * 100 / flash_max)) "$ram" "$ram_max" $((ram * 100 / ram_max))
  if [ "$flash" -gt "$flash_max" ] || [ "$ram" -gt "$ram_max" ]; then
    echo "$name does not fit its chip" >&2
    exit 1
  fi
}

# Sum the sizes of the named sections from `size -A` output.
section_sum() {  # section_sum <size tool> <elf> <section regex>
  "$1" -A "$2" | awk -v re="$3" '$1 ~ re { s += $2 } END { print s + 0 }'
}

# Compile quietly but stop on the first warning: -Werror turns each one into a failure.
WARN=(-Wall -Wextra -Werror)

build_avr() {
  local core=/usr/share/arduino/hardware/arduino/avr/cores/arduino
  local variant=/usr/share/arduino/hardware/arduino/avr/variants/standard
  # The Uno's board definition (boards.txt of the Arduino AVR core): ATmega328P at 16 MHz.
  local mcu=(-mmcu=atmega328p -DF_CPU=16000000L -DARDUINO=10807 -DARDUINO_AVR_UNO
    -DARDUINO_ARCH_AVR)
  local common=(-Os -g -flto -ffunction-sections -fdata-sections "${mcu[@]}" "-I$core"
    "-I$variant" "-I$FW/common")
  local cflags=(-std=gnu11 "${common[@]}")
  local cxxflags=(-std=gnu++11 -fno-exceptions -fno-threadsafe-statics "${common[@]}")
  local obj="$OUT/obj/arduino-core"
  mkdir -p "$obj"
  # The Arduino core is built as the Arduino IDE builds it (its own warning setting, none):
  # it is vendor code from the arduino-core-avr package, not ours to fix.
  # gcc-avr 5.4's <float.h> defines DECIMAL_DIG for C99 only, while the packaged core's
  # WString.cpp (written for avr-gcc 7) uses it in C++: give it the same compiler-provided value.
  local core_fix=(-DDECIMAL_DIG=__DECIMAL_DIG__)
  local core_objs=()
  for src in "$core"/*.c "$core"/*.cpp "$core"/*.S; do
    local o="$obj/$(basename "$src").o"
    case $src in
      *.c) avr-gcc -c -w "${cflags[@]}" "$src" -o "$o" ;;
      *.cpp) avr-g++ -c -w "${cxxflags[@]}" "${core_fix[@]}" "$src" -o "$o" ;;
      *.S) avr-gcc -c -x assembler-with-cpp -flto "${mcu[@]}" "-I$core" "-I$variant" "$src" \
        -o "$o" ;;
    esac
    core_objs+=("$o")
  done
  rm -f "$obj/core.a"
  avr-gcc-ar rcs "$obj/core.a" "${core_objs[@]}"

  for sketch in mab1_board msp1_pump; do
    local dir="$FW/arduino/$sketch" sobj="$OUT/obj/$sketch"
    mkdir -p "$sobj"
    # An .ino is C++ that the Arduino IDE prefixes with Arduino.h: do the same.
    avr-g++ -c "${WARN[@]}" "${cxxflags[@]}" -x c++ -include Arduino.h "$dir/$sketch.ino" \
      -o "$sobj/$sketch.o"
    avr-gcc -c "${WARN[@]}" "${cflags[@]}" "$FW/common/maosic_protocol.c" \
      -o "$sobj/maosic_protocol.o"
    avr-gcc "${WARN[@]}" -Os -g -flto -fuse-linker-plugin -Wl,--gc-sections "${mcu[@]}" \
      -o "$OUT/$sketch.elf" "$sobj/$sketch.o" "$sobj/maosic_protocol.o" "$obj/core.a" -lm
    avr-objcopy -O ihex -R .eeprom "$OUT/$sketch.elf" "$OUT/$sketch.hex"
    # Flash holds .text and the initial values of .data; RAM holds .data and .bss (the stack
    # takes what is left). 32256 B: the Uno's 32 KB less the 512 B Optiboot bootloader.
    report_size "$sketch" "$(section_sum avr-size "$OUT/$sketch.elf" '^[.](text|data)$')" 32256 \
      "$(section_sum avr-size "$OUT/$sketch.elf" '^[.](data|bss|noinit)$')" 2048
  done
}

build_arm() {
  local dir="$FW/stm32/mhb1_heater" sobj="$OUT/obj/mhb1_heater"
  mkdir -p "$sobj"
  local flags=(-mcpu=cortex-m3 -mthumb -Os -g -std=c99 -ffunction-sections -fdata-sections
    -ffreestanding "-I$FW/common" "-I$dir")
  local objs=()
  for src in "$dir"/*.c "$FW/common/maosic_protocol.c"; do
    local o="$sobj/$(basename "$src" .c).o"
    arm-none-eabi-gcc -c "${WARN[@]}" "${flags[@]}" "$src" -o "$o"
    objs+=("$o")
  done
  # newlib-nano's string functions only; no syscalls, no heap.
  arm-none-eabi-gcc "${WARN[@]}" -mcpu=cortex-m3 -mthumb -nostartfiles --specs=nano.specs \
    --specs=nosys.specs -Wl,--gc-sections -Wl,--fatal-warnings -T "$dir/stm32f103c8.ld" \
    -Wl,-Map="$sobj/mhb1_heater.map" -o "$OUT/mhb1_heater.elf" "${objs[@]}"
  arm-none-eabi-objcopy -O ihex "$OUT/mhb1_heater.elf" "$OUT/mhb1_heater.hex"
  arm-none-eabi-objcopy -O binary "$OUT/mhb1_heater.elf" "$OUT/mhb1_heater.bin"
  # The linker script reserves the stack as a section, so RAM here includes it.
  local elf="$OUT/mhb1_heater.elf"
  report_size mhb1_heater \
    "$(section_sum arm-none-eabi-size "$elf" '^[.](isr_vector|text|rodata|data|ARM[.]exidx)$')" \
    65536 "$(section_sum arm-none-eabi-size "$elf" '^[.](data|bss|stack)$')" 20480
}

build_sim() {
  # A host program: warnings are errors here too, simavr's own headers included.
  # shellcheck disable=SC2046
  gcc -std=gnu11 -O2 "${WARN[@]}" $(pkg-config --cflags simavr) \
    -o "$OUT/simavr_uno" "$FW/tools/simavr_uno.c" $(pkg-config --libs simavr) -lelf -lpthread
  gcc -std=gnu11 -O2 "${WARN[@]}" "-I$FW/stm32/mhb1_heater" "-I$FW/common" -o "$OUT/mhb1_host" \
    "$FW/tools/mhb1_host.c" "$FW/common/maosic_protocol.c"
  echo "simavr_uno, mhb1_host: host test programs built"
}

for t in "${targets[@]}"; do
  "build_$t"
done
echo "images in $OUT"
