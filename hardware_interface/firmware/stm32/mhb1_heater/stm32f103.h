/* The few STM32F103 registers the MHB1 heater board uses, with the addresses and bit positions
 * of ST's reference manual RM0008 (STM32F101/102/103/105/107) and the Cortex-M3 Technical
 * Reference Manual (SysTick, NVIC). Only what main.c touches is here, so the board builds with
 * no vendor package at all. */
#ifndef STM32F103_H
#define STM32F103_H

#include <stdint.h>

#ifndef MHB1_HOST
#define REG32(addr) (*(volatile uint32_t *)(addr))
#else
/* Host test build (tools/mhb1_host.c): each register is a cell of the harness, which models
 * the clock, SPI and GPIO behaviour the firmware relies on. */
volatile uint32_t *host_reg(uint32_t addr);
#define REG32(addr) (*host_reg(addr))
#endif

/* RM0008 section 7.3: reset and clock control */
#define RCC_BASE 0x40021000u
#define RCC_CR REG32(RCC_BASE + 0x00)
#define RCC_CFGR REG32(RCC_BASE + 0x04)
#define RCC_APB2ENR REG32(RCC_BASE + 0x18)
#define RCC_APB1ENR REG32(RCC_BASE + 0x1C)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_PLL (2u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_PPRE1_DIV2 (4u << 8)
#define RCC_CFGR_PLLSRC_HSE (1u << 16)
#define RCC_CFGR_PLLMUL9 (7u << 18)
#define RCC_APB2ENR_AFIOEN (1u << 0)
#define RCC_APB2ENR_IOPAEN (1u << 2)
#define RCC_APB2ENR_IOPBEN (1u << 3)
#define RCC_APB2ENR_SPI1EN (1u << 12)
#define RCC_APB2ENR_USART1EN (1u << 14)
#define RCC_APB1ENR_TIM2EN (1u << 0)
#define RCC_APB1ENR_TIM3EN (1u << 1)

/* RM0008 section 3.3.3: flash access control (wait states above 48 MHz) */
#define FLASH_ACR REG32(0x40022000u)
#define FLASH_ACR_LATENCY_2 2u
#define FLASH_ACR_PRFTBE (1u << 4)

/* RM0008 section 9.2: GPIO, four configuration bits per pin (CNF[1:0] MODE[1:0]) */
#define GPIOA_BASE 0x40010800u
#define GPIOB_BASE 0x40010C00u
#define GPIO_CRL(base) REG32((base) + 0x00)
#define GPIO_CRH(base) REG32((base) + 0x04)
#define GPIO_IDR(base) REG32((base) + 0x08)
#define GPIO_BSRR(base) REG32((base) + 0x10)
#define GPIO_BRR(base) REG32((base) + 0x14)
#define GPIO_MODE_OUT_PP_2MHZ 0x2u     /* general purpose push-pull output */
#define GPIO_MODE_AF_PP_50MHZ 0xBu     /* alternate function push-pull */
#define GPIO_MODE_IN_FLOATING 0x4u

/* RM0008 section 15.4: general-purpose timers TIM2 and TIM3 */
#define TIM2_BASE 0x40000000u
#define TIM3_BASE 0x40000400u
#define TIM_CR1(base) REG32((base) + 0x00)
#define TIM_EGR(base) REG32((base) + 0x14)
#define TIM_CCMR1(base) REG32((base) + 0x18)
#define TIM_CCMR2(base) REG32((base) + 0x1C)
#define TIM_CCER(base) REG32((base) + 0x20)
#define TIM_PSC(base) REG32((base) + 0x28)
#define TIM_ARR(base) REG32((base) + 0x2C)
#define TIM_CCR1(base) REG32((base) + 0x34)
#define TIM_CCR3(base) REG32((base) + 0x3C)
#define TIM_CR1_CEN (1u << 0)
#define TIM_CR1_ARPE (1u << 7)
#define TIM_EGR_UG (1u << 0)
#define TIM_CCMR_OC_PWM1_PRELOAD 0x68u /* OCxM = 110 (PWM mode 1), OCxPE = 1 */
#define TIM_CCER_CC1E (1u << 0)
#define TIM_CCER_CC3E (1u << 8)

/* RM0008 section 25.5: SPI */
#define SPI1_BASE 0x40013000u
#define SPI1_CR1 REG32(SPI1_BASE + 0x00)
#define SPI1_SR REG32(SPI1_BASE + 0x08)
#define SPI1_DR REG32(SPI1_BASE + 0x0C)
#define SPI_CR1_MSTR (1u << 2)
#define SPI_CR1_BR_DIV16 (3u << 3)
#define SPI_CR1_SPE (1u << 6)
#define SPI_CR1_SSI (1u << 8)
#define SPI_CR1_SSM (1u << 9)
#define SPI_SR_RXNE (1u << 0)
#define SPI_SR_TXE (1u << 1)

/* RM0008 section 27.6: USART */
#define USART1_BASE 0x40013800u
#define USART1_SR REG32(USART1_BASE + 0x00)
#define USART1_DR REG32(USART1_BASE + 0x04)
#define USART1_BRR REG32(USART1_BASE + 0x08)
#define USART1_CR1 REG32(USART1_BASE + 0x0C)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)

/* Cortex-M3: SysTick and the NVIC (USART1 is interrupt 37 of the STM32F103, RM0008 table 63) */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define USART1_IRQn 37

#ifndef MHB1_HOST
static inline void irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void wait_for_interrupt(void) { __asm__ volatile("wfi" ::: "memory"); }
#else
static inline void irq_disable(void) {}
static inline void irq_enable(void) {}
static inline void wait_for_interrupt(void) {}
#endif

#endif
