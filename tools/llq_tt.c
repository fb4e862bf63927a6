/* llq_tt - llama.cpp's quantizer with --tensor-type overrides, as llama-quantize passes them:
 * each REGEX=TYPE lowercased (tools/quantize/quantize.cpp: parse_tensor_type) into
 * llama_model_quantize_params.tt_overrides, matched with std::regex_search (llama-quant.cpp).
 * tests/interop.sh compares slm quantize --tensor-type with it byte for byte.
 *
 * usage: llq_tt IN.gguf OUT.gguf Q8_0|Q4_0|Q4_K_M REGEX=TYPE...
 * build: cc -std=c11 -I$LLCPP_DIR/include -I../shared/tools/llamacpp tools/llq_tt.c -o llq_tt \
 *        -L$LLCPP_DIR/lib -lllama -lggml -lggml-base -Wl,-rpath,$LLCPP_DIR/lib
 */
#include "llcommon.h"
#include "llama.h"

#include <ctype.h>

int main(int argc, char **argv) {
    static const struct { const char *name; enum llama_ftype ftype; } ft[] = {
        {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0}, {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}};
    struct llama_model_tensor_override ov[16];
    static char pat[16][256];
    if (argc < 4 || argc - 4 > 15) {
        fprintf(stderr, "usage: llq_tt IN.gguf OUT.gguf Q8_0|Q4_0|Q4_K_M REGEX=TYPE...\n");
        return 2;
    }
    struct llama_model_quantize_params p = llama_model_quantize_default_params();
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(argv[3], ft[i].name)) k = i;
    if (k < 0) return fprintf(stderr, "llq_tt: unknown type %s\n", argv[3]), 2;
    p.ftype = ft[k].ftype;
    p.nthread = 1;
    int n = 0;
    for (int i = 4; i < argc; i++, n++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof pat[0]) return fprintf(stderr, "llq_tt: bad %s\n", argv[i]), 2;
        for (int j = 0; j < eq - argv[i]; j++) pat[n][j] = (char)tolower((unsigned char)argv[i][j]);
        int t = llc_parse_ggml_type(eq + 1);
        if (t < 0) return fprintf(stderr, "llq_tt: unknown tensor type %s\n", eq + 1), 2;
        ov[n].pattern = pat[n];
        ov[n].type = (enum ggml_type)t;
    }
    ov[n].pattern = NULL;
    ov[n].type = GGML_TYPE_COUNT;
    if (n) p.tt_overrides = ov;
    llc_verbosity = 0;
    llama_log_set(llc_log_cb, NULL);
    if (llc_load_backends() != 0) return 1;
    llama_backend_init();
    if (llama_model_quantize(argv[1], argv[2], &p)) return fprintf(stderr, "llq_tt: llama_model_quantize failed\n"), 1;
    return 0;
}
