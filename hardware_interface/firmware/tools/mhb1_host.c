/* Host harness of the MHB1 heater firmware: compiles stm32/mhb1_heater/main.c for the PC with
 * its registers as cells of this program, a MAX31855 that reads a modelled copper block, and the
 * block's heat balance, so tests can check the PID, ramp, trip and peristaltic stepper code that
 * QEMU cannot exercise (its STM32 machine has no thermocouple and no timers). Not flashed.
 *
 * stdin, one line at a time: a protocol request ("01 TMP*68"), answered on stdout, or
 *   #temp <C>      set the block temperature
 *   #offset <C>    the thermocouple reads this much high (over-temperature injection)
 *   #open <0|1>    the thermocouple is disconnected (MAX31855 fault bit)
 *   #run <s>       run the firmware's SysTick and the block for this many seconds
 *   #state         print "STATE block=<C> ramped=<C> pwm=<permille> step_hz=<Hz> dir=<0|1>
 *                  enable=<0|1>" (pin levels: DIR PB10, ENABLE PB11, which is active low)
 */
#include <stdio.h>
#include <stdlib.h>

#define MHB1_HOST 1
#define main mhb1_firmware_main
#include "main.c"
#undef main

/* The rig's heater block, as the simulated lab models it (hardware_interface/sim/rig.py). */
#define BLOCK_POWER_W 100.0
#define BLOCK_HEAT_CAPACITY_J_K 60.0
#define BLOCK_LOSS_W_K 0.30
#define AMBIENT_C 25.0

static double block_C = AMBIENT_C, offset_C = 0.0;
static int thermocouple_open = 0;

#define CELLS 64
static uint32_t cell_addr[CELLS];
static volatile uint32_t cell_value[CELLS];
static int cells_used = 0;
static uint32_t odr[2]; /* output levels of GPIOA, GPIOB */
static int pending = -1;     /* a BSRR/BRR cell written last: applied at the next access */
static unsigned spi_calls = 0;
static uint32_t spi_frame = 0;

static volatile uint32_t *cell(uint32_t addr) {
  for (int i = 0; i < cells_used; i++) {
    if (cell_addr[i] == addr) return &cell_value[i];
  }
  if (cells_used == CELLS) {
    fprintf(stderr, "too many registers\n");
    exit(1);
  }
  cell_addr[cells_used] = addr;
  cell_value[cells_used] = 0;
  return &cell_value[cells_used++];
}

static uint32_t thermocouple_frame(void) {
  if (thermocouple_open) return 0x00010001u; /* fault, open circuit */
  double reading = block_C + offset_C;
  int32_t quarter = (int32_t)(reading * 4.0 + (reading >= 0 ? 0.5 : -0.5));
  return ((uint32_t)quarter & 0x3FFFu) << 18;
}

/* A write to BSRR/BRR is only visible once it happened, i.e. at the next register access. */
static void settle(void) {
  if (pending < 0) return;
  uint32_t addr = cell_addr[pending], v = cell_value[pending];
  int port = (addr & ~0xFFu) == (GPIOA_BASE & ~0xFFu) ? 0 : 1;
  if ((addr & 0xFFu) == 0x10) {
    odr[port] = (odr[port] | (v & 0xFFFFu)) & ~(v >> 16);
  } else {
    odr[port] &= ~(v & 0xFFFFu);
  }
  cell_value[pending] = 0;
  pending = -1;
}

volatile uint32_t *host_reg(uint32_t addr) {
  settle();
  volatile uint32_t *c = cell(addr);
  if (addr == RCC_BASE + 0x00) *c |= RCC_CR_HSERDY | RCC_CR_PLLRDY; /* the crystal starts */
  if (addr == RCC_BASE + 0x04) *c = (*c & ~RCC_CFGR_SWS_MASK) | ((*c & 3u) << 2);
  if (addr == SPI1_BASE + 0x08) *c = SPI_SR_TXE | SPI_SR_RXNE;
  if (addr == USART1_BASE + 0x00) *c = USART_SR_TXE;
  if (addr == GPIOA_BASE + 0x14 || addr == GPIOB_BASE + 0x14 || addr == GPIOA_BASE + 0x10 ||
      addr == GPIOB_BASE + 0x10) {
    pending = (int)(c - cell_value);
    if (addr == GPIOA_BASE + 0x14) { /* chip select low: a new conversion is read out */
      spi_calls = 0;
      spi_frame = thermocouple_frame();
    }
  }
  if (addr == SPI1_BASE + 0x0C) {
    /* read_thermocouple writes DR (a dummy byte) then reads it, four times: every second access
     * is a read and gets the next byte of the frame, most significant first. */
    spi_calls++;
    if (spi_calls % 2 == 0) *c = (spi_frame >> (8 * (4 - spi_calls / 2))) & 0xFFu;
  }
  return c;
}

static void host_write(const char *data, size_t len) { fwrite(data, 1, len, stdout); }

static void run(double seconds) {
  long ticks = (long)(seconds * SYSTICK_HZ + 0.5);
  double dt = 1.0 / SYSTICK_HZ;
  for (long i = 0; i < ticks; i++) {
    SysTick_Handler();
    double power_W = BLOCK_POWER_W * power_permille / 1000.0;
    block_C += dt * (power_W - BLOCK_LOSS_W_K * (block_C - AMBIENT_C)) / BLOCK_HEAT_CAPACITY_J_K;
  }
}

static void print_state(void) {
  settle();
  double step_hz = 0.0;
  if (*cell(TIM3_BASE + 0x00) & TIM_CR1_CEN) {
    step_hz = (double)apb1_timer_hz /
              ((double)(*cell(TIM3_BASE + 0x28) + 1) * (double)(*cell(TIM3_BASE + 0x2C) + 1));
  }
  printf("STATE block=%.3f ramped=%.3f pwm=%u step_hz=%.4f dir=%u enable=%u\n", block_C,
         ramped_micro / 1e6, (unsigned)*cell(TIM2_BASE + 0x34), step_hz,
         (unsigned)(odr[1] >> 10) & 1u, (unsigned)(odr[1] >> 11) & 1u);
}

int main(void) {
  clock_init();
  pins_init();
  heater_pwm_init();
  set_heater_power(0);
  set_peristaltic(0);
  spi_init();
  mp_init(&proto, dispatch, host_write);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    double value;
    int flag;
    if (sscanf(line, "#temp %lf", &value) == 1) {
      block_C = value;
    } else if (sscanf(line, "#offset %lf", &value) == 1) {
      offset_C = value;
    } else if (sscanf(line, "#open %d", &flag) == 1) {
      thermocouple_open = flag;
    } else if (sscanf(line, "#run %lf", &value) == 1) {
      run(value);
    } else if (line[0] == '#' && line[1] == 's') {
      print_state();
    } else if (line[0] == '#') {
      fprintf(stderr, "unknown directive %s", line);
      return 2;
    } else {
      size_t n = 0;
      while (line[n]) n++;
      mp_feed(&proto, line, n);
    }
    fflush(stdout);
  }
  return 0;
}
