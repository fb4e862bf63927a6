/* cmd_unpack.c - `slm unpack IN.gguf.zst -o OUT.gguf`: the original GGUF of a packed file
 * (formats/pack.h), byte for byte, every frame's size and checksum checked on the way. */
#include <stdio.h>

#include "cli.h"
#include "core/mem.h"
#include "core/slm.h"
#include "formats/pack.h"
#include "msg.h"
#include "opts.h"

typedef struct unpack_opts {
    const char *out;
} unpack_opts;

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(unpack_opts, out), "FILE", "output GGUF (required)", 0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "unpack", "IN.gguf.zst -o OUT.gguf [options]",
    "Restores the GGUF a packed file was made from (slm pack), byte for byte. The container\n"
    "is validated first and every frame's size and checksum as it is decompressed: a damaged\n"
    "file leaves no output.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "IN.gguf.zst", NULL, 0,
};

static void progress(void *ud, uint64_t done, uint64_t total) {
    (void)ud;
    msg_progress("unpack", total ? (double)done / (double)total : 1.0);
}

int cmd_unpack(int argc, char **argv) {
    unpack_opts o = {0};
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    const char *in = pos[0];
    if (!o.out) return msg_usage_error("missing -o OUT.gguf");
    cli_outputs outs;
    cli_outputs_init(&outs, co.force);
    cli_outputs_input(&outs, in);
    if (cli_outputs_add(&outs, o.out)) return EXIT_FAIL;

    double t0 = cli_now();
    slm_err err = {0};
    slm_pack p;
    slm_afile *f = NULL;
    if (slm_pack_open(&p, in, &err)) return cli_fail(&err);
    int rc = slm_outset_open(&outs.set, o.out, &f, &err);
    if (!rc && (rc = slm_pack_unpack(&p, f, progress, NULL, &err))) slm_err_prefix(&err, "%s", in);
    msg_progress_done();
    if (!rc) rc = cli_outputs_commit(&outs, &err);
    else cli_outputs_abort(&outs);
    uint64_t size = p.gguf_size;
    slm_pack_close(&p);
    if (rc) return cli_fail(&err);
    if (msg_show_summary()) {
        char a[32];
        fprintf(stderr, "%s: %s (%llu bytes) restored to %s in %.2f s\n", in, slm_fmt_bytes(a, sizeof a, (double)size),
                (unsigned long long)size, o.out, cli_now() - t0);
    }
    return EXIT_OK;
}
