/* cmd_generate.c - `slm generate MODEL -p TEXT -n N`: greedy continuation of a prompt.
 *
 * Pipeline: open the model -> tokenize the prompt (BOS as the vocab says) -> build for
 * prompt + N positions -> model/eval's greedy loop, printing each piece as it comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/model_src.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "msg.h"

static void usage(FILE *f, int full) {
    fprintf(f, "usage: slm generate MODEL -p TEXT [-n N] [--ignore-eos] [--ids] [options]\n");
    if (!full) return;
    fprintf(f, "\nGreedy generation (argmax, ties to the lowest id) from MODEL, a Hugging Face folder or\n"
               "a GGUF. Prints the prompt and its continuation to stdout.\n\n"
               "options:\n"
               "  -p, --prompt TEXT   prompt (tokenized with BOS when the vocabulary adds one)\n"
               "  -n, --n-predict N   tokens to generate [32]\n"
               "  --ignore-eos        do not stop at the end-of-sequence token\n"
               "  --ids               print the prompt and generated token ids instead of text\n"
               "  -t, --threads N     threads (default: OMP_NUM_THREADS, else all cores)\n"
               "  -q, -v              quieter / more verbose\n"
               "  -h, --help          this help\n"
               "\nexit status: 0 ok, 1 failure, 2 usage, 130/143 interrupted\n");
}

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

int cmd_generate(int argc, char **argv) {
    common_opts co = {0};
    const char *in = NULL, *prompt = NULL;
    long n_gen = 32;
    int ignore_eos = 0, print_ids = 0;
    args a;
    args_init(&a, argc, argv);
    for (const char *s; (s = args_next(&a));) {
        int r;
        if (!args_is_opt(&a)) {
            if (in) return msg_usage_error("unexpected argument '%s'", s);
            in = s;
        } else if ((r = args_common(&a, &co))) {
            if (r < 0) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--prompt", "-p"))) {
            if (r < 0) return EXIT_USAGE;
            prompt = a.val;
        } else if ((r = args_value(&a, "--n-predict", "-n"))) {
            if (r < 0 || args_int(&a, "--n-predict", 0, 1 << 20, &n_gen)) return EXIT_USAGE;
        } else if (args_flag(&a, "--ignore-eos", NULL)) {
            ignore_eos = 1;
        } else if (args_flag(&a, "--ids", NULL)) {
            print_ids = 1;
        } else {
            return msg_usage_error("unknown option '%s'", s);
        }
    }
    if (co.help) { usage(stdout, co.help == 2); return EXIT_OK; }
    if (!in) return msg_usage_error("missing MODEL");
    if (!prompt) return msg_usage_error("missing -p TEXT");
    slm_threads_set(co.threads);

    slm_err err = {0};
    slm_src src = {0};
    slm_tokenizer tok = {0};
    slm_model m = {0};
    int32_t *ids = NULL, *out = NULL;
    size_t n_ids = 0;
    int n_out = 0;
    int rc = slm_src_open(&src, in, &err);
    if (!rc && src.vocab.kind == SLM_VOCAB_NONE)
        rc = slm_errf(&err, SLM_E_UNSUPPORTED, "%s: has no tokenizer", in);
    if (!rc) rc = slm_tokenizer_build(&tok, &src.vocab, &err);
    if (!rc) rc = slm_tokenize(&tok, prompt, strlen(prompt), 1, &ids, &n_ids, &err);
    if (!rc && n_ids == 0) rc = slm_errf(&err, SLM_E_ARG, "the prompt gives no tokens (and the vocabulary adds no BOS)");
    if (!rc && n_ids + (size_t)n_gen > (size_t)1 << 24) rc = slm_errf(&err, SLM_E_ARG, "prompt + -n: too many tokens");
    int max_ctx = (int)n_ids + (n_gen > 0 ? (int)n_gen - 1 : 0);
    if (!rc) rc = cli_model_build(&src, &m, max_ctx, &err);
    if (!rc) rc = slm_alloc((void **)&out, sizeof(int32_t) * (size_t)(n_gen > 0 ? n_gen : 1), &err, "generated ids");
    if (rc) goto done;
    if (src.cfg.n_ctx_train > 0 && max_ctx > src.cfg.n_ctx_train)
        msg_warn("%s: %d positions are more than the %d the model was trained on", in, max_ctx, src.cfg.n_ctx_train);

    int32_t stop[2];
    int n_stop = 0;
    const int32_t eos = slm_tokenizer_eos(&tok);
    if (!ignore_eos && eos >= 0) stop[n_stop++] = eos;
    if (!ignore_eos && src.vocab.eot_id >= 0 && src.vocab.eot_id != eos) stop[n_stop++] = src.vocab.eot_id;
    printer pr = {&tok, print_ids, 1};
    if (print_ids) {
        for (size_t i = 0; i < n_ids; i++) print_piece(&pr, ids[i]);
        printf(" |");
    } else {
        fputs(prompt, stdout);
    }
    slm_gen_opts o = {.n_gen = (int)n_gen, .stop = stop, .n_stop = n_stop, .on_token = print_piece, .ud = &pr};
    double t0 = cli_now();
    rc = slm_generate_greedy(&m, ids, (int)n_ids, &o, out, &n_out, &err);
    double t1 = cli_now();
    putchar('\n');
    fflush(stdout);
    if (!rc && msg_show_summary())
        fprintf(stderr, "%s: %zu prompt tokens, %d generated in %.3f s (%.1f tokens/s), %d threads\n", in, n_ids, n_out,
                t1 - t0, t1 > t0 ? n_out / (t1 - t0) : 0.0, slm_threads_get());
done:
    slm_free(out);
    slm_free(ids);
    slm_model_free(&m);
    slm_tokenizer_free(&tok);
    slm_src_close(&src);
    return rc ? cli_fail(&err) : EXIT_OK;
}
