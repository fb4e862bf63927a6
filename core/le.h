/* le.h - little-endian loads and stores for every binary format slm reads or writes.
 *
 * Owns: unaligned-safe u8..u64/f32/f64 access through memcpy. Mapped input may be unaligned
 * (safetensors offsets need not be multiples of 4), so never cast a mapped pointer instead.
 * Must not: know about any file format.
 */
#ifndef SLM_LE_H
#define SLM_LE_H

#include <stdint.h>
#include <string.h>

#include "slm.h" /* asserts a little-endian host, so memcpy is the LE conversion */

static inline uint16_t slm_le_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t slm_le_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t slm_le_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float slm_le_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }
static inline double slm_le_f64(const void *p) { double v; memcpy(&v, p, 8); return v; }
static inline void slm_st_u16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void slm_st_u32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void slm_st_u64(void *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void slm_st_f32(void *p, float v) { memcpy(p, &v, 4); }

#endif
