/* imatrix_agree.c - does formats/imatrix.c give the importance vectors llama-quantize uses?
 * Not part of the build (it links llama.cpp's ggml-base); tools/imatrix_agree.sh builds and runs it.
 *
 * Loads FILE (GGUF imatrix or legacy .dat) with slm_imatrix_load and with the workshop's
 * llimatrix.h (what `llq --imatrix` uses: llama-quantize's loader redone on ggml's gguf
 * reader), then compares entry names, sizes and every float bit for bit. With --dump OUT it
 * also writes slm's vectors in tools/imatrix_llama_dump.cpp's text format, so `cmp` checks
 * them against llama-quantize's own load_imatrix() too. Exit 0 = identical, 1 = different.
 * --save-gguf F / --save-dat F write FILE back with slm_imatrix_save / slm_imatrix_save_legacy;
 * --synth DIR writes DIR/synth.gguf and DIR/synth.dat with the cases the reference lacks
 * (3-D expert entry with an expert of count 0, odd counts, a legacy entry with ncall 0).
 *
 *   cc -O2 -std=c11 -I. -I$LLCPP_DIR/include -I../shared/tools/llamacpp tools/imatrix_agree.c \
 *      build/libslm.a -o imatrix_agree -L$LLCPP_DIR/lib -lggml-base -lggml \
 *      -Wl,-rpath,$LLCPP_DIR/lib -fopenmp -lm
 */
#include "llimatrix.h"

#include "formats/imatrix.h"

static int dump(const slm_imatrix *im, const char *file, const char *out) {
    FILE *f = fopen(out, "w");
    if (!f) { perror(out); return 1; }
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        const int64_t n = e->ncols * e->n_mat;
        fprintf(f, "%s %lld", e->name, (long long)n);
        for (int64_t j = 0; j < n; j++) { uint32_t u; memcpy(&u, &e->weights[j], 4); fprintf(f, " %08x", u); }
        fprintf(f, "\n");
    }
    /* the quantize.imatrix.* values slm would write */
    slm_kvs kv = {0};
    slm_err err = {0};
    const char *ds = "";
    uint32_t entries = 0, chunks = 0;
    if (slm_imatrix_quantize_kvs(im, file, &kv, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    const slm_gguf_val *v;
    if ((v = slm_kvs_get(&kv, "quantize.imatrix.dataset"))) ds = v->v.str.s;
    if ((v = slm_kvs_get(&kv, "quantize.imatrix.entries_count"))) entries = v->v.u32;
    if ((v = slm_kvs_get(&kv, "quantize.imatrix.chunks_count"))) chunks = v->v.u32;
    fprintf(f, "# dataset=%s entries=%u chunks=%u\n", ds, entries, chunks);
    slm_kvs_free(&kv);
    return fclose(f) != 0;
}

static float synth_value(uint64_t *s) { /* splitmix64 -> [0, 1000) with all mantissa bits busy */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (float)((double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0 * 1000.0);
}

static int synth(const char *dir) {
    char path[4096];
    slm_err err = {0};
    uint64_t seed = 7;
    float v[4 * 512];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = synth_value(&seed);
    slm_imatrix g = {0}, l = {0};
    const int64_t c_moe[4] = {12345, 0, 77, 1}, c_one = 98765, c_big = 16777217; /* 2^24 + 1: not a float */
    int rc = slm_imatrix_add(&g, "blk.0.ffn_down_exps.weight", 512, 4, v, c_moe, &err);
    if (!rc) rc = slm_imatrix_add(&g, "blk.0.attn_q.weight", 256, 1, v, &c_one, &err);
    if (!rc) rc = slm_imatrix_add(&g, "blk.0.attn_k.weight", 256, 1, v + 256, &c_big, &err);
    if (!rc) rc = slm_imatrix_add(&g, "blk.0.attn_v.weight", 256, 1, v + 512, NULL, &err); /* no data */
    if (!rc) rc = slm_imatrix_add_dataset(&g, "synthetic.txt", &err);
    g.chunk_count = 32768; /* max count / chunk size, as llama-imatrix recomputes it when converting */
    g.chunk_size = 512;
    snprintf(path, sizeof path, "%s/synth.gguf", dir);
    if (!rc) rc = slm_imatrix_save(&g, path, &err);
    l.format = SLM_IMATRIX_LEGACY;
    const int64_t n0 = 0, n7 = 7;
    if (!rc) rc = slm_imatrix_add(&l, "blk.0.attn_q.weight", 256, 1, v, &n0, &err);
    if (!rc) rc = slm_imatrix_add(&l, "blk.0.ffn_down_exps.weight", 2048, 1, v, &n7, &err);
    l.chunk_count = 9;
    snprintf(path, sizeof path, "%s/synth.dat", dir);
    if (!rc) rc = slm_imatrix_save_legacy(&l, path, &err);
    if (rc) fprintf(stderr, "synth: %s\n", err.msg);
    slm_imatrix_free(&g);
    slm_imatrix_free(&l);
    return rc != 0;
}

int main(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *save_gguf = NULL, *save_dat = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dump") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--save-gguf") && i + 1 < argc) save_gguf = argv[++i];
        else if (!strcmp(argv[i], "--save-dat") && i + 1 < argc) save_dat = argv[++i];
        else if (!strcmp(argv[i], "--synth") && i + 1 < argc) return synth(argv[++i]);
        else file = argv[i];
    }
    if (!file) { fprintf(stderr, "usage: imatrix_agree [--dump OUT.txt] [--save-gguf F] [--save-dat F] IMATRIX | --synth DIR\n"); return 2; }
    slm_imatrix im;
    slm_err err = {0};
    if (slm_imatrix_load(&im, file, &err)) { fprintf(stderr, "slm: %s\n", err.msg); return 1; }
    if ((save_gguf && slm_imatrix_save(&im, save_gguf, &err)) || (save_dat && slm_imatrix_save_legacy(&im, save_dat, &err))) {
        fprintf(stderr, "slm: %s\n", err.msg);
        return 1;
    }
    struct llc_imat ll = {0};
    if (llc_imat_load(file, &ll) != 0) { fprintf(stderr, "llimatrix.h could not load %s\n", file); return 1; }
    int bad = 0;
    long long nfloat = 0;
    if ((size_t)ll.n != im.n_entries) { printf("entries: llimatrix %d, slm %zu\n", ll.n, im.n_entries); bad++; }
    for (int i = 0; i < ll.n; i++) {
        const slm_imatrix_entry *e = slm_imatrix_find(&im, ll.name[i]);
        if (!e) { printf("%s: missing in slm\n", ll.name[i]); bad++; continue; }
        if ((size_t)(e->ncols * e->n_mat) != ll.size[i] || memcmp(e->weights, ll.data[i], ll.size[i] * sizeof(float))) {
            printf("%s: vectors differ\n", ll.name[i]);
            bad++;
        }
        nfloat += (long long)ll.size[i];
    }
    const char *ds = im.n_datasets ? im.datasets[0] : NULL;
    if ((ds == NULL) != (ll.dataset == NULL) || (ds && strcmp(ds, ll.dataset)) || (int)im.chunk_count != ll.chunk_count) {
        printf("metadata differs: dataset %s/%s chunks %u/%d\n", ds ? ds : "-", ll.dataset ? ll.dataset : "-", im.chunk_count,
               ll.chunk_count);
        bad++;
    }
    printf("imatrix_agree: %s entries=%d floats=%lld dataset=%s chunks=%u: %s\n", file, ll.n, nfloat, ds ? ds : "-",
           im.chunk_count, bad ? "DIFFERENT" : "bit-identical");
    if (out && dump(&im, file, out)) bad++;
    llc_imat_free(&ll);
    slm_imatrix_free(&im);
    return bad ? 1 : 0;
}
