/* Start-up code of the MHB1 heater board (STM32F103C8, Cortex-M3): the vector table and the
 * reset handler that lays out RAM before main(). The symbols come from stm32f103c8.ld. */
#include <stdint.h>
#include <string.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
void SysTick_Handler(void);
void USART1_IRQHandler(void);
void Default_Handler(void); /* main.c: heater off, then park */

void Reset_Handler(void) {
  /* C needs initialised .data and zeroed .bss; nothing in flash does it for us. */
  memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
  memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
  main();
  for (;;) {
  }
}

/* 16 system exceptions, then the STM32F103's 60 peripheral interrupts (RM0008 table 63);
 * USART1 is peripheral interrupt 37, entry 16 + 37 = 53. */
__attribute__((section(".isr_vector"), used)) void (*const vector_table[76])(void) = {
    [0] = (void (*)(void))(uintptr_t)&_estack,
    [1] = Reset_Handler,
    [2 ... 14] = Default_Handler,
    [15] = SysTick_Handler,
    [16 ... 52] = Default_Handler,
    [53] = USART1_IRQHandler,
    [54 ... 75] = Default_Handler,
};
