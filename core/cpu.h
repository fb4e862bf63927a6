/* cpu.h - run-time CPU features that pick the faster kernels (each has a scalar reference).
 * Owns: the one place that asks the CPU; 0 on non-x86 builds. Must not: cache mutable state (the one
 * exception: the SLM_NO_AVX512 switch, read once).
 */
#ifndef SLM_CPU_H
#define SLM_CPU_H

/* AVX2 (every AVX2 CPU also has F16C). */
int slm_cpu_has_avx2(void);
/* AVX2 and FMA. */
int slm_cpu_has_avx2_fma(void);
/* AVX2, FMA and AVX-512 F, VL, BW and VNNI (the wider dot-product tiles); SLM_NO_AVX512=1 in the
   environment turns them off (benchmarks, tests of the AVX2 path). */
int slm_cpu_has_avx512vnni(void);

#endif
