// MSP1: syringe pump board. One 0.5 mL glass syringe on a lead screw driven by a stepper
// (1/16 microstepping). Speaks the MAOSIC line protocol at 115200 baud
// (docs/firmware_protocol.md). Build: bash scripts/build_firmware.sh avr (or, in the Arduino IDE,
// copy ../../common/maosic_protocol.{h,c} into this sketch folder). Calibrate NL_PER_STEP for the
// syringe and lead screw in use.
extern "C" {
#include "maosic_protocol.h"
}

static const char FIRMWARE[] = "1.0.0";
static const uint8_t PIN_STEP = 3, PIN_DIR = 4, PIN_ENABLE = 5, PIN_HOME = 2;
static const int32_t CAPACITY_NL = 500000;       // 0.5 mL
static const int32_t NL_PER_STEP = 5;            // 60 mm stroke, 0.8 mm lead, 1/16 steps
static const int32_t MAX_RATE_NL_MIN = 5000000;  // 5 mL/min

static mp_state proto;
static int32_t volume_nl = 0;  // what the syringe holds
static int32_t steps_left = 0;
static int8_t direction = 0;   // +1 withdraw (fill), -1 infuse
static uint32_t step_interval_us = 0, last_step_us = 0;

static void serial_write(const char *data, size_t len) { Serial.write(data, len); }

static int cmd_move(const mp_request *r, mp_reply *o, int8_t dir) {
  int32_t ul_milli, rate_milli;  // uL x 1000 = nL; uL/min x 1000 = nL/min
  int err;
  // The checks and their order follow the emulator (hardware_interface/sim/emulators/pump.py),
  // so a host sees the same ER reply from the board and from the simulated lab.
  if ((err = mp_arg_fixed(r, 0, "volume_uL", &ul_milli, o))) return err;
  if ((err = mp_arg_fixed(r, 1, "rate_uL_min", &rate_milli, o))) return err;
  if (steps_left) {
    mp_reply_error_text(o, "busy");
    return MP_ERR_BUSY;
  }
  if (rate_milli <= 0 || rate_milli > MAX_RATE_NL_MIN) {
    mp_error_word(o, "rate ");
    mp_error_number(o, rate_milli, MP_SHORTEST);
    mp_error_word(o, " uL/min out of range");
    return MP_ERR_OUT_OF_RANGE;
  }
  if (ul_milli <= 0) {
    mp_error_word(o, "volume ");
    mp_error_number(o, ul_milli, MP_SHORTEST);
    mp_error_word(o, " uL out of range");
    return MP_ERR_OUT_OF_RANGE;
  }
  // 50 nL of slack: the host rounds volumes to 0.1 uL on the wire
  if (dir > 0 && volume_nl + ul_milli > CAPACITY_NL + 50) {
    mp_error_word(o, "over-fill ");
    mp_error_number(o, volume_nl, 1);
    mp_error_word(o, "+");
    mp_error_number(o, ul_milli, 1);
    mp_error_word(o, " uL");
    return MP_ERR_OUT_OF_RANGE;
  }
  if (dir < 0 && ul_milli > volume_nl + 50) {
    mp_error_word(o, "empty: holds ");
    mp_error_number(o, volume_nl, 1);
    mp_error_word(o, " uL");
    return MP_ERR_OUT_OF_RANGE;
  }
  direction = dir;
  steps_left = ul_milli / NL_PER_STEP;
  // microseconds per step = 60e6 * NL_PER_STEP / rate(nL/min)
  step_interval_us = (uint32_t)(60000000ULL * NL_PER_STEP / (uint32_t)rate_milli);
  digitalWrite(PIN_DIR, dir > 0 ? HIGH : LOW);
  digitalWrite(PIN_ENABLE, LOW);
  last_step_us = micros();
  // duration in ms = volume / rate * 60000, rounded to the nearest ms
  mp_reply_fixed(o, (int32_t)(((int64_t)ul_milli * 60000 + rate_milli / 2) / rate_milli), 3);
  return MP_OK;
}

static int dispatch(const mp_request *r, mp_reply *o) {
  if (!strcmp(r->cmd, "ID")) {
    mp_reply_word(o, "MSP1");
    mp_reply_fixed(o, CAPACITY_NL, 1);
    mp_reply_word(o, FIRMWARE);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "INF")) return cmd_move(r, o, -1);
  if (!strcmp(r->cmd, "WDR")) return cmd_move(r, o, +1);
  if (!strcmp(r->cmd, "STP")) {
    steps_left = 0;
    digitalWrite(PIN_ENABLE, HIGH);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "STA")) {
    mp_reply_word(o, steps_left ? "1" : "0");
    mp_reply_fixed(o, volume_nl, 1);
    return MP_OK;
  }
  return mp_error_unknown_command(o, r);
}

void setup() {
  pinMode(PIN_STEP, OUTPUT);
  pinMode(PIN_DIR, OUTPUT);
  pinMode(PIN_ENABLE, OUTPUT);
  pinMode(PIN_HOME, INPUT_PULLUP);
  digitalWrite(PIN_ENABLE, HIGH);
  Serial.begin(115200);
  // Home: drive the plunger down until the end switch closes; the syringe is then empty.
  digitalWrite(PIN_DIR, LOW);
  digitalWrite(PIN_ENABLE, LOW);
  for (int32_t i = 0; i < CAPACITY_NL / NL_PER_STEP + 200 && digitalRead(PIN_HOME); i++) {
    digitalWrite(PIN_STEP, HIGH);
    delayMicroseconds(2);
    digitalWrite(PIN_STEP, LOW);
    delayMicroseconds(300);
  }
  digitalWrite(PIN_ENABLE, HIGH);
  volume_nl = 0;
  mp_init(&proto, dispatch, serial_write);
}

void loop() {
  while (Serial.available()) {
    char c = (char)Serial.read();
    mp_feed(&proto, &c, 1);
  }
  if (steps_left && micros() - last_step_us >= step_interval_us) {
    last_step_us += step_interval_us;
    if (direction < 0 && !digitalRead(PIN_HOME)) {  // plunger bottomed out: stop, it is empty
      steps_left = 0;
      volume_nl = 0;
      digitalWrite(PIN_ENABLE, HIGH);
      return;
    }
    digitalWrite(PIN_STEP, HIGH);
    delayMicroseconds(2);
    digitalWrite(PIN_STEP, LOW);
    volume_nl += direction * NL_PER_STEP;
    if (--steps_left == 0) digitalWrite(PIN_ENABLE, HIGH);
  }
}
