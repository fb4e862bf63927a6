/* cmd_convert.c - `slm convert MODEL_DIR -o OUT.gguf [--outtype f32|f16|bf16]`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "args.h"
#include "core/dtype.h"
#include "core/slm.h"
#include "core/thread.h"
#include "cli_export.h"
#include "msg.h"

static void usage(FILE *f, int full) {
    fprintf(f, "usage: slm convert MODEL_DIR -o OUT.gguf [--outtype f32|f16|bf16] [options]\n");
    if (!full) return;
    fprintf(f, "\nWrites a Hugging Face model folder (config.json, model.safetensors or sharded\n"
               "model-0000N-of-0000M.safetensors + index, tokenizer.model or tokenizer.json) as one GGUF\n"
               "file that llama.cpp loads as it is. Tensors are streamed one at a time.\n\n"
               "options:\n"
               "  -o, --output FILE   output GGUF (required)\n"
               "  --outtype T         f32, f16 or bf16 for the 2-D weights; 1-D tensors are always F32.\n"
               "                      Default: the checkpoint's own type (no rounding).\n"
               "  -f, --force         overwrite an existing output\n"
               "  -t, --threads N     threads (default: OMP_NUM_THREADS, else all cores)\n"
               "  -q, -v              quieter / more verbose; --progress, --no-progress\n"
               "  -h, --help          this help\n"
               "\nexit status: 0 ok, 1 failure, 2 usage, 130/143 interrupted\n");
}

int cmd_convert(int argc, char **argv) {
    common_opts co = {0};
    const char *in = NULL, *out = NULL, *outtype = NULL;
    args a;
    args_init(&a, argc, argv);
    for (const char *s; (s = args_next(&a));) {
        int r;
        if (!args_is_opt(&a)) {
            if (in) return msg_usage_error("unexpected argument '%s'", s);
            in = s;
        } else if ((r = args_common(&a, &co))) {
            if (r < 0) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--output", "-o"))) {
            if (r < 0) return EXIT_USAGE;
            out = a.val;
        } else if ((r = args_value(&a, "--outtype", NULL))) {
            if (r < 0) return EXIT_USAGE;
            outtype = a.val;
        } else {
            return msg_usage_error("unknown option '%s'", s);
        }
    }
    if (co.help) { usage(stdout, co.help == 2); return EXIT_OK; }
    if (!in) return msg_usage_error("missing MODEL_DIR");
    if (!out) return msg_usage_error("missing -o OUT.gguf");
    const slm_ftype_desc *ft = NULL;
    if (outtype) {
        if (strcasecmp(outtype, "f32") && strcasecmp(outtype, "f16") && strcasecmp(outtype, "bf16"))
            return msg_usage_error("--outtype: '%s' is not f32, f16 or bf16 (use 'slm quantize' for quantized types)", outtype);
        ft = slm_ftype_find(outtype);
    }
    if (cli_check_output(out, co.force, in)) return EXIT_FAIL;
    slm_threads_set(co.threads);

    double t0 = cli_now();
    slm_err err = {0};
    cli_export e;
    slm_export_opts o = {.recipe = {.ftype = ft, .output_type = -1, .token_embd_type = -1}};
    if (!ft) { /* keep the checkpoint's precision: the token embedding's type */
        slm_src probe;
        if (slm_src_open(&probe, in, &err)) return cli_fail(&err);
        int dt = probe.tensors[slm_src_find(&probe, "token_embd.weight")].dtype;
        slm_src_close(&probe);
        o.recipe.ftype = slm_ftype_find(dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32");
    }
    int rc = cli_export_plan(&e, in, &o, &err);
    if (!rc) rc = cli_export_write(&e, out, &err);
    if (!rc) {
        e.x.rep.seconds = cli_now() - t0;
        if (msg_show_summary()) cli_export_print_summary(&e.x.rep, stderr, g_msg.verbosity >= 2);
    }
    cli_export_free(&e);
    return rc ? cli_fail(&err) : EXIT_OK;
}
