/* cmd_pack.c - `slm pack IN.gguf -o OUT.gguf.zst [--level N]`: a GGUF compressed tensor by
 * tensor with zstd (formats/pack.h), which eval, inspect, convert and quantize read as they
 * read the GGUF, and `slm unpack` restores byte for byte. */
#include <stdio.h>

#include "cli.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/gguf.h"
#include "formats/pack.h"
#include "msg.h"
#include "opts.h"

typedef struct pack_opts {
    const char *out;
    long level;
} pack_opts;

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(pack_opts, out), "FILE", "output packed GGUF, e.g. model.gguf.zst (required)", 0, 0, NULL,
     NULL},
    {"--level", "-l", OPT_INT, OPT_OF(pack_opts, level), "N", "zstd compression level [3]: higher levels are slower to write and,\n"
     "on model weights, hardly smaller (see the README)", 1, SLM_PACK_MAX_LEVEL, NULL, NULL},
};

static const cmd_spec k_spec = {
    "pack", "IN.gguf -o OUT.gguf.zst [--level N] [options]",
    "Compresses a GGUF with zstd, each tensor as its own frame with an index, so that one\n"
    "tensor reads without the others: slm eval, inspect, convert and quantize read the\n"
    "packed file directly, and slm unpack restores the GGUF byte for byte. The file is also\n"
    "a plain zstd stream: `zstd -d OUT.gguf.zst` gives the GGUF too.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "IN.gguf",
    "Output is identical for any thread count (-t sets zstd's workers).", 0,
};

static void progress(void *ud, uint64_t done, uint64_t total) {
    (void)ud;
    msg_progress("pack", total ? (double)done / (double)total : 1.0);
}

static void print_summary(const char *in, const slm_pack_stats *st, int level, double seconds) {
    char a[32], b[32];
    fprintf(stderr, "%s: %s -> %s (%.3f of the size, %.2fx smaller), zstd level %d, %.2f s\n", in,
            slm_fmt_bytes(a, sizeof a, (double)st->gguf_bytes), slm_fmt_bytes(b, sizeof b, (double)st->packed_bytes),
            st->gguf_bytes ? (double)st->packed_bytes / (double)st->gguf_bytes : 0,
            st->packed_bytes ? (double)st->gguf_bytes / (double)st->packed_bytes : 0, level, seconds);
}

int cmd_pack(int argc, char **argv) {
    pack_opts o = {.level = SLM_PACK_DEFAULT_LEVEL};
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    const char *in = pos[0];
    if (!o.out) return msg_usage_error("missing -o OUT.gguf.zst");
    cli_outputs outs;
    cli_outputs_init(&outs, co.force);
    cli_outputs_input(&outs, in);
    if (cli_outputs_add(&outs, o.out)) return EXIT_FAIL;
    slm_threads_set((int)co.threads);

    double t0 = cli_now();
    slm_err err = {0};
    slm_gguf g;
    slm_afile *f = NULL;
    slm_pack_stats st;
    slm_pack_opts po = {.level = (int)o.level, .threads = slm_threads_get(), .progress = progress};
    int rc = slm_gguf_open(&g, in, &err);
    if (rc) {
        /* a packed input gets a plainer message than the GGUF reader's bad magic */
        slm_map m;
        slm_err e2 = {0};
        if (!slm_map_open(&m, in, &e2)) {
            if (slm_pack_sniff(m.data, m.size)) slm_errf(&err, SLM_E_ARG, "%s: is packed already", in);
            slm_map_close(&m);
        }
        return cli_fail(&err);
    }
    rc = slm_outset_open(&outs.set, o.out, &f, &err);
    if (!rc) rc = slm_pack_write(&g, &po, f, &st, &err);
    msg_progress_done();
    if (!rc) rc = cli_outputs_commit(&outs, &err);
    else cli_outputs_abort(&outs);
    slm_gguf_close(&g);
    if (rc) return cli_fail(&err);
    if (msg_show_summary()) print_summary(in, &st, (int)o.level, cli_now() - t0);
    return EXIT_OK;
}
