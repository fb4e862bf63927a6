/* cmd_distill.c - `slm distill --teacher T --student S --text FILE -o OUT [--steps N | --tokens N |
 * --minutes M] [options]`: options, refusals, the two models, the loop (distill/trainer.h) with
 * its progress line, the trained student through the export pipeline (GGUF, or an HF folder),
 * the before/after evaluation, the gates and the report.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"
#include "cli_gates.h"
#include "core/adir.h"
#include "core/dtype.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "distill/trainer.h"
#include "export/export.h"
#include "export/export_hf.h"
#include "model/tokenizer.h"
#include "msg.h"
#include "opts.h"
#include "quantize/qtypes.h"
#include "quantize/recipe.h"

typedef struct distill_opts {
    const char *teacher, *student, *text, *out, *eval_text, *resume, *checkpoint, *report, *report_dir;
    long steps, tokens, ctx, batch, accum, warmup, eval_every, eval_chunks, eval_ctx, ckpt_every, decay_steps;
    double minutes, lr, min_lr, temperature, alpha, weight_decay, clip;
    long seed;
    int loss, dtype, format;
    slm_gates gates;
} distill_opts;

static const opt_choice k_losses[] = {{"fkl", SLM_KD_FORWARD_KL}, {"rkl", SLM_KD_REVERSE_KL}, {"jsd", SLM_KD_JSD}, {NULL, 0}};
static const opt_choice k_dtypes[] = {{"f32", SLM_DTYPE_F32}, {"f16", SLM_DTYPE_F16}, {"bf16", SLM_DTYPE_BF16}, {NULL, 0}};
static const opt_choice k_formats[] = {{"gguf", 0}, {"hf", 1}, {NULL, 0}};

static const opt k_opts[] = {
    {"--teacher", NULL, OPT_STR, OPT_OF(distill_opts, teacher), "MODEL", "the teacher: HF folder or GGUF (may be quantized)", 0, 0, NULL, NULL},
    {"--student", NULL, OPT_STR, OPT_OF(distill_opts, student), "MODEL",
     "the student: HF folder or F32/F16/BF16 GGUF with the teacher's vocabulary\n(e.g. the output of 'slm prune')", 0, 0, NULL, NULL},
    {"--text", NULL, OPT_STR, OPT_OF(distill_opts, text), "FILE", "training text (plain UTF-8)", 0, 0, NULL, NULL},
    {"--output", "-o", OPT_STR, OPT_OF(distill_opts, out), "OUT", "the trained student (GGUF, or a folder with --format hf)", 0, 0, NULL, NULL},
    {"--steps", NULL, OPT_INT, OPT_OF(distill_opts, steps), "N", "stop after N updates (also the length of the cosine decay)", 1, 1e15, NULL, NULL},
    {"--tokens", NULL, OPT_INT, OPT_OF(distill_opts, tokens), "N", "stop after N training tokens", 1, 1e15, NULL, NULL},
    {"--minutes", NULL, OPT_NUM, OPT_OF(distill_opts, minutes), "M", "stop after M minutes of wall time", 1e-6, 1e9, NULL, NULL},
    {"--ctx", NULL, OPT_INT, OPT_OF(distill_opts, ctx), "N", "tokens per training sequence (also of the periodic evaluation) [128]", 4, 1 << 16, NULL, NULL},
    {"--batch", NULL, OPT_INT, OPT_OF(distill_opts, batch), "N", "sequences per micro-batch [8]", 1, 1 << 16, NULL, NULL},
    {"--accum", NULL, OPT_INT, OPT_OF(distill_opts, accum), "N", "micro-batches per update (gradient accumulation) [1]", 1, 1 << 16, NULL, NULL},
    {"--lr", NULL, OPT_NUM, OPT_OF(distill_opts, lr), "X", "peak learning rate [3e-4]", 1e-12, 1e30, NULL, NULL},
    {"--min-lr", NULL, OPT_NUM, OPT_OF(distill_opts, min_lr), "X", "learning rate the cosine decays to [lr/10]", 0, 1e30, NULL, NULL},
    {"--warmup", NULL, OPT_INT, OPT_OF(distill_opts, warmup), "N", "linear warmup updates [20]", 0, 1e15, NULL, NULL},
    {"--decay-steps", NULL, OPT_INT, OPT_OF(distill_opts, decay_steps), "N",
     "cosine decay over N updates [--steps; constant without --steps]", 1, 1e15, NULL, NULL},
    {"--weight-decay", NULL, OPT_NUM, OPT_OF(distill_opts, weight_decay), "X", "AdamW weight decay on matrices [0]", 0, 10, NULL, NULL},
    {"--clip", NULL, OPT_NUM, OPT_OF(distill_opts, clip), "X", "clip the global gradient norm to X (0: off) [1]", 0, 1e30, NULL, NULL},
    {"--temperature", NULL, OPT_NUM, OPT_OF(distill_opts, temperature), "T", "softmax temperature of the divergence [1]", 1e-3, 1e3, NULL, NULL},
    {"--alpha", NULL, OPT_NUM, OPT_OF(distill_opts, alpha), "A", "weight of the text's cross-entropy, 0..1 [0]", 0, 1, NULL, NULL},
    {"--loss", NULL, OPT_CHOICE, OPT_OF(distill_opts, loss), NULL, "fkl: KL(teacher||student) (default), rkl: reverse KL, jsd", 0, 0, k_losses, NULL},
    {"--eval-text", NULL, OPT_STR, OPT_OF(distill_opts, eval_text), "FILE",
     "held-out text: PPL/KLD against the teacher every --eval-every updates,\nbefore/after in the summary and the report; needed by the gates", 0, 0, NULL, NULL},
    {"--eval-every", NULL, OPT_INT, OPT_OF(distill_opts, eval_every), "N", "evaluate every N updates [0: before and after only]", 0, 1e15, NULL, NULL},
    {"--eval-chunks", NULL, OPT_INT, OPT_OF(distill_opts, eval_chunks), "K", "periodic evaluations score at most K windows [all]", 0, 1e15, NULL, NULL},
    {"--eval-ctx", NULL, OPT_INT, OPT_OF(distill_opts, eval_ctx), "N", "window of the before/after evaluation [512]", 4, 1 << 20, NULL, NULL},
    {"--checkpoint", NULL, OPT_STR, OPT_OF(distill_opts, checkpoint), "FILE",
     "write weights, AdamW moments, step and data position here (atomically)", 0, 0, NULL, NULL},
    {"--checkpoint-every", NULL, OPT_INT, OPT_OF(distill_opts, ckpt_every), "N", "... every N updates and at the end [100]", 1, 1e15, NULL, NULL},
    {"--resume", NULL, OPT_STR, OPT_OF(distill_opts, resume), "CKPT", "continue from a checkpoint (same options: same bytes as one run)", 0, 0, NULL, NULL},
    {"--seed", NULL, OPT_INT, OPT_OF(distill_opts, seed), "N", "order of the training windows [0]", 0, 9.2e18, NULL, NULL},
    {"--dtype", NULL, OPT_CHOICE, OPT_OF(distill_opts, dtype), NULL, "type of the written weights: f32 (default), f16, bf16", 0, 0, k_dtypes, NULL},
    {"--format", NULL, OPT_CHOICE, OPT_OF(distill_opts, format), NULL, "gguf (default), or hf: a Hugging Face folder (one width per layer)", 0, 0, k_formats, NULL},
    CLI_GATE_OPTS(distill_opts, gates),
    {"--report", NULL, OPT_STR, OPT_OF(distill_opts, report), "FILE.json", "the report (JSON)", 0, 0, NULL, NULL},
    {"--report-dir", NULL, OPT_STR, OPT_OF(distill_opts, report_dir), "DIR", "the report as report.json, report.md and report.html", 0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "distill", "--teacher T --student S --text FILE -o OUT [--steps N | --tokens N | --minutes M] [options]",
    "Trains the student (usually a pruned model) to match the teacher's next-token distributions\n"
    "on a text: logit distillation with AdamW in F32 on the CPU. Pruned structure stays removed\n"
    "and pruned zeros stay 0. The output goes straight into 'slm quantize'.",
    k_opts, SLM_ARRAY_LEN(k_opts), 0, 0, "",
    "The weights after N updates are identical for any thread count and after --resume.", 1,
};

typedef struct job {
    const distill_opts *o;
    slm_src tsrc, ssrc;
    slm_tensor_src sts;
    slm_model teacher, student;
    slm_tokenizer tok;
    int32_t *ids, *eids;
    size_t n_ids, n_eids;
    slm_trainer_result res;
    slm_report rep;
    double t0;
    int64_t tokens0; /* training tokens before this run's first step, -1 until known */
} job;

/* ---- refusals */

static int check_student(const slm_src *s, const char *path, slm_err *err) {
    for (size_t i = 0; i < s->n_tensors; i++) {
        const int dt = s->tensors[i].dtype;
        if (dt != SLM_DTYPE_F32 && dt != SLM_DTYPE_F16 && dt != SLM_DTYPE_BF16)
            return slm_errf(err, SLM_E_UNSUPPORTED,
                            "%s: the student is quantized (%s is %s): not trainable; distill an F32/F16/BF16 model, then quantize",
                            path, s->tensors[i].name, slm_dtype_name(dt));
    }
    return SLM_OK;
}

/* The first token id whose string differs (n_tokens when none), -1 for different sizes. */
static int32_t vocab_diff(const slm_vocab *a, const slm_vocab *b) {
    if (a->n_tokens != b->n_tokens) return -1;
    int32_t i = 0;
    while (i < a->n_tokens && !strcmp(a->tokens[i], b->tokens[i])) i++;
    return i;
}

static int check_vocab(const job *j, slm_err *err) {
    const slm_vocab *t = &j->tsrc.vocab, *s = &j->ssrc.vocab;
    const int32_t d = vocab_diff(t, s);
    if (j->tsrc.cfg.n_vocab != j->ssrc.cfg.n_vocab || d < 0)
        return slm_errf(err, SLM_E_ARG, "%s: the student's vocabulary (%d tokens) differs from the teacher's (%s: %d tokens)",
                        j->o->student, j->ssrc.cfg.n_vocab, j->o->teacher, j->tsrc.cfg.n_vocab);
    if (d < t->n_tokens)
        return slm_errf(err, SLM_E_ARG, "%s: the student's vocabulary differs from the teacher's (%s): token %d is '%s', not '%s'",
                        j->o->student, j->o->teacher, (int)d, s->tokens[d], t->tokens[d]);
    return SLM_OK;
}

/* ---- loading */

static int tokenize_file(job *j, const char *path, int32_t **ids, size_t *n, slm_err *err) {
    slm_map mp = {0};
    int rc = slm_map_open(&mp, path, err);
    if (!rc) rc = slm_tokenize(&j->tok, mp.data ? (const char *)mp.data : "", mp.size, 1, ids, n, err);
    if (rc) slm_err_prefix(err, "%s", path);
    slm_map_close(&mp);
    return rc;
}

static int load(job *j, slm_err *err) {
    const distill_opts *o = j->o;
    SLM_TRY(slm_src_open(&j->tsrc, o->teacher, err));
    SLM_TRY(slm_src_open(&j->ssrc, o->student, err));
    SLM_TRY(check_student(&j->ssrc, o->student, err));
    SLM_TRY(check_vocab(j, err));
    SLM_TRY(slm_tokenizer_build(&j->tok, &j->ssrc.vocab, err));
    SLM_TRY(tokenize_file(j, o->text, &j->ids, &j->n_ids, err));
    if (o->eval_text) SLM_TRY(tokenize_file(j, o->eval_text, &j->eids, &j->n_eids, err));
    SLM_TRY(cli_model_build(&j->tsrc, &j->teacher, (int)o->batch, (int)o->ctx, SLM_NUMERICS_F32, err));
    slm_src_tensors(&j->ssrc, &j->sts);
    int rc = slm_model_build_batch(&j->student, &j->ssrc.cfg, &j->sts, (int)o->batch, (int)o->ctx, SLM_BUILD_KEEP_ACTS, err);
    if (rc) slm_err_prefix(err, "%s", o->student);
    return rc;
}

/* ---- the loop and its progress line */

static void eta_str(char *b, size_t cap, const job *j, const slm_trainer_point *p) {
    const distill_opts *o = j->o;
    double left = -1, el = p->seconds;
    if (o->steps && p->step > 0) left = el / (double)p->step * (double)(o->steps - p->step);
    if (o->tokens && p->tokens > 0) {
        double l2 = el / (double)p->tokens * (double)(o->tokens - p->tokens);
        left = left < 0 || l2 < left ? l2 : left;
    }
    if (o->minutes > 0 && (left < 0 || o->minutes * 60 - el < left)) left = o->minutes * 60 - el;
    if (left < 0) left = 0;
    snprintf(b, cap, "%d:%02d", (int)(left / 60), (int)fmod(left, 60));
}

static int add_point(job *j, const slm_trainer_point *p) {
    slm_report_train *t = &j->rep.train;
    slm_err err = {0};
    if (slm_realloc((void **)&t->points, (t->n_points + 1) * sizeof *t->points, &err, "loss curve")) return -1;
    t->points[t->n_points++] = (slm_report_train_point){.step = p->step, .tokens = p->tokens, .seconds = p->seconds,
                                                        .loss = p->loss, .lr = p->lr, .ppl = p->ppl, .kld = p->kld};
    return 0;
}

static void on_point(void *ud, const slm_trainer_point *p) {
    job *j = ud;
    add_point(j, p);
    if (j->tokens0 < 0) j->tokens0 = p->is_eval ? p->tokens : p->tokens - j->o->batch * j->o->ctx * j->o->accum;
    if (p->is_eval) {
        if (g_msg.progress) msg_progress_done();
        if (msg_show_summary())
            fprintf(stderr, "step %lld: held-out PPL %.4f (teacher %.4f), KLD %.6f, top-1 %.2f%%\n", (long long)p->step, p->ppl,
                    p->teacher_ppl, p->kld, 100.0 * p->top1);
        return;
    }
    char line[160], eta[32];
    eta_str(eta, sizeof eta, j, p);
    const double tps = p->seconds > 0 ? (double)(p->tokens - j->tokens0) / p->seconds : 0;
    snprintf(line, sizeof line, "step %lld loss %.4f lr %.2e %.0f tok/s ETA %s", (long long)p->step, p->loss, p->lr, tps, eta);
    double frac = j->o->steps ? (double)p->step / (double)j->o->steps : 0;
    if (j->o->minutes > 0 && !j->o->steps) frac = p->seconds / (60 * j->o->minutes);
    msg_progress(line, frac > 1 ? 1 : frac);
}

static void trainer_opts(const job *j, slm_trainer_opts *t) {
    const distill_opts *o = j->o;
    slm_trainer_defaults(t);
    t->batch = (int)o->batch, t->ctx = (int)o->ctx, t->accum = (int)o->accum;
    t->max_steps = o->steps, t->max_tokens = o->tokens, t->max_seconds = 60 * o->minutes;
    t->seed = (uint64_t)o->seed, t->bos_id = slm_tokenizer_bos(&j->tok);
    t->loss = (slm_distill_loss_opts){.divergence = o->loss, .temperature = (float)o->temperature, .alpha = (float)o->alpha};
    t->adamw.lr = (float)o->lr, t->adamw.min_lr = (float)(o->min_lr >= 0 ? o->min_lr : o->lr / 10);
    t->adamw.warmup_steps = o->warmup, t->adamw.total_steps = o->decay_steps ? o->decay_steps : o->steps;
    t->adamw.weight_decay = (float)o->weight_decay, t->adamw.clip_norm = (float)o->clip;
    t->eval_ids = j->eids, t->n_eval = (int64_t)j->n_eids, t->eval_every = o->eval_every, t->eval_chunks = o->eval_chunks;
    t->checkpoint = o->checkpoint, t->checkpoint_every = o->ckpt_every, t->resume = o->resume;
    t->on_point = on_point, t->ud = (void *)j;
}

static int train(job *j, slm_err *err) {
    slm_trainer_opts t;
    trainer_opts(j, &t);
    int rc = slm_trainer_run(&j->teacher, &j->student, j->ids, (int64_t)j->n_ids, &t, &j->res, err);
    if (g_msg.progress) msg_progress_done();
    if (rc == SLM_E_DATA && j->res.nan_step >= 0 && j->o->checkpoint) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        if (j->res.ckpt_step >= 0)
            slm_errf(err, SLM_E_DATA, "%s; last good checkpoint %s (step %lld) kept", m, j->o->checkpoint, (long long)j->res.ckpt_step);
        else slm_errf(err, SLM_E_DATA, "%s; no checkpoint was written yet", m);
    }
    return rc;
}

/* ---- the output */

static void progress(void *ud, const char *tensor, size_t done, size_t n) {
    SLM_UNUSED(ud);
    if (done < n) msg_progress(tensor, (double)done / (double)n);
    else msg_progress_done();
}

static const char *dtype_ftype(int dt) { return dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32"; }

/* The trained weights (slm_model_tensors) through the export pipeline: deci GGUF for per-layer widths. */
static int write_gguf(job *j, slm_outset *set, slm_err *err) {
    slm_tensor_src ts;
    slm_kvs meta = {0};
    slm_export x = {0};
    slm_afile *f = NULL;
    slm_model_tensors(&j->student, &ts);
    int rc = slm_model_gguf_meta(&j->ssrc.cfg, j->ssrc.name, &j->ssrc.vocab, &meta, err);
    slm_export_opts eo = {.cfg = &j->ssrc.cfg, .meta = &meta, .widen_1d = 1, .progress = progress};
    eo.recipe = (slm_recipe_opts){.ftype = slm_ftype_find(dtype_ftype(j->o->dtype)), .output_type = -1, .token_embd_type = -1};
    if (!rc) rc = slm_export_plan(&x, &ts, &eo, err);
    if (!rc) rc = slm_outset_open(set, j->o->out, &f, err);
    if (!rc) rc = slm_export_write(&x, f, err);
    if (!rc) {
        j->rep.tensors = x.rep.tensors, j->rep.n_tensors = x.rep.n_tensors, x.rep.tensors = NULL, x.rep.n_tensors = 0;
        j->rep.out_bytes = x.rep.out_bytes, j->rep.n_params = x.rep.n_params, j->rep.bpw = x.rep.bpw;
        snprintf(j->rep.ftype, sizeof j->rep.ftype, "%s", dtype_ftype(j->o->dtype));
    }
    slm_export_free(&x);
    slm_kvs_free(&meta);
    return rc;
}

static int write_hf(job *j, int force, slm_err *err) {
    slm_adir d;
    slm_tensor_src ts;
    struct stat st;
    const distill_opts *o = j->o;
    const char *base = stat(o->student, &st) == 0 && S_ISDIR(st.st_mode) ? o->student
                       : stat(o->teacher, &st) == 0 && S_ISDIR(st.st_mode) ? o->teacher : NULL;
    slm_model_tensors(&j->student, &ts);
    slm_export_hf_opts ho = {.src = &ts, .cfg = &j->ssrc.cfg, .base_dir = base, .progress = progress, .dtype = o->dtype};
    SLM_TRY(slm_adir_open(&d, o->out, force ? SLM_AFILE_REPLACE : 0, err));
    int rc = slm_export_hf(&ho, &d, err);
    if (!rc) rc = slm_adir_commit(&d, err);
    else slm_adir_abort(&d);
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", o->out);
    if (!rc && stat(p, &st) == 0) j->rep.out_bytes = (uint64_t)st.st_size;
    snprintf(j->rep.ftype, sizeof j->rep.ftype, "%s", dtype_ftype(o->dtype));
    return rc;
}

/* ---- evaluation, summary, report */

static int eval_file(const job *j, const char *model, slm_report_eval *v, slm_err *err) {
    cli_eval_args a = {.model = model, .ref = j->o->teacher, .text = j->o->eval_text, .ctx = j->o->eval_ctx,
                       .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    return cli_eval_into(&a, v, err);
}

static void print_eval(const char *what, const slm_report_eval *v) {
    fprintf(stderr, "%-9s PPL %.4f (teacher %.4f, %+.4f), mean KLD %.6f, top-1 %.2f%%\n", what, v->ppl, v->ref_ppl, v->dppl,
            v->kld_mean, 100.0 * v->top1);
}

static void summary(const job *j) {
    const slm_report_train *t = &j->rep.train;
    char b[32];
    fprintf(stderr, "distill: %lld steps, %lld tokens in %.1f s (%.0f tokens/s), %lld frozen weights, peak RSS %s\n",
            (long long)t->steps, (long long)t->tokens, t->train_seconds, t->tok_per_s, (long long)j->res.n_frozen,
            slm_fmt_bytes(b, sizeof b, j->rep.peak_rss_bytes));
    if (t->before.present) print_eval("before:", &t->before);
    if (j->rep.eval.present) print_eval("after:", &j->rep.eval);
    if (t->before.present && j->rep.eval.present && t->before.ppl > t->before.ref_ppl)
        fprintf(stderr, "PPL gap to the teacher recovered: %.1f%%\n",
                100.0 * (t->before.ppl - j->rep.eval.ppl) / (t->before.ppl - t->before.ref_ppl));
}

static void fill_report(job *j) {
    slm_report *r = &j->rep;
    slm_report_train *t = &r->train;
    const distill_opts *o = j->o;
    snprintf(r->command, sizeof r->command, "distill");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    snprintf(r->model, sizeof r->model, "%s", o->student);
    snprintf(r->model_name, sizeof r->model_name, "%s", j->ssrc.name);
    snprintf(r->output, sizeof r->output, "%s", o->out);
    snprintf(r->method, sizeof r->method, "%s", slm_kd_div_name(o->loss));
    snprintf(r->method_params, sizeof r->method_params, "lr=%g temperature=%g alpha=%g batch=%ld ctx=%ld accum=%ld seed=%ld",
             o->lr, o->temperature, o->alpha, o->batch, o->ctx, o->accum, o->seed);
    r->src_bytes = j->ssrc.total_bytes;
    r->threads = slm_threads_get();
    t->present = 1;
    snprintf(t->teacher, sizeof t->teacher, "%s", o->teacher);
    snprintf(t->text, sizeof t->text, "%s", o->text);
    t->steps = j->res.steps, t->tokens = j->res.tokens, t->tok_per_s = j->res.tok_per_s, t->train_seconds = j->res.seconds;
}

static int finish(job *j, cli_outputs *outs, int *gate, slm_err *err) {
    const distill_opts *o = j->o;
    if (o->eval_text) {
        SLM_TRY(eval_file(j, o->out, &j->rep.eval, err));
        *gate = cli_gates_check(&o->gates, &j->rep);
    }
    j->rep.seconds = cli_now() - j->t0;
    j->rep.peak_rss_bytes = cli_peak_rss();
    if (msg_show_summary()) summary(j);
    if (o->report) SLM_TRY(slm_report_write_json(&outs->set, &j->rep, o->report, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(&outs->set, &j->rep, 1, o->report_dir, err));
    return SLM_OK;
}

static void remove_out(const distill_opts *o) {
    if (o->format == 1) slm_adir_remove(o->out);
    else unlink(o->out);
}

/* Load, evaluate the student before, train, write (committed first: the evaluation reads it),
   evaluate after, report; no model without its report. */
static int run(job *j, cli_outputs *outs, int *gate) {
    slm_err err = {0};
    const distill_opts *o = j->o;
    int rc = load(j, &err);
    if (!rc) fill_report(j);
    if (!rc && o->eval_text) rc = eval_file(j, o->student, &j->rep.train.before, &err);
    if (!rc) rc = train(j, &err);
    if (!rc) fill_report(j);
    if (!rc) rc = o->format == 1 ? write_hf(j, outs->force, &err) : write_gguf(j, &outs->set, &err);
    if (!rc && o->format != 1) rc = cli_outputs_commit(outs, &err);
    if (!rc && (rc = finish(j, outs, gate, &err))) remove_out(o);
    if (!rc && (rc = cli_outputs_commit(outs, &err))) remove_out(o);
    if (rc) cli_outputs_abort(outs);
    return rc ? cli_fail(&err) : EXIT_OK;
}

static void job_free(job *j) {
    slm_report_free(&j->rep);
    slm_free(j->ids), slm_free(j->eids);
    slm_tokenizer_free(&j->tok);
    slm_model_free(&j->student), slm_model_free(&j->teacher);
    slm_src_close(&j->ssrc), slm_src_close(&j->tsrc);
}

static int check_args(const distill_opts *o) {
    if (!o->teacher || !o->student || !o->text) return msg_usage_error("give --teacher MODEL, --student MODEL and --text FILE");
    if (!o->out) return msg_usage_error("missing -o OUT");
    if (!o->steps && !o->tokens && !(o->minutes > 0)) return msg_usage_error("give --steps N, --tokens N or --minutes M");
    if (slm_gates_any(&o->gates) && !o->eval_text) return msg_usage_error("quality gates need an evaluation: add --eval-text FILE");
    if (o->warmup && o->decay_steps && o->warmup >= o->decay_steps) return msg_usage_error("--warmup must be below --decay-steps");
    return 0;
}

static int add_outputs(cli_outputs *outs, const distill_opts *o, int force) {
    cli_outputs_init(outs, force);
    cli_outputs_input(outs, o->teacher), cli_outputs_input(outs, o->student), cli_outputs_input(outs, o->text);
    cli_outputs_input(outs, o->eval_text), cli_outputs_input(outs, o->resume);
    if (o->checkpoint && cli_same_file(o->checkpoint, o->out)) {
        msg_error("%s: the checkpoint and the output are the same file", o->out);
        return EXIT_FAIL;
    }
    if ((o->format == 1 ? cli_outputs_add_dir(outs, o->out) : cli_outputs_add(outs, o->out)) || cli_outputs_add(outs, o->report) ||
        cli_outputs_add_report_dir(outs, o->report_dir, 1))
        return EXIT_FAIL;
    return EXIT_OK;
}

int cmd_distill(int argc, char **argv) {
    distill_opts o = {.ctx = 128, .batch = 8, .accum = 1, .lr = 3e-4, .min_lr = -1, .warmup = 20, .temperature = 1, .clip = 1,
                      .eval_ctx = 512, .ckpt_every = 100};
    common_opts co = {0};
    slm_gates_none(&o.gates);
    const char *pos[1];
    int n_pos;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    if (check_args(&o)) return EXIT_USAGE;
    cli_outputs outs;
    if (add_outputs(&outs, &o, co.force)) return EXIT_FAIL;
    slm_threads_set((int)co.threads);
    job j = {.o = &o, .t0 = cli_now(), .tokens0 = -1};
    int gate = EXIT_OK, rc = run(&j, &outs, &gate);
    job_free(&j);
    return rc ? rc : gate;
}
