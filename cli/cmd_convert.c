/* cmd_convert.c - `slm convert MODEL_DIR -o OUT.gguf [--outtype f32|f16|bf16]`: options, checks,
 * and the export pipeline (cli_export.h) with the checkpoint's own precision by default. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_export.h"
#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/slm.h"
#include "core/thread.h"
#include "msg.h"
#include "opts.h"

typedef struct convert_opts {
    const char *out;
    int outtype; /* slm_dtype, -1: the checkpoint's */
} convert_opts;

static const opt_choice k_outtypes[] = {{"f32", SLM_DTYPE_F32}, {"f16", SLM_DTYPE_F16}, {"bf16", SLM_DTYPE_BF16}, {NULL, 0}};

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(convert_opts, out), "FILE", "output GGUF (required)", 0, 0, NULL, NULL},
    {"--outtype", NULL, OPT_CHOICE, OPT_OF(convert_opts, outtype), NULL,
     "type of the 2-D weights; 1-D tensors are always F32.\nDefault: the checkpoint's own type (no rounding)", 0, 0,
     k_outtypes, "(use 'slm quantize' for quantized types)"},
};

static const cmd_spec k_spec = {
    "convert", "MODEL_DIR -o OUT.gguf [--outtype f32|f16|bf16] [options]",
    "Writes a Hugging Face model folder (config.json, model.safetensors or sharded\n"
    "model-0000N-of-0000M.safetensors + index, tokenizer.model or tokenizer.json) as one GGUF\n"
    "file that llama.cpp loads as it is. Tensors are streamed one at a time.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL_DIR", NULL, 0,
};

/* The recipe that keeps the checkpoint's precision: the token embedding's type. */
static const slm_ftype_desc *own_precision(const char *in, slm_err *err) {
    slm_src probe;
    if (slm_src_open(&probe, in, err)) return NULL;
    int dt = probe.tensors[slm_src_find(&probe, "token_embd.weight")].dtype;
    slm_src_close(&probe);
    return slm_ftype_find(dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32");
}

int cmd_convert(int argc, char **argv) {
    convert_opts o = {.outtype = -1};
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
    slm_threads_set((int)co.threads);

    double t0 = cli_now();
    slm_err err = {0};
    slm_export_opts eo = {.recipe = {.output_type = -1, .token_embd_type = -1}};
    eo.recipe.ftype = o.outtype >= 0 ? slm_ftype_find(slm_dtype_name(o.outtype)) : own_precision(in, &err);
    if (!eo.recipe.ftype) return cli_fail(&err);
    cli_export e = {0};
    int rc = cli_export_plan(&e, in, &eo, NULL, &err);
    if (!rc) rc = cli_export_write(&e, &outs.set, o.out, &err);
    if (!rc) rc = cli_outputs_commit(&outs, &err);
    else cli_outputs_abort(&outs);
    if (!rc) {
        e.x.rep.seconds = cli_now() - t0;
        if (msg_show_summary()) cli_export_print_summary(&e.x.rep, stderr, g_msg.verbosity >= 2);
    }
    cli_export_free(&e);
    return rc ? cli_fail(&err) : EXIT_OK;
}
