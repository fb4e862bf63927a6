/* cpu.c - CPU feature checks. __builtin_cpu_supports reads a table the compiler runtime fills
 * at start-up: cheap enough to call per use, and no state of ours. */
#include "cpu.h"

#include <stdlib.h>

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

int slm_cpu_has_avx512vnni(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    static int off = -1; /* the environment read once; the CPU's answer never changes */
    if (off < 0) {
        const char *e = getenv("SLM_NO_AVX512");
        off = e && *e && *e != '0';
    }
    return !off && slm_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}
