/* MHB1: STM32F103C8 (Blue Pill) heater board, register-level (no HAL, no CubeMX files).
 *
 * - 100 W cartridge in a copper block, switched by a logic-level MOSFET on PA0 (TIM2_CH1 PWM,
 *   1 kHz); the gate has a pull-down, so a board in reset leaves the heater off.
 * - K-type thermocouple through a MAX31855 on SPI1: SCK PA5, MISO PA6, chip select PA4.
 * - Peristaltic pump stepper driver (STEP/DIR/ENABLE, e.g. A4988): STEP on PB0 (TIM3_CH3),
 *   DIR on PB10, ENABLE on PB11 (active low). PA6 is SPI1's MISO, so STEP cannot be TIM3_CH1.
 * - USART1 at 115200 baud 8N1 (TX PA9, RX PA10) speaking the MAOSIC line protocol
 *   (docs/firmware_protocol.md) through ../../common/maosic_protocol.c.
 * - 8 MHz crystal, PLL x9: 72 MHz core, APB1 36 MHz (timers 72 MHz), APB2 72 MHz. Without a
 *   working crystal the board runs on the internal 8 MHz oscillator instead of hanging.
 *
 * A 2 Hz control tick (from SysTick) reads the thermocouple, advances the ramped setpoint, runs
 * the PID and trips the heater off above TRIP_C_MILLI or on an open thermocouple. The trip
 * latches until the host sends OFF. Received bytes are queued by the USART interrupt and parsed
 * in the main loop, so a reply being sent never delays the control tick.
 */
#include <string.h>

#include "maosic_protocol.h"
#include "stm32f103.h"

#define FIRMWARE "1.0.0"
#define HSE_HZ 8000000u
#define HSI_HZ 8000000u
#define BAUD 115200u
#define SYSTICK_HZ 100u
#define TICK_MS 500                /* control period */
#define SETPOINT_MIN_C_MILLI 20000
#define SETPOINT_MAX_C_MILLI 250000
#define TRIP_C_MILLI 220000        /* over-temperature cut-out */
#define RAMP_MAX_MILLI 60000       /* °C/min x 1000 */
#define STABLE_BAND_C_MILLI 1000   /* ±1 °C ... */
#define STABLE_TICKS 120           /* ... held for 60 s */
#define PERISTALTIC_MAX_RPM_MILLI 100000
#define STEPS_PER_REV 3200         /* 200-step motor at 1/16 microstepping */
#define GAIN_PLACES 4              /* gains travel with 4 decimals */
#define GAIN_MAX 10000000          /* 1000 in units of 1e-4 */
#define PWM_PERIOD 1000            /* TIM2 counts per PWM period: power in permille */
#define SPIN_LIMIT 100000u         /* busy-wait bound for a peripheral that never answers */

static mp_state proto;
static uint32_t core_hz = HSI_HZ, apb1_timer_hz = HSI_HZ;

/* Shared between the control tick (SysTick) and the command handlers (main loop): the handlers
 * change them with interrupts off. Temperatures in °C x 1000, the ramped setpoint in °C x 1e6 so
 * that the slowest ramp (0.1 °C/min, 833 u°C per tick) still moves. */
static volatile int32_t temp_milli = 25000;
static volatile int32_t target_milli = 0;
static volatile int32_t ramped_micro = 0;
static volatile int32_t ramp_milli = 10000;
static volatile uint8_t heater_on = 0, tripped = 0;
static volatile int32_t power_permille = 0;
static volatile uint16_t stable_ticks = 0;
/* %/K, %/(K s), % s/K, in units of 1e-4: the rig's defaults (hardware_interface/sim/rig.py) */
static volatile int32_t kp_e4 = 120000, ki_e4 = 600, kd_e4 = 200000;
static int64_t integral_mks = 0; /* sum of error x dt, mK s */
static int32_t last_error = 0;
static int32_t peristaltic_rpm_milli = 0;
static volatile uint16_t systicks = 0;

#define RX_SIZE 128
static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint8_t rx_head = 0, rx_tail = 0;

/* --- clocks and pins ------------------------------------------------------------------------ */

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value) {
  for (uint32_t i = 0; i < SPIN_LIMIT; i++) {
    if ((*reg & mask) == value) return 1;
  }
  return 0;
}

static void clock_init(void) {
  RCC_CR |= RCC_CR_HSEON;
  if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) return; /* no crystal: stay on HSI */
  FLASH_ACR = FLASH_ACR_PRFTBE | FLASH_ACR_LATENCY_2; /* 2 wait states above 48 MHz */
  RCC_CFGR = RCC_CFGR_PLLSRC_HSE | RCC_CFGR_PLLMUL9 | RCC_CFGR_PPRE1_DIV2;
  RCC_CR |= RCC_CR_PLLON;
  if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) return;
  RCC_CFGR |= RCC_CFGR_SW_PLL;
  if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) return;
  core_hz = HSE_HZ * 9;
  apb1_timer_hz = core_hz; /* APB1 at core/2; its timers run at twice that */
}

static void gpio_mode(uint32_t base, unsigned pin, uint32_t mode) {
  volatile uint32_t *cr = pin < 8 ? &GPIO_CRL(base) : &GPIO_CRH(base);
  unsigned shift = (pin % 8) * 4;
  *cr = (*cr & ~(0xFu << shift)) | (mode << shift);
}

static void pins_init(void) {
  RCC_APB2ENR |= RCC_APB2ENR_AFIOEN | RCC_APB2ENR_IOPAEN | RCC_APB2ENR_IOPBEN |
                 RCC_APB2ENR_SPI1EN | RCC_APB2ENR_USART1EN;
  RCC_APB1ENR |= RCC_APB1ENR_TIM2EN | RCC_APB1ENR_TIM3EN;
  GPIO_BSRR(GPIOA_BASE) = 1u << 4;   /* thermocouple chip select idle high */
  GPIO_BSRR(GPIOB_BASE) = 1u << 11;  /* stepper driver disabled */
  gpio_mode(GPIOA_BASE, 0, GPIO_MODE_AF_PP_50MHZ);  /* TIM2_CH1: heater MOSFET */
  gpio_mode(GPIOA_BASE, 4, GPIO_MODE_OUT_PP_2MHZ);  /* MAX31855 CS */
  gpio_mode(GPIOA_BASE, 5, GPIO_MODE_AF_PP_50MHZ);  /* SPI1_SCK */
  gpio_mode(GPIOA_BASE, 6, GPIO_MODE_IN_FLOATING);  /* SPI1_MISO */
  gpio_mode(GPIOA_BASE, 9, GPIO_MODE_AF_PP_50MHZ);  /* USART1_TX */
  gpio_mode(GPIOA_BASE, 10, GPIO_MODE_IN_FLOATING); /* USART1_RX */
  gpio_mode(GPIOB_BASE, 0, GPIO_MODE_AF_PP_50MHZ);  /* TIM3_CH3: stepper STEP */
  gpio_mode(GPIOB_BASE, 10, GPIO_MODE_OUT_PP_2MHZ); /* stepper DIR */
  gpio_mode(GPIOB_BASE, 11, GPIO_MODE_OUT_PP_2MHZ); /* stepper ENABLE (low = on) */
}

/* --- heater output ------------------------------------------------------------------------ */

static void heater_pwm_init(void) {
  TIM_PSC(TIM2_BASE) = apb1_timer_hz / 1000000u - 1u; /* 1 MHz count */
  TIM_ARR(TIM2_BASE) = PWM_PERIOD - 1;                /* 1 kHz PWM */
  TIM_CCR1(TIM2_BASE) = 0;
  TIM_CCMR1(TIM2_BASE) = TIM_CCMR_OC_PWM1_PRELOAD;
  TIM_CCER(TIM2_BASE) = TIM_CCER_CC1E;
  TIM_EGR(TIM2_BASE) = TIM_EGR_UG;
  TIM_CR1(TIM2_BASE) = TIM_CR1_ARPE | TIM_CR1_CEN;
}

static void set_heater_power(int32_t permille) {
  if (permille < 0) permille = 0;
  if (permille > 1000) permille = 1000;
  power_permille = permille;
  TIM_CCR1(TIM2_BASE) = (uint32_t)permille * PWM_PERIOD / 1000u;
}

static void heater_off(void) {
  heater_on = 0;
  integral_mks = 0;
  set_heater_power(0);
  stable_ticks = 0;
}

/* Any unexpected interrupt or fault: whatever state the program is in, the heater must not stay
 * on, so drive the MOSFET gate low as a plain output and park the core. */
void Default_Handler(void) {
  irq_disable();
  TIM_CCR1(TIM2_BASE) = 0;
  GPIO_BRR(GPIOA_BASE) = 1u << 0;
  gpio_mode(GPIOA_BASE, 0, GPIO_MODE_OUT_PP_2MHZ);
  for (;;) {
  }
}

/* --- thermocouple --------------------------------------------------------------------------- */

static void spi_init(void) {
  /* MAX31855: mode 0, at most 5 MHz (datasheet): APB2 / 16 = 4.5 MHz at 72 MHz. */
  SPI1_CR1 = SPI_CR1_MSTR | SPI_CR1_BR_DIV16 | SPI_CR1_SSM | SPI_CR1_SSI | SPI_CR1_SPE;
}

static int spi_read_byte(uint8_t *out) {
  if (!wait_set(&SPI1_SR, SPI_SR_TXE, SPI_SR_TXE)) return -1;
  SPI1_DR = 0; /* the MAX31855 only talks: clock out a dummy byte to read one */
  if (!wait_set(&SPI1_SR, SPI_SR_RXNE, SPI_SR_RXNE)) return -1;
  *out = (uint8_t)SPI1_DR;
  return 0;
}

/* MAX31855 (datasheet): 32-bit frame, bits 31..18 = thermocouple temperature in 0.25 °C
 * (signed), bit 16 = fault (open, short to GND or VCC). */
static int read_thermocouple(int32_t *out_milli) {
  uint8_t raw[4];
  int ok = 0;
  GPIO_BRR(GPIOA_BASE) = 1u << 4;
  for (int i = 0; i < 4; i++) ok |= spi_read_byte(&raw[i]);
  GPIO_BSRR(GPIOA_BASE) = 1u << 4;
  uint32_t frame = ((uint32_t)raw[0] << 24) | ((uint32_t)raw[1] << 16) |
                   ((uint32_t)raw[2] << 8) | raw[3];
  if (ok != 0 || (frame & 0x00010000u)) return -1;
  int32_t quarter = (int32_t)(frame >> 18);
  if (quarter & 0x2000) quarter -= 0x4000; /* sign-extend 14 bits */
  *out_milli = quarter * 250;
  return 0;
}

/* --- control tick --------------------------------------------------------------------------- */

static void control_tick(void) {
  int32_t t;
  if (read_thermocouple(&t) != 0 || t > TRIP_C_MILLI) {
    tripped = 1; /* open thermocouple or over-temperature: cut the power, latch */
    heater_off();
    if (read_thermocouple(&t) == 0) temp_milli = t;
    return;
  }
  temp_milli = t;
  if (!heater_on) return;
  int32_t step = ramp_milli * 1000 / (60000 / TICK_MS); /* °C/min x 1000 -> u°C per tick */
  int32_t target_micro = target_milli * 1000;
  if (ramped_micro < target_micro) {
    ramped_micro = (target_micro - ramped_micro > step) ? ramped_micro + step : target_micro;
  } else if (ramped_micro > target_micro) {
    ramped_micro = (ramped_micro - target_micro > step) ? ramped_micro - step : target_micro;
  }
  int32_t error = ramped_micro / 1000 - t; /* mK */
  integral_mks += (int64_t)error * TICK_MS / 1000;
  /* anti-windup: keep the integral term within 0..100 % of the output */
  int64_t ki = ki_e4;
  if (ki > 0 && integral_mks * ki > 1000000000LL) integral_mks = 1000000000LL / ki;
  if (integral_mks < 0) integral_mks = 0;
  /* gains x 1e4 times errors in mK: terms in units of 1e-7 %; permille = sum / 1e6 */
  int64_t out = (int64_t)kp_e4 * error + ki * integral_mks +
                (int64_t)kd_e4 * (error - last_error) * 1000 / TICK_MS;
  last_error = error;
  set_heater_power((int32_t)(out / 1000000));
  int32_t off = t - target_milli;
  if (ramped_micro == target_micro && off <= STABLE_BAND_C_MILLI && off >= -STABLE_BAND_C_MILLI) {
    if (stable_ticks < STABLE_TICKS) stable_ticks++;
  } else {
    stable_ticks = 0;
  }
}

void SysTick_Handler(void) {
  if (++systicks >= SYSTICK_HZ * TICK_MS / 1000) {
    systicks = 0;
    control_tick();
  }
}

/* --- peristaltic pump ----------------------------------------------------------------------- */

static void set_peristaltic(int32_t rpm_milli) {
  peristaltic_rpm_milli = rpm_milli;
  if (rpm_milli == 0) {
    TIM_CR1(TIM3_BASE) = 0;
    GPIO_BSRR(GPIOB_BASE) = 1u << 11; /* driver disabled: no holding current in the tube */
    return;
  }
  GPIO_BSRR(GPIOB_BASE) = rpm_milli > 0 ? (1u << 10) : (1u << (10 + 16));
  uint32_t rpm = (uint32_t)(rpm_milli < 0 ? -rpm_milli : rpm_milli);
  /* step rate = rpm x STEPS_PER_REV / 60; the period in timer counts spans 16 bits only at the
   * fastest speeds, so the prescaler grows for slow ones (0.001 rpm: 1.35e9 counts). */
  uint64_t counts = (uint64_t)apb1_timer_hz * 60000u / ((uint64_t)rpm * STEPS_PER_REV);
  uint32_t psc = (uint32_t)((counts + 65535u) / 65536u);
  if (psc == 0) psc = 1;
  uint32_t period = (uint32_t)(counts / psc);
  if (period < 2) period = 2;
  TIM_CR1(TIM3_BASE) = 0;
  TIM_PSC(TIM3_BASE) = psc - 1;
  TIM_ARR(TIM3_BASE) = period - 1;
  TIM_CCR3(TIM3_BASE) = period / 2;
  TIM_CCMR2(TIM3_BASE) = TIM_CCMR_OC_PWM1_PRELOAD;
  TIM_CCER(TIM3_BASE) = TIM_CCER_CC3E;
  TIM_EGR(TIM3_BASE) = TIM_EGR_UG;
  GPIO_BRR(GPIOB_BASE) = 1u << 11; /* driver enabled */
  TIM_CR1(TIM3_BASE) = TIM_CR1_ARPE | TIM_CR1_CEN;
}

/* --- serial line ---------------------------------------------------------------------------- */

static void usart_init(void) {
  uint32_t pclk2 = core_hz; /* APB2 runs undivided */
  USART1_BRR = (pclk2 + BAUD / 2) / BAUD;
  USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
  NVIC_ISER(USART1_IRQn / 32) = 1u << (USART1_IRQn % 32);
}

void USART1_IRQHandler(void) {
  uint32_t sr = USART1_SR;
  if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
    uint8_t byte = (uint8_t)USART1_DR; /* reading DR also clears an overrun */
    uint8_t next = (uint8_t)((rx_head + 1) % RX_SIZE);
    /* A full queue drops the byte: the line then fails its checksum and the host resends. */
    if (next != rx_tail) {
      rx_buf[rx_head] = byte;
      rx_head = next;
    }
  }
}

static void uart_write(const char *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (!wait_set(&USART1_SR, USART_SR_TXE, USART_SR_TXE)) return;
    USART1_DR = (uint8_t)data[i];
  }
}

/* --- commands (checks, order and ER texts as hardware_interface/sim/emulators/heater.py) ------ */

static int range_error(mp_reply *o, const char *what, int32_t value_milli) {
  mp_error_word(o, what);
  mp_error_word(o, " ");
  mp_error_number(o, value_milli, MP_SHORTEST);
  mp_error_word(o, " out of range");
  return MP_ERR_OUT_OF_RANGE;
}

static int cmd_setpoint(const mp_request *r, mp_reply *o) {
  int32_t v;
  int err;
  if ((err = mp_arg_fixed(r, 0, "setpoint_C", &v, o))) return err;
  if (tripped) {
    mp_reply_error_text(o, "tripped");
    return MP_ERR_HARDWARE_FAULT;
  }
  if (v < SETPOINT_MIN_C_MILLI || v > SETPOINT_MAX_C_MILLI) return range_error(o, "setpoint", v);
  irq_disable();
  if (!heater_on) ramped_micro = temp_milli * 1000; /* ramp from where the block is */
  target_milli = v;
  heater_on = 1;
  stable_ticks = 0;
  irq_enable();
  return MP_OK;
}

static int cmd_ramp(const mp_request *r, mp_reply *o) {
  int32_t v;
  int err;
  if ((err = mp_arg_fixed(r, 0, "ramp_C_min", &v, o))) return err;
  if (v <= 0 || v > RAMP_MAX_MILLI) return range_error(o, "ramp", v);
  ramp_milli = v;
  return MP_OK;
}

static int cmd_set_pid(const mp_request *r, mp_reply *o) {
  static const char *const names[3] = {"kp", "ki", "kd"};
  int32_t g[3];
  for (int i = 0; i < 3; i++) {
    if (i >= r->argc || mp_parse_decimal(r->args[i], GAIN_PLACES, &g[i]) != 0) {
      return mp_error_argument(o, r, i, names[i]);
    }
  }
  for (int i = 0; i < 3; i++) {
    if (g[i] < 0) {
      mp_reply_error_text(o, "negative gain");
      return MP_ERR_OUT_OF_RANGE;
    }
  }
  for (int i = 0; i < 3; i++) {
    if (g[i] > GAIN_MAX) {
      mp_error_word(o, names[i]);
      mp_error_word(o, " must be in [0, 1000], got ");
      mp_error_number(o, g[i] / 10, MP_SHORTEST); /* 1e-4 -> 1e-3 units */
      return MP_ERR_OUT_OF_RANGE;
    }
  }
  irq_disable();
  kp_e4 = g[0];
  ki_e4 = g[1];
  kd_e4 = g[2];
  integral_mks = 0;
  irq_enable();
  return MP_OK;
}

static int cmd_peristaltic(const mp_request *r, mp_reply *o) {
  int32_t v;
  int err;
  if ((err = mp_arg_fixed(r, 0, "rpm", &v, o))) return err;
  if (v > PERISTALTIC_MAX_RPM_MILLI || v < -PERISTALTIC_MAX_RPM_MILLI) {
    return range_error(o, "rpm", v);
  }
  set_peristaltic(v);
  return MP_OK;
}

static int dispatch(const mp_request *r, mp_reply *o) {
  if (!strcmp(r->cmd, "ID")) {
    mp_reply_word(o, "MHB1");
    mp_reply_word(o, FIRMWARE);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "TSP")) return cmd_setpoint(r, o);
  if (!strcmp(r->cmd, "RMP")) return cmd_ramp(r, o);
  if (!strcmp(r->cmd, "OFF")) {
    irq_disable();
    heater_off();
    tripped = 0; /* acknowledged; the next tick trips again if the reading is still too high */
    irq_enable();
    return MP_OK;
  }
  if (!strcmp(r->cmd, "TMP")) {
    irq_disable();
    int32_t t = temp_milli, target = target_milli, power = power_permille;
    int on = heater_on, stable = heater_on && stable_ticks >= STABLE_TICKS, trip = tripped;
    irq_enable();
    mp_reply_fixed(o, t, 1);
    if (on) {
      mp_reply_fixed(o, target, 1);
    } else {
      mp_reply_word(o, "OFF");
    }
    mp_reply_fixed(o, power * 100, 1);
    mp_reply_word(o, stable ? "1" : "0");
    mp_reply_word(o, trip ? "1" : "0");
    return MP_OK;
  }
  if (!strcmp(r->cmd, "PID")) return cmd_set_pid(r, o);
  if (!strcmp(r->cmd, "GPD")) {
    mp_reply_decimal(o, kp_e4, GAIN_PLACES);
    mp_reply_decimal(o, ki_e4, GAIN_PLACES);
    mp_reply_decimal(o, kd_e4, GAIN_PLACES);
    return MP_OK;
  }
  if (!strcmp(r->cmd, "PER")) return cmd_peristaltic(r, o);
  if (!strcmp(r->cmd, "PRS")) {
    mp_reply_fixed(o, peristaltic_rpm_milli, 1);
    return MP_OK;
  }
  return mp_error_unknown_command(o, r);
}

int main(void) {
  clock_init();
  pins_init();
  heater_pwm_init();
  set_heater_power(0);
  set_peristaltic(0);
  spi_init();
  mp_init(&proto, dispatch, uart_write);
  usart_init();
  SYST_RVR = core_hz / SYSTICK_HZ - 1u;
  SYST_CVR = 0;
  SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
  for (;;) {
    /* Sleep until an interrupt, but never with a byte waiting: with interrupts masked, WFI
     * still wakes on a pending one, so no byte can slip in between the check and the sleep. */
    irq_disable();
    if (rx_head == rx_tail) wait_for_interrupt();
    irq_enable();
    while (rx_tail != rx_head) {
      char c = (char)rx_buf[rx_tail];
      rx_tail = (uint8_t)((rx_tail + 1) % RX_SIZE);
      mp_feed(&proto, &c, 1);
    }
  }
}
