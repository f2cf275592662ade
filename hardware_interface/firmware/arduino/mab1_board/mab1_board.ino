// MAB1: Arduino Uno board with a stepper driver (STEP/DIR, e.g. A4988) and two normally-closed
// 12 V gas valves switched by logic-level MOSFETs. Speaks the MAOSIC line protocol at 57600 baud
// (docs/firmware_protocol.md). Build: bash scripts/build_firmware.sh avr (or copy
// ../../common/maosic_protocol.{h,c} into this sketch folder and use the Arduino IDE / arduino-cli
// with the board arduino:avr:uno).
extern "C" {
#include "maosic_protocol.h"
}

static const char FIRMWARE[] = "1.0.0";
static const uint8_t PIN_STEP = 3, PIN_DIR = 4, PIN_ENABLE = 5;
static const uint8_t PIN_VALVE[2] = {8, 9};
static const int32_t MAX_STEPS = 100000;
static const int32_t MAX_SPEED_STEPS_S = 2000;

static mp_state proto;
static bool valve_open[2] = {false, false};
static volatile int32_t position_steps = 0;
static int32_t steps_left = 0;
static int8_t step_dir = 1;
static uint32_t step_interval_us = 0, last_step_us = 0;

static void serial_write(const char *data, size_t len) { Serial.write(data, len); }

// The checks, their order and their ER texts follow the emulator
// (hardware_interface/sim/emulators/arduino.py), so the host sees one behaviour from both.
static int cmd_valve(const mp_request *r, mp_reply *o) {
  if (r->argc < 2 || (r->args[0][0] != '1' && r->args[0][0] != '2') || r->args[0][1] ||
      (r->args[1][0] != '0' && r->args[1][0] != '1') || r->args[1][1]) {
    mp_reply_error_text(o, "usage VLV <1|2> <0|1>");
    return MP_ERR_BAD_ARGUMENT;
  }
  uint8_t i = r->args[0][0] - '1';
  valve_open[i] = r->args[1][0] == '1';
  digitalWrite(PIN_VALVE[i], valve_open[i] ? HIGH : LOW);
  return MP_OK;
}

static int cmd_move(const mp_request *r, mp_reply *o) {
  int32_t steps_milli, speed_milli;  // both x 1000: the speed may have a fraction
  int err;
  if ((err = mp_arg_fixed(r, 0, "steps", &steps_milli, o))) return err;
  if ((err = mp_arg_fixed(r, 1, "speed", &speed_milli, o))) return err;
  if (steps_milli % 1000 != 0 || steps_milli > MAX_STEPS * 1000 ||
      steps_milli < -MAX_STEPS * 1000 || speed_milli < 1000 ||
      speed_milli > MAX_SPEED_STEPS_S * 1000) {
    mp_reply_error_text(o, "steps or speed out of range");
    return MP_ERR_OUT_OF_RANGE;
  }
  if (steps_left) {
    mp_reply_error_text(o, "busy");
    return MP_ERR_BUSY;
  }
  int32_t steps = steps_milli / 1000;
  step_dir = steps < 0 ? -1 : 1;
  digitalWrite(PIN_DIR, steps < 0 ? LOW : HIGH);
  steps_left = steps < 0 ? -steps : steps;
  step_interval_us = (uint32_t)(1000000000ULL / (uint32_t)speed_milli);
  last_step_us = micros();
  digitalWrite(PIN_ENABLE, LOW);
  // duration in ms = steps / speed * 1000, rounded to the nearest ms
  int64_t duration_ms = ((int64_t)steps_left * 1000000 + speed_milli / 2) / speed_milli;
  mp_reply_fixed(o, (int32_t)duration_ms, 3);
  return MP_OK;
}

static int dispatch(const mp_request *r, mp_reply *o) {
  if (!strcmp(r->cmd, "ID")) {
    mp_reply_word(o, "MAB1");
    mp_reply_word(o, FIRMWARE);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "VLV")) return cmd_valve(r, o);
  if (!strcmp(r->cmd, "VLS")) {
    mp_reply_word(o, valve_open[0] ? "1" : "0");
    mp_reply_word(o, valve_open[1] ? "1" : "0");
    return MP_OK;
  }
  if (!strcmp(r->cmd, "MOV")) return cmd_move(r, o);
  if (!strcmp(r->cmd, "STS")) {
    mp_reply_fixed(o, position_steps * 1000, 0);
    mp_reply_word(o, steps_left ? "1" : "0");
    return MP_OK;
  }
  if (!strcmp(r->cmd, "HLT")) {
    steps_left = 0;
    for (uint8_t i = 0; i < 2; i++) {
      valve_open[i] = false;
      digitalWrite(PIN_VALVE[i], LOW);
    }
    return MP_OK;
  }
  return mp_error_unknown_command(o, r);
}

void setup() {
  pinMode(PIN_STEP, OUTPUT);
  pinMode(PIN_DIR, OUTPUT);
  pinMode(PIN_ENABLE, OUTPUT);
  digitalWrite(PIN_ENABLE, HIGH);  // driver disabled until a move
  for (uint8_t i = 0; i < 2; i++) {
    pinMode(PIN_VALVE[i], OUTPUT);
    digitalWrite(PIN_VALVE[i], LOW);  // valves closed at power-up
  }
  Serial.begin(57600);
  mp_init(&proto, dispatch, serial_write);
}

void loop() {
  while (Serial.available()) {
    char c = (char)Serial.read();
    mp_feed(&proto, &c, 1);
  }
  if (steps_left && micros() - last_step_us >= step_interval_us) {
    last_step_us += step_interval_us;
    digitalWrite(PIN_STEP, HIGH);
    delayMicroseconds(2);
    digitalWrite(PIN_STEP, LOW);
    position_steps += step_dir;
    if (--steps_left == 0) digitalWrite(PIN_ENABLE, HIGH);
  }
}
