/* MHB1: STM32F103 (Blue Pill) heater board.
 *
 * - 100 W cartridge in a copper block, switched by a MOSFET on TIM2_CH1 PWM (1 kHz).
 * - K-type thermocouple through a MAX31855 on SPI1 (PA4 = CS).
 * - Peristaltic pump stepper: STEP on TIM3_CH1 (PA6), DIR on PB0, ENABLE on PB1.
 * - USB CDC (or USART1 at 115200 baud) speaking the MAOSIC line protocol
 *   (docs/firmware_protocol.md) through ../../common/maosic_protocol.c.
 *
 * A 2 Hz control tick (TIM4 interrupt) reads the thermocouple, advances the ramped setpoint,
 * runs the PID and trips the heater off above TRIP_C_MILLI or on an open thermocouple. The
 * trip latches until the host sends OFF. Generated with STM32CubeMX (HAL); only the user code is
 * shown, the CubeMX init functions (SystemClock_Config, MX_*_Init) are in the generated files.
 */
#include <string.h>

#include "maosic_protocol.h"
#include "stm32f1xx_hal.h"

#define FIRMWARE "1.0.0"
#define TICK_S_MILLI 500                /* control period, ms */
#define SETPOINT_MIN_C_MILLI 20000
#define SETPOINT_MAX_C_MILLI 250000
#define TRIP_C_MILLI 220000            /* over-temperature cut-out */
#define RAMP_MAX_MILLI 60000            /* °C/min x 1000 */
#define STABLE_BAND_C_MILLI 1000        /* ±1 °C ... */
#define STABLE_TICKS 120                /* ... held for 60 s */
#define PERISTALTIC_MAX_RPM_MILLI 100000
#define STEPS_PER_REV 3200

extern SPI_HandleTypeDef hspi1;
extern TIM_HandleTypeDef htim2, htim3, htim4;
extern UART_HandleTypeDef huart1;
void SystemClock_Config(void);
void MX_GPIO_Init(void);
void MX_SPI1_Init(void);
void MX_TIM2_Init(void);
void MX_TIM3_Init(void);
void MX_TIM4_Init(void);
void MX_USART1_UART_Init(void);

static mp_state proto;
static volatile int32_t temp_milli = 25000;   /* last thermocouple reading, °C x 1000 */
static volatile int32_t target_milli = 0;     /* the setpoint asked for */
static volatile int32_t ramped_milli = 0;     /* the setpoint the PID follows now */
static volatile int32_t ramp_milli = 10000;   /* °C/min x 1000 */
static volatile uint8_t heater_on = 0, tripped = 0;
static volatile int32_t power_permille = 0;
static volatile uint16_t stable_ticks = 0;
static int32_t kp_milli = 12000, ki_milli = 60, kd_milli = 20000; /* %/K, %/(K s), % s/K */
static int64_t integral = 0;
static int32_t last_error = 0;
static int32_t peristaltic_rpm_milli = 0;
static uint8_t rx_byte;

static void uart_write(const char *data, size_t len) {
  HAL_UART_Transmit(&huart1, (uint8_t *)data, (uint16_t)len, 100);
}

/* MAX31855: 32-bit frame, bits 31..18 = temperature in 0.25 °C, bit 16 = fault. */
static int read_thermocouple(int32_t *out_milli) {
  uint8_t raw[4];
  HAL_GPIO_WritePin(GPIOA, GPIO_PIN_4, GPIO_PIN_RESET);
  HAL_StatusTypeDef st = HAL_SPI_Receive(&hspi1, raw, 4, 10);
  HAL_GPIO_WritePin(GPIOA, GPIO_PIN_4, GPIO_PIN_SET);
  uint32_t frame = ((uint32_t)raw[0] << 24) | ((uint32_t)raw[1] << 16) | (raw[2] << 8) | raw[3];
  if (st != HAL_OK || (frame & 0x00010000u)) return -1;
  int32_t quarter = (int32_t)(frame >> 18);
  if (quarter & 0x2000) quarter -= 0x4000; /* sign-extend 14 bits */
  *out_milli = quarter * 250;
  return 0;
}

static void set_heater_power(int32_t permille) {
  if (permille < 0) permille = 0;
  if (permille > 1000) permille = 1000;
  power_permille = permille;
  __HAL_TIM_SET_COMPARE(&htim2, TIM_CHANNEL_1, (uint32_t)permille * htim2.Init.Period / 1000u);
}

static void heater_off(void) {
  heater_on = 0;
  integral = 0;
  set_heater_power(0);
  stable_ticks = 0;
}

/* The 2 Hz control tick. */
void HAL_TIM_PeriodElapsedCallback(TIM_HandleTypeDef *htim) {
  if (htim != &htim4) return;
  int32_t t;
  if (read_thermocouple(&t) != 0 || t > TRIP_C_MILLI) {
    tripped = 1; /* open thermocouple or over-temperature: cut the power, latch */
    heater_off();
    if (read_thermocouple(&t) == 0) temp_milli = t;
    return;
  }
  temp_milli = t;
  if (!heater_on) return;
  int32_t step = ramp_milli / 120; /* °C/min -> per 0.5 s tick */
  if (ramped_milli < target_milli) {
    ramped_milli = (target_milli - ramped_milli > step) ? ramped_milli + step : target_milli;
  } else if (ramped_milli > target_milli) {
    ramped_milli = (ramped_milli - target_milli > step) ? ramped_milli - step : target_milli;
  }
  int32_t error = ramped_milli - t; /* mK */
  integral += (int64_t)error * TICK_S_MILLI / 1000;
  /* anti-windup: keep the integral term within the output range */
  int64_t i_term = integral * ki_milli / 1000000;
  if (i_term > 100000) integral = 100000LL * 1000000 / (ki_milli ? ki_milli : 1);
  if (i_term < 0) integral = 0;
  int64_t out = (int64_t)kp_milli * error / 1000000 + integral * ki_milli / 1000000 +
                (int64_t)kd_milli * (error - last_error) * 1000 / TICK_S_MILLI / 1000000;
  last_error = error;
  set_heater_power((int32_t)(out * 10)); /* percent -> permille */
  int32_t off = t - target_milli;
  if (ramped_milli == target_milli && off <= STABLE_BAND_C_MILLI && off >= -STABLE_BAND_C_MILLI) {
    if (stable_ticks < STABLE_TICKS) stable_ticks++;
  } else {
    stable_ticks = 0;
  }
}

static int parse_arg(const mp_request *r, int i, int32_t *v, mp_reply *o) {
  if (i >= r->argc || mp_parse_fixed(r->args[i], v) != 0) {
    mp_reply_error_text(o, "bad argument");
    return MP_ERR_BAD_ARGUMENT;
  }
  return MP_OK;
}

static void set_peristaltic(int32_t rpm_milli) {
  peristaltic_rpm_milli = rpm_milli;
  if (rpm_milli == 0) {
    HAL_TIM_PWM_Stop(&htim3, TIM_CHANNEL_1);
    HAL_GPIO_WritePin(GPIOB, GPIO_PIN_1, GPIO_PIN_SET);
    return;
  }
  HAL_GPIO_WritePin(GPIOB, GPIO_PIN_0, rpm_milli > 0 ? GPIO_PIN_SET : GPIO_PIN_RESET);
  int32_t rpm = rpm_milli < 0 ? -rpm_milli : rpm_milli;
  /* step frequency = rpm * STEPS_PER_REV / 60; timer clock 1 MHz */
  uint32_t period = (uint32_t)(60000000000ULL / ((uint64_t)rpm * STEPS_PER_REV));
  __HAL_TIM_SET_AUTORELOAD(&htim3, period - 1);
  __HAL_TIM_SET_COMPARE(&htim3, TIM_CHANNEL_1, period / 2);
  HAL_GPIO_WritePin(GPIOB, GPIO_PIN_1, GPIO_PIN_RESET);
  HAL_TIM_PWM_Start(&htim3, TIM_CHANNEL_1);
}

static int dispatch(const mp_request *r, mp_reply *o) {
  int32_t v;
  int err;
  if (!strcmp(r->cmd, "ID")) {
    mp_reply_word(o, "MHB1");
    mp_reply_word(o, FIRMWARE);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "TSP")) {
    if ((err = parse_arg(r, 0, &v, o))) return err;
    if (tripped) {
      mp_reply_error_text(o, "tripped");
      return MP_ERR_HARDWARE_FAULT;
    }
    if (v < SETPOINT_MIN_C_MILLI || v > SETPOINT_MAX_C_MILLI) {
      mp_reply_error_text(o, "setpoint out of range");
      return MP_ERR_OUT_OF_RANGE;
    }
    __disable_irq();
    if (!heater_on) ramped_milli = temp_milli; /* ramp from where the block is */
    target_milli = v;
    heater_on = 1;
    stable_ticks = 0;
    __enable_irq();
    return MP_OK;
  }
  if (!strcmp(r->cmd, "RMP")) {
    if ((err = parse_arg(r, 0, &v, o))) return err;
    if (v <= 0 || v > RAMP_MAX_MILLI) {
      mp_reply_error_text(o, "ramp out of range");
      return MP_ERR_OUT_OF_RANGE;
    }
    ramp_milli = v;
    return MP_OK;
  }
  if (!strcmp(r->cmd, "OFF")) {
    __disable_irq();
    heater_off();
    tripped = 0; /* acknowledged; the next tick trips again if the reading is still too high */
    __enable_irq();
    return MP_OK;
  }
  if (!strcmp(r->cmd, "TMP")) {
    mp_reply_fixed(o, temp_milli, 1);
    if (heater_on) {
      mp_reply_fixed(o, target_milli, 1);
    } else {
      mp_reply_word(o, "OFF");
    }
    mp_reply_fixed(o, power_permille * 100, 1);
    mp_reply_word(o, (heater_on && stable_ticks >= STABLE_TICKS) ? "1" : "0");
    mp_reply_word(o, tripped ? "1" : "0");
    return MP_OK;
  }
  if (!strcmp(r->cmd, "PID")) {
    int32_t g[3];
    for (int i = 0; i < 3; i++) {
      if ((err = parse_arg(r, i, &g[i], o))) return err;
      if (g[i] < 0 || g[i] > 1000000) {
        mp_reply_error_text(o, "gain out of range");
        return MP_ERR_OUT_OF_RANGE;
      }
    }
    __disable_irq();
    kp_milli = g[0];
    ki_milli = g[1];
    kd_milli = g[2];
    integral = 0;
    __enable_irq();
    return MP_OK;
  }
  if (!strcmp(r->cmd, "GPD")) {
    mp_reply_fixed(o, kp_milli, 3); /* 3 decimals carried; the host asks 4, the 4th is 0 */
    mp_reply_fixed(o, ki_milli, 3);
    mp_reply_fixed(o, kd_milli, 3);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "PER")) {
    if ((err = parse_arg(r, 0, &v, o))) return err;
    if (v > PERISTALTIC_MAX_RPM_MILLI || v < -PERISTALTIC_MAX_RPM_MILLI) {
      mp_reply_error_text(o, "rpm out of range");
      return MP_ERR_OUT_OF_RANGE;
    }
    set_peristaltic(v);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "PRS")) {
    mp_reply_fixed(o, peristaltic_rpm_milli, 1);
    return MP_OK;
  }
  mp_reply_error_text(o, "unknown command");
  return MP_ERR_UNKNOWN_COMMAND;
}

void HAL_UART_RxCpltCallback(UART_HandleTypeDef *huart) {
  if (huart == &huart1) {
    mp_feed(&proto, (const char *)&rx_byte, 1);
    HAL_UART_Receive_IT(&huart1, &rx_byte, 1);
  }
}

int main(void) {
  HAL_Init();
  SystemClock_Config();
  MX_GPIO_Init();
  MX_SPI1_Init();
  MX_TIM2_Init();
  MX_TIM3_Init();
  MX_TIM4_Init();
  MX_USART1_UART_Init();
  set_heater_power(0);
  HAL_TIM_PWM_Start(&htim2, TIM_CHANNEL_1);
  set_peristaltic(0);
  mp_init(&proto, dispatch, uart_write);
  HAL_TIM_Base_Start_IT(&htim4);
  HAL_UART_Receive_IT(&huart1, &rx_byte, 1);
  for (;;) {
    __WFI(); /* everything happens in the UART and timer interrupts */
  }
}
