/* fuzz_config.c - libFuzzer target: config.json (slm_hf_config_parse) on bytes from memory.
 * On success the config passes slm_model_config_check and names map consistently.
 */
#include "tests/fuzz/fuzz.h"

#include "formats/hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_model_config c;
    slm_err e = {0};
    int rc = slm_hf_config_parse(&c, (const char *)data, size, "config.json", &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        return 0;
    }
    SLM_ASSERT(slm_model_config_check(&c, &e) == SLM_OK);
    SLM_ASSERT(c.n_layer > 0 && c.bos_id >= -1 && c.eos_id >= -1 && c.rope_scale > 0);
    char out[64];
    int perm;
    SLM_ASSERT(slm_hf_name_to_gguf(&c, "model.layers.0.self_attn.k_proj.weight", out, sizeof out, &perm) == SLM_NAME_MAPPED);
    SLM_ASSERT(perm == (c.arch == SLM_ARCH_LLAMA ? c.n_head_kv : 0));
    return 0;
}
