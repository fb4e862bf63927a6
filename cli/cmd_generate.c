/* cmd_generate.c - `slm generate MODEL -p TEXT -n N`: greedy continuation of a prompt.
 *
 * Pipeline: open the model -> tokenize the prompt (BOS as the vocab says) -> build for
 * prompt + N positions -> model/eval's greedy loop, printing each piece as it comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/model_src.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "msg.h"
#include "opts.h"

typedef struct generate_opts {
    const char *prompt;
    long n_gen;
    int ignore_eos, ids, numerics;
} generate_opts;

static const opt_choice k_numerics[] = {{"f32", SLM_NUMERICS_F32}, {"ggml", SLM_NUMERICS_GGML}, {NULL, 0}};

static const opt k_opts[] = {
    {"--prompt", "-p", OPT_STR, OPT_OF(generate_opts, prompt), "TEXT",
     "prompt (tokenized with BOS when the vocabulary adds one)", 0, 0, NULL, NULL},
    {"--n-predict", "-n", OPT_INT, OPT_OF(generate_opts, n_gen), "N", "tokens to generate [32]", 0, 1 << 20, NULL, NULL},
    {"--ignore-eos", NULL, OPT_FLAG, OPT_OF(generate_opts, ignore_eos), NULL, "do not stop at the end-of-sequence token", 0, 0,
     NULL, NULL},
    {"--ids", NULL, OPT_FLAG, OPT_OF(generate_opts, ids), NULL, "print the prompt and generated token ids instead of text", 0, 0,
     NULL, NULL},
    {"--numerics", NULL, OPT_CHOICE, OPT_OF(generate_opts, numerics), NULL,
     "ggml (default): round as llama.cpp's CPU backend does: its greedy\ntokens at its speed (stored blocks times quantized "
     "activations);\nf32: f32 activations and KV cache, weights dequantized (every\ntoken dequantizes the model: slow "
     "for quantized models)",
     0, 0, k_numerics, NULL},
};

static const cmd_spec k_spec = {
    "generate", "MODEL -p TEXT [-n N] [--ignore-eos] [--ids] [options]",
    "Greedy generation (argmax, ties to the lowest id) from MODEL, a Hugging Face folder or\n"
    "a GGUF. Prints the prompt and its continuation to stdout.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL", NULL, 0,
};

typedef struct printer {
    const slm_tokenizer *tok;
    int ids;   /* print ids instead of pieces */
    int first; /* no separator before the first id */
} printer;

static void print_piece(void *ud, int32_t id) {
    printer *p = ud;
    if (p->ids) {
        printf("%s%d", p->first ? "" : " ", id);
        p->first = 0;
    } else {
        char buf[256];
        size_t n = slm_token_piece(p->tok, id, buf, sizeof buf);
        fwrite(buf, 1, n < sizeof buf ? n : sizeof buf, stdout);
    }
    fflush(stdout);
}

/* What a generation holds. */
typedef struct gen_state {
    slm_src src;
    slm_tokenizer tok;
    slm_model m;
    int32_t *ids, *out;
    size_t n_ids;
} gen_state;

/* The model, the prompt's ids, the transformer for prompt + n positions. */
static int load(gen_state *s, const char *in, const generate_opts *o, slm_err *err) {
    SLM_TRY(cli_src_open(&s->src, in, err));
    if (s->src.vocab.kind == SLM_VOCAB_NONE) return slm_errf(err, SLM_E_UNSUPPORTED, "%s: has no tokenizer", in);
    SLM_TRY(slm_tokenizer_build(&s->tok, &s->src.vocab, err));
    SLM_TRY(slm_tokenize(&s->tok, o->prompt, strlen(o->prompt), 1, &s->ids, &s->n_ids, err));
    if (s->n_ids == 0) return slm_errf(err, SLM_E_ARG, "the prompt gives no tokens (and the vocabulary adds no BOS)");
    if (s->n_ids + (size_t)o->n_gen > (size_t)1 << 24) return slm_errf(err, SLM_E_ARG, "prompt + -n: too many tokens");
    int max_ctx = (int)s->n_ids + (o->n_gen > 0 ? (int)o->n_gen - 1 : 0);
    SLM_TRY(cli_model_build(&s->src, &s->m, 1, max_ctx, o->numerics, err));
    if (s->src.cfg.n_ctx_train > 0 && max_ctx > s->src.cfg.n_ctx_train)
        msg_warn("%s: %d positions are more than the %d the model was trained on", in, max_ctx, s->src.cfg.n_ctx_train);
    return slm_alloc((void **)&s->out, sizeof(int32_t) * (size_t)(o->n_gen > 0 ? o->n_gen : 1), err, "generated ids");
}

/* Prints the prompt, then each generated piece as it comes. */
static int run(gen_state *s, const char *in, const generate_opts *o, slm_err *err) {
    int32_t stop[2];
    int n_stop = 0, n_out = 0;
    const int32_t eos = slm_tokenizer_eos(&s->tok);
    if (!o->ignore_eos && eos >= 0) stop[n_stop++] = eos;
    if (!o->ignore_eos && s->src.vocab.eot_id >= 0 && s->src.vocab.eot_id != eos) stop[n_stop++] = s->src.vocab.eot_id;
    printer pr = {&s->tok, o->ids, 1};
    if (o->ids) {
        for (size_t i = 0; i < s->n_ids; i++) print_piece(&pr, s->ids[i]);
        printf(" |");
    } else {
        fputs(o->prompt, stdout);
    }
    slm_gen_opts go = {.n_gen = (int)o->n_gen, .stop = stop, .n_stop = n_stop, .on_token = print_piece, .ud = &pr};
    double t0 = cli_now();
    int rc = slm_generate_greedy(&s->m, s->ids, (int)s->n_ids, &go, s->out, &n_out, err);
    double t1 = cli_now();
    putchar('\n');
    fflush(stdout);
    if (!rc && msg_show_summary())
        fprintf(stderr, "%s: %zu prompt tokens, %d generated in %.3f s (%.1f tokens/s), %d threads\n", in, s->n_ids, n_out,
                t1 - t0, t1 > t0 ? n_out / (t1 - t0) : 0.0, slm_threads_get());
    return rc;
}

int cmd_generate(int argc, char **argv) {
    generate_opts o = {.n_gen = 32, .numerics = SLM_NUMERICS_GGML};
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    if (!o.prompt) return msg_usage_error("missing -p TEXT");
    slm_threads_set((int)co.threads);
    slm_err err = {0};
    gen_state s = {0};
    int rc = load(&s, pos[0], &o, &err);
    if (!rc) rc = run(&s, pos[0], &o, &err);
    slm_free(s.out);
    slm_free(s.ids);
    slm_model_free(&s.m);
    slm_tokenizer_free(&s.tok);
    slm_src_close(&s.src);
    return rc ? cli_fail(&err) : EXIT_OK;
}
