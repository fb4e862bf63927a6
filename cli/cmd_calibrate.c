/* cmd_calibrate.c - `slm calibrate MODEL --text FILE -o STATS.gguf [--ctx 512] [--chunks N]
 * [--tokens-in IDS] [--gram-max N] [--process-output]`: calibration statistics (model/calib.h)
 * as a GGUF llama.cpp reads as an imatrix (formats/imatrix_calib.h), with slm's extras (sums of
 * |x|, Gram matrices, block cosines, channel and head scores) that `slm quantize --calibration`
 * and pruning read.
 *
 * Pipeline: open the model -> token ids (the text tokenized as llama-imatrix does, BOS first when
 * the vocab adds one; or --tokens-in) -> build the transformer for the batch -> slm_calib_run ->
 * imatrix with extras -> the output set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "core/utf8.h"
#include "formats/imatrix.h"
#include "formats/imatrix_calib.h"
#include "formats/model_src.h"
#include "formats/token_ids.h"
#include "model/calib.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "msg.h"
#include "opts.h"

typedef struct calib_opts {
    const char *text, *tokens_in, *out;
    long ctx, chunks, gram_max, batch, ubatch;
    int process_output, numerics, plain;
} calib_opts;

static const opt_choice k_numerics[] = {{"f32", SLM_NUMERICS_F32}, {"ggml", SLM_NUMERICS_GGML}, {NULL, 0}};

static const opt k_opts[] = {
    {"--text", NULL, OPT_STR, OPT_OF(calib_opts, text), "FILE",
     "calibration text (UTF-8), tokenized with the model's tokenizer as\nllama-imatrix does (BOS first when the vocab adds one)",
     0, 0, NULL, NULL},
    {"--tokens-in", NULL, OPT_STR, OPT_OF(calib_opts, tokens_in), "FILE",
     "token ids instead of a text: little-endian int32, or whitespace-\nseparated decimal ids; used as they are", 0, 0, NULL,
     NULL},
    {"--output", "-o", OPT_STR, OPT_OF(calib_opts, out), "STATS.gguf",
     "the statistics: an imatrix GGUF (llama-quantize --imatrix reads it)\nwith slm's extras", 0, 0, NULL, NULL},
    {"--ctx", "-c", OPT_INT, OPT_OF(calib_opts, ctx), "N", "tokens per chunk [512, llama-imatrix's default]", 1, 1 << 20, NULL,
     NULL},
    {"--chunks", NULL, OPT_INT, OPT_OF(calib_opts, chunks), "N", "use at most N chunks (default: all)", 1, 9.2e18, NULL, NULL},
    {"--gram-max", NULL, OPT_INT, OPT_OF(calib_opts, gram_max), "N",
     "keep the Gram matrix X^T X (GPTQ, AWQ) of inputs up to N columns\n[8192; 0: none]", 0, SLM_CALIB_GRAM_MAX, NULL, NULL},
    {"--process-output", NULL, OPT_FLAG, OPT_OF(calib_opts, process_output), NULL,
     "also collect the input of output.weight (llama-imatrix --process-output)", 0, 0, NULL, NULL},
    {"--batch", "-b", OPT_INT, OPT_OF(calib_opts, batch), "N", "llama-imatrix -b: chunks per forward = N / ctx [2048]", 1,
     1 << 20, NULL, NULL},
    {"--ubatch", "-ub", OPT_INT, OPT_OF(calib_opts, ubatch), "N", "llama-imatrix -ub [512]", 1, 1 << 20, NULL, NULL},
    {"--numerics", NULL, OPT_CHOICE, OPT_OF(calib_opts, numerics), NULL,
     "f32 (default): the exact computation; ggml: llama.cpp's CPU rounding\n(the sums then agree with llama-imatrix's within "
     "1e-5)", 0, 0, k_numerics, NULL},
    {"--plain", NULL, OPT_FLAG, OPT_OF(calib_opts, plain), NULL,
     "write only what llama-imatrix writes (no extras: --calibration then\nhas no E|x| nor Gram matrices)", 0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "calibrate", "MODEL (--text FILE | --tokens-in FILE) -o STATS.gguf [--ctx 512] [--chunks N] [options]",
    "Runs MODEL (a Hugging Face folder or a GGUF) over a calibration text and writes, for the\n"
    "input of every linear layer, llama-imatrix's sums of squares and counts (llama.cpp reads the\n"
    "file as an imatrix) and slm's extras: sums of |x|, Gram matrices, per block the cosine of the\n"
    "residual stream before and after, per FFN channel and head the mean |x|.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL",
    "The statistics do not depend on the thread count. Progress on a terminal.", 0,
};

typedef struct calib_state {
    slm_src src;
    slm_tokenizer tok;
    slm_model m;
    slm_calib c;
    slm_imatrix im;
    int32_t *ids;
    int64_t n_ids;
    int32_t bos;
    cli_outputs outs;
} calib_state;

static void calib_state_free(calib_state *s) {
    cli_outputs_abort(&s->outs);
    slm_imatrix_free(&s->im);
    slm_calib_free(&s->c);
    slm_model_free(&s->m);
    slm_free(s->ids);
    slm_tokenizer_free(&s->tok);
    slm_src_close(&s->src);
}

static void progress(void *ud, int64_t done, int64_t total) {
    SLM_UNUSED(ud);
    msg_progress("calibrate", total ? (double)done / (double)total : 1.0);
}

/* The text as ids: refused when it is not UTF-8 (a binary file given by mistake). */
static int tokenize_text(calib_state *s, const char *path, slm_err *err) {
    slm_map mp = {0};
    size_t n = 0;
    SLM_TRY(slm_map_open(&mp, path, err));
    const char *txt = mp.data ? (const char *)mp.data : "";
    int rc = SLM_OK;
    if (mp.size == 0) rc = slm_errf(err, SLM_E_DATA, "%s: empty calibration text", path);
    else if (!slm_utf8_valid(txt, mp.size)) {
        size_t off = 0;
        uint32_t cp;
        for (size_t k; off < mp.size && (k = slm_utf8_strict_len((const uint8_t *)txt + off, mp.size - off, &cp)); off += k) {}
        rc = slm_errf(err, SLM_E_DATA, "%s: not UTF-8 text (invalid byte at offset %zu)", path, off);
    }
    if (!rc && (rc = slm_tokenize(&s->tok, txt, mp.size, 1, &s->ids, &n, err))) slm_err_prefix(err, "%s", path);
    s->n_ids = (int64_t)n;
    slm_map_close(&mp);
    return rc;
}

/* The model, the ids (checked against the vocabulary) and the transformer for the batch. */
static int load(calib_state *s, const char *in, const calib_opts *o, const slm_calib_opts *co, slm_err *err) {
    const char *what = o->text ? o->text : o->tokens_in;
    SLM_TRY(cli_src_open(&s->src, in, err));
    s->bos = s->src.cfg.bos_id;
    if (s->src.vocab.kind != SLM_VOCAB_NONE) {
        SLM_TRY(slm_tokenizer_build(&s->tok, &s->src.vocab, err));
        s->bos = slm_tokenizer_bos(&s->tok);
    } else if (o->text) {
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: has no tokenizer (use --tokens-in)", in);
    }
    if (o->text) SLM_TRY(tokenize_text(s, o->text, err));
    else SLM_TRY(slm_ids_read(o->tokens_in, &s->ids, &s->n_ids, err));
    for (int64_t i = 0; i < s->n_ids; i++)
        if (s->ids[i] < 0 || s->ids[i] >= s->src.cfg.n_vocab)
            return slm_errf(err, SLM_E_DATA, "%s: token %lld is id %d, outside the vocabulary of %d", what, (long long)i,
                            s->ids[i], s->src.cfg.n_vocab);
    if (s->n_ids < o->ctx)
        return slm_errf(err, SLM_E_DATA, "%s: %lld tokens, fewer than one chunk of %ld (shorten --ctx or give more text)", what,
                        (long long)s->n_ids, o->ctx);
    slm_calib_opts c = *co;
    c.bos_id = s->bos;
    SLM_TRY(cli_model_build_calls(&s->src, &s->m, slm_calib_batch(&c, s->n_ids), (int)o->ctx, slm_calib_call_tokens(&c, s->n_ids),
                                  o->numerics, err));
    return SLM_OK;
}

static int run(calib_state *s, const char *in, const calib_opts *o, double t0, slm_err *err) {
    slm_calib_opts co = {.ctx = (int)o->ctx, .chunks = o->chunks, .bos_id = s->bos, .n_batch = (int)o->batch,
                         .n_ubatch = (int)o->ubatch, .gram = o->gram_max > 0 && !o->plain, .gram_max_cols = (int)o->gram_max,
                         .process_output = o->process_output, .progress = progress};
    const char *what = o->text ? o->text : o->tokens_in;
    double t1 = cli_now();
    int rc = slm_calib_run(&s->c, &s->m, s->ids, s->n_ids, &co, err);
    msg_progress_done();
    if (rc) return slm_err_prefix(err, "%s", what), rc;
    const double secs = cli_now() - t1;
    const char *slash = strrchr(what, '/');
    SLM_TRY(slm_imatrix_from_calib(&s->im, &s->c, slash ? slash + 1 : what, !o->plain, err));
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(&s->outs.set, o->out, &f, err));
    SLM_TRY(slm_imatrix_write(&s->im, f, err));
    if (msg_show_summary()) {
        char rss[32];
        const double toks = (double)s->c.n_chunks * (double)s->c.ctx;
        fprintf(stderr, "%s: %lld chunks of %d tokens in %.2f s (%.0f tokens/s, %d threads), %zu entries -> %s, %.2f s total, "
                        "peak RSS %s\n", in, (long long)s->c.n_chunks, s->c.ctx, secs, secs > 0 ? toks / secs : 0,
                slm_threads_get(), s->im.n_entries, o->out, cli_now() - t0, slm_fmt_bytes(rss, sizeof rss, cli_peak_rss()));
    }
    return cli_outputs_commit(&s->outs, err);
}

static int check_opts(const char *in, const calib_opts *o, cli_outputs *outs) {
    if (!o->text == !o->tokens_in)
        return msg_usage_error(o->text ? "--text and --tokens-in exclude each other" : "missing --text FILE (or --tokens-in FILE)");
    if (!o->out) return msg_usage_error("missing -o STATS.gguf");
    cli_outputs_input(outs, in);
    cli_outputs_input(outs, o->text ? o->text : o->tokens_in);
    return cli_outputs_add(outs, o->out) ? EXIT_FAIL : EXIT_OK;
}

int cmd_calibrate(int argc, char **argv) {
    calib_opts o = {.ctx = 512, .gram_max = SLM_CALIB_GRAM_MAX, .batch = 2048, .ubatch = 512, .numerics = SLM_NUMERICS_F32};
    common_opts co = {0};
    const char *pos[1];
    int n_pos, rc;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    static calib_state s; /* large (the outputs' paths): not on the stack */
    memset(&s, 0, sizeof s);
    cli_outputs_init(&s.outs, co.force);
    if ((rc = check_opts(pos[0], &o, &s.outs))) return rc;
    slm_threads_set((int)co.threads);
    slm_err err = {0};
    const double t0 = cli_now();
    slm_calib_opts c = {.ctx = (int)o.ctx, .chunks = o.chunks, .n_batch = (int)o.batch, .n_ubatch = (int)o.ubatch};
    rc = load(&s, pos[0], &o, &c, &err);
    if (!rc) rc = run(&s, pos[0], &o, t0, &err);
    calib_state_free(&s);
    return rc ? cli_fail(&err) : EXIT_OK;
}
