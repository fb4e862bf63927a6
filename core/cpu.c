/* cpu.c - CPU feature checks. __builtin_cpu_supports reads a table the compiler runtime fills
 * at start-up: cheap enough to call per use, and no state of ours. */
#include "cpu.h"

int slm_cpu_has_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

int slm_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
