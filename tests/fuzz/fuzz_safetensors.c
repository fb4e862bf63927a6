/* fuzz_safetensors.c - libFuzzer target: the safetensors reader on bytes from memory
 * (slm_st_parse). On success: every entry is found at its own index, its data lies inside the
 * image, its size matches its shape, and the entries tile the data section exactly.
 */
#include "tests/fuzz/fuzz.h"

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_st_file f;
    slm_err e = {0};
    int rc = slm_st_parse(&f, data, size, &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        return 0;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < f.n; i++) {
        SLM_ASSERT(slm_st_find(&f, f.entries[i].name) == (int)i);
        slm_tensor t;
        slm_st_view(&f, i, &t);
        const uint8_t *td = t.data;
        SLM_ASSERT(td >= data && t.nbytes <= size && (size_t)(td - data) <= size - t.nbytes);
        int64_t nelem;
        SLM_ASSERT(slm_shape_nelem(t.shape, t.ndim, &nelem, &e) == SLM_OK);
        SLM_ASSERT((uint64_t)nelem * slm_dtype_get(t.dtype)->type_size == t.nbytes);
        total += t.nbytes;
    }
    SLM_ASSERT(total == size - f.data_start); /* no gap, no overlap, nothing after */
    slm_st_close(&f);
    return 0;
}
