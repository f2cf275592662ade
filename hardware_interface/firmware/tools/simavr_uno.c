/* Runs an Arduino Uno firmware image (ATmega328P at 16 MHz) in simavr, in real time, with its
 * UART0 bridged to a new pseudo-terminal, so the project's pyserial drivers talk to the firmware
 * exactly as they talk to a board on /dev/ttyACM0. Not flashed anywhere: a test harness.
 *
 *   simavr_uno [--speed X] [--home-switch] image.elf
 *
 * Prints "PTY <path of the pseudo-terminal>" on stdout, then runs until killed (or until
 * its parent dies). --speed X runs X simulated seconds per wall second (default 1, real time, so
 * the drivers' timeouts and the board's motion times mean what they mean on the bench).
 *
 * --home-switch models the MSP1 syringe mechanics: STEP pulses on D3 with DIR on D4 move the
 * plunger (DIR high draws liquid in), and the home end switch on D2 (active low) closes when the
 * plunger is all the way down. Without a model the switch input would float high and the pump's
 * homing run at power-up would take its full 30 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"

#define F_CPU_HZ 16000000UL
#define CHUNK_CYCLES (F_CPU_HZ / 1000) /* 1 ms of simulated time between pty polls */
/* Bytes written before the sketch's setup() has opened the UART would be lost on a real board
 * as well; hold the host's bytes until the firmware has had this long to boot. */
#define BOOT_CYCLES (F_CPU_HZ / 20)
#define RX_BUFFER 4096

static volatile sig_atomic_t stop_requested = 0;
static int master_fd = -1;
static avr_t *avr;
static avr_irq_t *uart_input;

static uint8_t to_avr[RX_BUFFER];
static size_t to_avr_head = 0, to_avr_len = 0;
static int uart_xoff = 0;

static uint8_t from_avr[RX_BUFFER];
static size_t from_avr_len = 0;

/* --home-switch plunger model: position in steps above the home switch. */
static int home_switch = 0;
static int32_t plunger_steps = 0;
static int dir_high = 0, step_high = 0;
static avr_irq_t *home_pin;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void feed_uart(void) {
  /* The UART's input FIFO holds 64 bytes; it says XOFF when full and XON when it drains. */
  while (!uart_xoff && to_avr_len) {
    uint8_t byte = to_avr[to_avr_head];
    to_avr_head = (to_avr_head + 1) % RX_BUFFER;
    to_avr_len--;
    avr_raise_irq(uart_input, byte);
  }
}

static void on_uart_output(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  if (from_avr_len < RX_BUFFER) from_avr[from_avr_len++] = (uint8_t)value;
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)value;
  (void)param;
  uart_xoff = 0;
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)value;
  (void)param;
  uart_xoff = 1;
}

static void drive_home_switch(void) {
  int level = plunger_steps > 0 ? 1 : 0; /* the switch closes (pulls low) at the bottom */
  /* simavr lets a write of the pull-up bit override a level raised on the pin before, so the
   * level is also declared as the pin's external state, which the pull-up logic respects. */
  avr_ioport_external_t ext = {.name = 'D', .mask = 1 << 2, .value = (uint8_t)(level << 2)};
  avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('D'), &ext);
  avr_raise_irq(home_pin, (uint32_t)level);
}

static void on_dir(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  dir_high = value != 0;
}

static void on_step(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  int high = value != 0;
  if (high && !step_high) {
    if (dir_high) {
      plunger_steps++;
    } else if (plunger_steps > 0) {
      plunger_steps--; /* the plunger cannot go below the bottom of the barrel */
    }
    drive_home_switch();
  }
  step_high = high;
}

/* simavr logs to stdout by default; stdout carries the PTY line, so its errors go to stderr and
 * its progress notes ("Loaded ... .text") nowhere. */
static void quiet_logger(avr_t *a, const int level, const char *format, va_list ap) {
  (void)a;
  if (level <= LOG_ERROR) vfprintf(stderr, format, ap);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_pty(void) {
  int fd = posix_openpt(O_RDWR | O_NOCTTY);
  if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0) return -1;
  const char *name = ptsname(fd);
  if (name == NULL) return -1;
  /* Keep the slave open ourselves: the master then never sees EIO between two drivers, and
   * raw mode (no echo, no line editing) is set once for everyone who opens it. */
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) return -1;
  struct termios tio;
  if (tcgetattr(slave, &tio) != 0) return -1;
  cfmakeraw(&tio);
  if (tcsetattr(slave, TCSANOW, &tio) != 0) return -1;
  int flags = fcntl(fd, F_GETFL);
  if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
  printf("PTY %s\n", name);
  fflush(stdout);
  return fd;
}

static void pump_pty(void) {
  if (avr->cycle >= BOOT_CYCLES) {
    size_t room = RX_BUFFER - to_avr_len;
    while (room) {
      uint8_t buf[256];
      ssize_t n = read(master_fd, buf, room < sizeof buf ? room : sizeof buf);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; i++) to_avr[(to_avr_head + to_avr_len++) % RX_BUFFER] = buf[i];
      room -= (size_t)n;
    }
    feed_uart();
  }
  size_t done = 0;
  while (done < from_avr_len) {
    ssize_t n = write(master_fd, from_avr + done, from_avr_len - done);
    if (n <= 0) break; /* nobody reads: like a board talking to an unplugged cable */
    done += (size_t)n;
  }
  from_avr_len = 0;
}

int main(int argc, char **argv) {
  double speed = 1.0;
  const char *image = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--speed") && i + 1 < argc) {
      speed = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--home-switch")) {
      home_switch = 1;
    } else if (argv[i][0] != '-' && image == NULL) {
      image = argv[i];
    } else {
      fprintf(stderr, "usage: %s [--speed X] [--home-switch] image.elf\n", argv[0]);
      return 2;
    }
  }
  if (image == NULL || !(speed > 0.0)) {
    fprintf(stderr, "usage: %s [--speed X>0] [--home-switch] image.elf\n", argv[0]);
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test that started us */
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);

  avr_global_logger_set(quiet_logger);
  elf_firmware_t firmware;
  memset(&firmware, 0, sizeof firmware);
  if (elf_read_firmware(image, &firmware) != 0) {
    fprintf(stderr, "cannot read %s\n", image);
    return 1;
  }
  avr = avr_make_mcu_by_name("atmega328p");
  if (avr == NULL) {
    fprintf(stderr, "simavr has no atmega328p\n");
    return 1;
  }
  avr_init(avr);
  avr->log = LOG_ERROR; /* simavr's chatter would mix with the PTY line on stdout */
  avr_load_firmware(avr, &firmware);
  avr->frequency = F_CPU_HZ; /* the Uno's crystal; the ELF carries no clock of its own */

  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  /* No echo of the UART on our stdout (the pty is the line), and no host-side nap when the
   * firmware polls an empty receiver: the real-time pacing below is the only throttle. */
  flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  uart_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                          on_uart_output, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          on_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          on_xoff, NULL);
  if (home_switch) {
    /* Uno D2, D3, D4 are PD2, PD3, PD4 (the Uno's pin map). */
    home_pin = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 3), on_step, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 4), on_dir, NULL);
    drive_home_switch();
  }

  master_fd = open_pty();
  if (master_fd < 0) {
    fprintf(stderr, "cannot open a pseudo-terminal: %s\n", strerror(errno));
    return 1;
  }

  double wall0 = now_s();
  while (!stop_requested) {
    avr_cycle_count_t target = avr->cycle + CHUNK_CYCLES;
    while (avr->cycle < target) {
      int state = avr_run(avr);
      if (state == cpu_Done || state == cpu_Crashed) {
        fprintf(stderr, "firmware stopped (state %d) at cycle %llu\n", state,
                (unsigned long long)avr->cycle);
        return 1;
      }
    }
    pump_pty();
    double ahead = (double)avr->cycle / F_CPU_HZ / speed - (now_s() - wall0);
    if (ahead > 0.002) {
      if (ahead > 0.5) ahead = 0.5; /* a stalled host (suspend) must not become a long nap */
      struct timespec nap = {0, (long)(ahead * 1e9)};
      nanosleep(&nap, NULL);
    }
  }
  return 0;
}
