/* cmd_distill.c - `slm distill --teacher T --student S --text FILE -o OUT [options]`: options,
 * the two models and the token streams, the trainer (distill/trainer.h) with its progress line
 * and checkpoints, the student written through the export pipeline (GGUF) or as an HF folder,
 * the held-out evaluation with the quality gates, the summary and the report.
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
#include "core/sha256.h"
#include "core/slm.h"
#include "core/thread.h"
#include "distill/trainer.h"
#include "export/export.h"
#include "export/export_hf.h"
#include "formats/model_src.h"
#include "model/tokenizer.h"
#include "msg.h"
#include "opts.h"
#include "quantize/qtypes.h"
#include "quantize/recipe.h"

typedef struct distill_opts {
    const char *teacher, *student, *text, *out, *eval_text, *resume, *checkpoint, *report, *report_dir, *tcache;
    long topk, steps, tokens, ctx, batch, accum, warmup, eval_every, eval_chunks, eval_ctx, ckpt_every, seed;
    double fweight, minutes, lr, min_lr, wd, clip, temperature, alpha;
    int loss, outtype, format, train_zeros;
    slm_gates gates;
} distill_opts;

static const opt_choice k_losses[] = {{"fkl", SLM_KD_FORWARD_KL}, {"rkl", SLM_KD_REVERSE_KL}, {"jsd", SLM_KD_JSD}, {NULL, 0}};
static const opt_choice k_outtypes[] = {{"f32", SLM_DTYPE_F32}, {"f16", SLM_DTYPE_F16}, {"bf16", SLM_DTYPE_BF16}, {NULL, 0}};
static const opt_choice k_formats[] = {{"gguf", 0}, {"hf", 1}, {NULL, 0}};

static const opt k_opts[] = {
    {"--teacher", NULL, OPT_STR, OPT_OF(distill_opts, teacher), "MODEL", "the model to learn from (any type slm reads, quantized too)", 0,
     0, NULL, NULL},
    {"--student", NULL, OPT_STR, OPT_OF(distill_opts, student), "MODEL",
     "the model trained (F32/F16/BF16: HF folder or GGUF, e.g. from 'slm prune')", 0, 0, NULL, NULL},
    {"--text", NULL, OPT_STR, OPT_OF(distill_opts, text), "FILE", "training text (tokenized with the teacher's tokenizer)", 0, 0, NULL,
     NULL},
    {"--output", "-o", OPT_STR, OPT_OF(distill_opts, out), "OUT", "the trained student (GGUF, or a folder with --format hf)", 0, 0, NULL,
     NULL},
    {"--steps", NULL, OPT_INT, OPT_OF(distill_opts, steps), "N", "optimizer steps [200 unless --tokens/--minutes]", 1, 1e12, NULL, NULL},
    {"--tokens", NULL, OPT_INT, OPT_OF(distill_opts, tokens), "N", "stop after N training tokens", 1, 9e18, NULL, NULL},
    {"--minutes", NULL, OPT_NUM, OPT_OF(distill_opts, minutes), "M", "stop after M minutes of training", 1e-6, 1e9, NULL, NULL},
    {"--ctx", NULL, OPT_INT, OPT_OF(distill_opts, ctx), "N", "tokens per training window [256]", 4, 1 << 20, NULL, NULL},
    {"--batch", NULL, OPT_INT, OPT_OF(distill_opts, batch), "N", "windows per micro-batch [8]", 1, 1 << 16, NULL, NULL},
    {"--accum", NULL, OPT_INT, OPT_OF(distill_opts, accum), "N", "micro-batches per optimizer step (gradient accumulation) [1]", 1,
     1 << 16, NULL, NULL},
    {"--lr", NULL, OPT_NUM, OPT_OF(distill_opts, lr), "X", "peak learning rate of AdamW [1e-3]", 0, 10, NULL, NULL},
    {"--min-lr", NULL, OPT_NUM, OPT_OF(distill_opts, min_lr), "X", "floor of the cosine decay [lr / 10]", 0, 10, NULL, NULL},
    {"--warmup", NULL, OPT_INT, OPT_OF(distill_opts, warmup), "N", "linear warmup steps [5% of --steps]", 0, 1e12, NULL, NULL},
    {"--weight-decay", NULL, OPT_NUM, OPT_OF(distill_opts, wd), "X", "AdamW's decoupled weight decay on matrices [0]", 0, 10, NULL,
     NULL},
    {"--clip", NULL, OPT_NUM, OPT_OF(distill_opts, clip), "X", "clip the global gradient norm to X (0: off) [1]", 0, 1e9, NULL, NULL},
    {"--loss", NULL, OPT_CHOICE, OPT_OF(distill_opts, loss), NULL,
     "fkl: KL(teacher || student) (default), rkl: KL(student || teacher),\njsd: Jensen-Shannon", 0, 0, k_losses, NULL},
    {"--temperature", NULL, OPT_NUM, OPT_OF(distill_opts, temperature), "T", "softmax temperature of the divergence (T^2-scaled) [1]",
     1e-3, 1e3, NULL, NULL},
    {"--alpha", NULL, OPT_NUM, OPT_OF(distill_opts, alpha), "A", "weight of the text's cross-entropy (1 - A: the divergence) [0]", 0,
     1, NULL, NULL},
    {"--teacher-cache", NULL, OPT_STR, OPT_OF(distill_opts, tcache), "FILE",
     "the teacher's top-k per token, made once (when FILE does not exist)\nand reused: training skips the teacher's forward "
     "(forward KL over\nthe top-k plus the tail mass; same teacher, text, ctx, temperature)", 0, 0, NULL, NULL},
    {"--cache-topk", NULL, OPT_INT, OPT_OF(distill_opts, topk), "K", "logits kept per token in a new teacher cache [32]", 1, 1 << 20,
     NULL, NULL},
    {"--feature-weight", NULL, OPT_NUM, OPT_OF(distill_opts, fweight), "W",
     "add W x the mean squared difference of every layer's output (hidden\nstates, layer l to layer l: students with the teacher's "
     "width and\ndepth, e.g. FFN- or head-pruned) [0]", 0, 1e6, NULL, NULL},
    {"--train-zeros", NULL, OPT_FLAG, OPT_OF(distill_opts, train_zeros), NULL,
     "let weights that are exactly 0 change (default: pruned zeros stay 0)", 0, 0, NULL, NULL},
    {"--seed", NULL, OPT_INT, OPT_OF(distill_opts, seed), "N", "order of the training windows [0]", 0, 9e18, NULL, NULL},
    {"--eval-text", NULL, OPT_STR, OPT_OF(distill_opts, eval_text), "FILE",
     "held-out text: student PPL and KL vs the teacher at the start, every\n--eval-every steps and of the written output "
     "(the gates)", 0, 0, NULL, NULL},
    {"--eval-every", NULL, OPT_INT, OPT_OF(distill_opts, eval_every), "N", "steps between held-out evaluations [start and end]", 1,
     1e12, NULL, NULL},
    {"--eval-ctx", NULL, OPT_INT, OPT_OF(distill_opts, eval_ctx), "N", "evaluation window [--ctx]", 4, 1 << 20, NULL, NULL},
    {"--eval-chunks", NULL, OPT_INT, OPT_OF(distill_opts, eval_chunks), "K", "evaluate at most K windows [all]", 1, 9e18, NULL, NULL},
    CLI_GATE_OPTS(distill_opts, gates),
    {"--checkpoint", NULL, OPT_STR, OPT_OF(distill_opts, checkpoint), "FILE",
     "write the training state here (atomically replaced) every\n--checkpoint-every steps and at the end", 0, 0, NULL, NULL},
    {"--checkpoint-every", NULL, OPT_INT, OPT_OF(distill_opts, ckpt_every), "N", "steps between checkpoints [100]", 1, 1e12, NULL,
     NULL},
    {"--resume", NULL, OPT_STR, OPT_OF(distill_opts, resume), "CKPT",
     "continue from a checkpoint (same --student, --text, --ctx, --batch,\n--accum, --seed): the same weights as one run", 0, 0, NULL,
     NULL},
    {"--outtype", NULL, OPT_CHOICE, OPT_OF(distill_opts, outtype), NULL, "type of the written weights [the student's own]", 0, 0,
     k_outtypes, NULL},
    {"--format", NULL, OPT_CHOICE, OPT_OF(distill_opts, format), NULL,
     "gguf (default), or hf: a Hugging Face folder (needs an HF folder\nas --student, one width for every layer)", 0, 0, k_formats,
     NULL},
    {"--report", NULL, OPT_STR, OPT_OF(distill_opts, report), "FILE.json", "the run: curve, evaluations, time (JSON)", 0, 0, NULL,
     NULL},
    {"--report-dir", NULL, OPT_STR, OPT_OF(distill_opts, report_dir), "DIR", "the report as report.json, report.md and report.html", 0,
     0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "distill", "--teacher T --student S --text FILE -o OUT [--steps N | --tokens N | --minutes M]\n"
               "                 [--ctx N] [--batch N] [--lr X] [--loss fkl|rkl|jsd] [--eval-text FILE] [options]",
    "Trains STUDENT (F32 master weights) to match TEACHER's next-token distributions on\n"
    "a text: logit distillation with the reference transformer (forward and backward in C,\n"
    "AdamW with warmup and cosine decay). Structure removed by 'slm prune' stays removed\n"
    "and pruned zeros stay 0. Both models need the same vocabulary.",
    k_opts, SLM_ARRAY_LEN(k_opts), 0, 0, NULL,
    "Results are identical for any thread count; --resume continues bit for bit.", 1,
};

typedef struct job {
    const distill_opts *o;
    slm_tcache cache;
    slm_src tsrc, ssrc;
    slm_tokenizer tok;
    slm_model teacher, student;
    int32_t *ids, *eval_ids;
    size_t n_ids, n_eval;
    slm_trainer t;
    slm_kvs meta;
    slm_export x;
    slm_report rep;
    double t0;
    int64_t ckpt_step; /* step of the last checkpoint written, -1: none */
} job;

/* A student is trained in F32: its stored weights must be F32, F16 or BF16. */
static int check_student(const slm_src *s, const char *path, slm_err *err) {
    for (size_t i = 0; i < s->n_tensors; i++) {
        int dt = s->tensors[i].dtype;
        if (dt != SLM_DTYPE_F32 && dt != SLM_DTYPE_F16 && dt != SLM_DTYPE_BF16)
            return slm_errf(err, SLM_E_ARG, "%s: tensor %s is %s: a quantized student cannot be trained (give its F32/F16/BF16 model)",
                            path, s->tensors[i].name, slm_dtype_name(dt));
    }
    return SLM_OK;
}

/* The same tokens, in the same order (when both files carry a vocabulary). */
static int check_vocab(const job *j, slm_err *err) {
    const slm_vocab *a = &j->tsrc.vocab, *b = &j->ssrc.vocab;
    const char *T = j->o->teacher, *S = j->o->student;
    if (j->tsrc.cfg.n_vocab != j->ssrc.cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "%s has %d tokens, %s %d: distillation needs one vocabulary", T, j->tsrc.cfg.n_vocab, S,
                        j->ssrc.cfg.n_vocab);
    if (a->kind == SLM_VOCAB_NONE || b->kind == SLM_VOCAB_NONE) return SLM_OK;
    for (int32_t i = 0; i < a->n_tokens && i < b->n_tokens; i++)
        if (strcmp(a->tokens[i], b->tokens[i]))
            return slm_errf(err, SLM_E_ARG, "%s and %s have different vocabularies (token %d differs): distillation needs one", T, S, i);
    return SLM_OK;
}

static int tokenize_file(const job *j, const char *path, int32_t **ids, size_t *n, slm_err *err) {
    slm_map m = {0};
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_tokenize(&j->tok, m.data ? (const char *)m.data : "", m.size, 1, ids, n, err);
    slm_map_close(&m);
    if (rc) slm_err_prefix(err, "%s", path);
    return rc;
}

static int open_models(job *j, slm_err *err) {
    const distill_opts *o = j->o;
    slm_tensor_src ts;
    SLM_TRY(cli_src_open(&j->tsrc, o->teacher, err));
    SLM_TRY(cli_src_open(&j->ssrc, o->student, err));
    SLM_TRY(check_student(&j->ssrc, o->student, err));
    SLM_TRY(check_vocab(j, err));
    const slm_vocab *v = j->tsrc.vocab.kind != SLM_VOCAB_NONE ? &j->tsrc.vocab : &j->ssrc.vocab;
    if (v->kind == SLM_VOCAB_NONE) return slm_errf(err, SLM_E_ARG, "%s: no tokenizer to read the text with", o->teacher);
    SLM_TRY(slm_tokenizer_build(&j->tok, v, err));
    SLM_TRY(tokenize_file(j, o->text, &j->ids, &j->n_ids, err));
    if (o->eval_text) SLM_TRY(tokenize_file(j, o->eval_text, &j->eval_ids, &j->n_eval, err));
    SLM_TRY(cli_model_build(&j->tsrc, &j->teacher, (int)o->batch, (int)o->ctx, SLM_NUMERICS_F32, err));
    slm_src_tensors(&j->ssrc, &ts);
    int rc = slm_model_build_batch(&j->student, &j->ssrc.cfg, &ts, (int)o->batch, (int)o->ctx, SLM_BUILD_KEEP_ACTS, err);
    if (rc) slm_err_prefix(err, "%s", o->student);
    return rc;
}

static slm_trainer_opts trainer_opts(const distill_opts *o) {
    slm_trainer_opts t = {.batch = (int)o->batch, .ctx = (int)o->ctx, .accum = (int)o->accum, .max_steps = o->steps,
                          .max_tokens = o->tokens, .max_seconds = o->minutes * 60.0, .seed = (uint64_t)o->seed,
                          .freeze_zeros = !o->train_zeros, .feature_weight = (float)o->fweight, .eval_every = o->eval_every,
                          .eval_ctx = (int)(o->eval_ctx ? o->eval_ctx : o->ctx), .eval_chunks = o->eval_chunks,
                          .ckpt_every = o->checkpoint ? o->ckpt_every : 0};
    slm_adamw_defaults(&t.adam);
    t.adam.lr = (float)o->lr, t.adam.min_lr = (float)(o->min_lr >= 0 ? o->min_lr : o->lr / 10);
    t.adam.warmup_steps = o->warmup >= 0 ? o->warmup : o->steps / 20;
    t.adam.total_steps = o->steps, t.adam.weight_decay = (float)o->wd, t.adam.clip_norm = (float)o->clip;
    t.loss = (slm_distill_loss_opts){.divergence = o->loss, .temperature = (float)o->temperature, .alpha = (float)o->alpha};
    return t;
}

/* The teacher's identity for its cache: its tensor table and the values of its 1-D tensors
   (norm weights: any retrained or fine-tuned checkpoint differs there). */
static int teacher_sha(const job *j, uint8_t out[32], slm_err *err) {
    slm_tensor_src ts;
    slm_sha256 s;
    float *row = NULL;
    slm_src_tensors(&j->tsrc, &ts);
    slm_sha256_init(&s);
    slm_sha256_update(&s, &j->tsrc.cfg.n_vocab, sizeof j->tsrc.cfg.n_vocab);
    for (size_t i = 0; i < ts.n_tensors; i++) {
        slm_tensor_info in = slm_tensor_src_info(&ts, i);
        slm_sha256_update(&s, in.name, strlen(in.name) + 1);
        slm_sha256_update(&s, &in.dtype, sizeof in.dtype);
        slm_sha256_update(&s, in.shape, sizeof in.shape);
        if (in.ndim != 1) continue;
        SLM_TRY(slm_realloc((void **)&row, (size_t)in.shape[0] * sizeof(float), err, "teacher identity"));
        int rc = ts.read_f32(ts.ud, i, 0, 1, row, err);
        if (rc) return slm_free(row), rc;
        slm_sha256_update(&s, row, (size_t)in.shape[0] * sizeof(float));
    }
    slm_free(row);
    slm_sha256_final(&s, out);
    return SLM_OK;
}

static void cache_progress(void *ud, int64_t done, int64_t n) {
    SLM_UNUSED(ud);
    msg_progress("teacher cache", (double)done / (double)n);
}

/* --teacher-cache: made first when the file does not exist, then checked and used. */
static int use_cache(job *j, int force, slm_err *err) {
    const distill_opts *o = j->o;
    uint8_t sha[32];
    struct stat st;
    SLM_TRY(teacher_sha(j, sha, err));
    const int32_t bos = slm_tokenizer_bos(&j->tok);
    if (stat(o->tcache, &st) != 0) {
        slm_afile f;
        SLM_TRY(slm_afile_open_flags(&f, o->tcache, force ? SLM_AFILE_REPLACE : 0, err));
        int rc = slm_tcache_write(&f, &j->teacher, j->ids, (int64_t)j->n_ids, (int)o->ctx, (int)o->batch, bos, (int)o->topk,
                                  (float)o->temperature, sha, cache_progress, NULL, err);
        msg_progress_done();
        if (!rc) rc = slm_afile_commit(&f, err);
        slm_afile_abort(&f);
        SLM_TRY(rc);
    }
    SLM_TRY(slm_tcache_open(&j->cache, o->tcache, err));
    SLM_TRY(slm_tcache_check(&j->cache, sha, j->ids, (int64_t)j->n_ids, (int)o->ctx, bos, (float)o->temperature,
                             j->tsrc.cfg.n_vocab, err));
    return slm_trainer_use_cache(&j->t, &j->cache, err);
}

static int resume(job *j, slm_err *err) {
    slm_map m = {0};
    SLM_TRY(slm_map_open(&m, j->o->resume, err));
    int rc = slm_trainer_load(&j->t, m.data, m.size, j->o->resume, err);
    slm_map_close(&m);
    return rc;
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

/* The progress line (terminal), and a log line per evaluation (summary level). */
static void on_point(void *ud, const slm_trainer *t, const slm_train_point *p) {
    SLM_UNUSED(ud);
    const slm_trainer_opts *o = &t->o;
    if (p->has_eval) {
        msg_progress_done();
        if (msg_show_summary())
            fprintf(stderr, "step %lld: held-out PPL %.4f (teacher %.4f), KL %.6f, top-1 %.2f%%\n", (long long)p->step, p->ppl,
                    p->ref_ppl, p->kld, 100.0 * p->top1);
        return;
    }
    double frac = o->max_steps ? (double)t->step / (double)o->max_steps : 0;
    if (o->max_tokens) frac = fmax(frac, (double)t->tokens / (double)o->max_tokens);
    if (o->max_seconds > 0) frac = fmax(frac, t->seconds / o->max_seconds);
    char line[160], eta[32];
    const double tps = p->seconds > 0 ? (double)p->tokens / p->seconds : 0;
    fmt_eta(eta, sizeof eta, frac > 0 ? p->seconds * (1 - frac) / frac : -1);
    snprintf(line, sizeof line, "step %lld, loss %.4f, lr %.2e, %.0f tok/s, ETA %s", (long long)p->step, p->loss, p->lr, tps, eta);
    msg_progress(line, frac < 1 ? frac : 1);
}

static int on_checkpoint(void *ud, const slm_trainer *t, slm_err *err) {
    job *j = ud;
    slm_afile f;
    SLM_TRY(slm_afile_open_flags(&f, j->o->checkpoint, SLM_AFILE_REPLACE, err));
    int rc = slm_trainer_save(t, &f, err);
    if (!rc) rc = slm_afile_commit(&f, err);
    slm_afile_abort(&f);
    if (rc) return slm_err_prefix(err, "checkpoint at step %lld", (long long)t->step), rc;
    j->ckpt_step = t->step;
    return SLM_OK;
}

/* A failed run names the step and what is left of it. */
static int failed(const job *j, int rc, slm_err *err) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    if (j->ckpt_step >= 0)
        slm_errf(err, rc, "%s; the last good checkpoint is %s (step %lld)", msg, j->o->checkpoint, (long long)j->ckpt_step);
    else if (j->o->resume)
        slm_errf(err, rc, "%s; %s is unchanged", msg, j->o->resume);
    else
        slm_errf(err, rc, "%s; nothing was written (add --checkpoint FILE to keep the progress)", msg);
    return rc;
}

static int plan_output(job *j, slm_err *err) {
    const distill_opts *o = j->o;
    slm_tensor_src ts;
    slm_model_tensors(&j->student, &ts);
    const slm_vocab *v = j->ssrc.vocab.kind != SLM_VOCAB_NONE ? &j->ssrc.vocab : &j->tsrc.vocab;
    SLM_TRY(slm_model_gguf_meta(&j->ssrc.cfg, j->ssrc.name, v, &j->meta, err));
    int dt = o->outtype >= 0 ? o->outtype : j->ssrc.tensors[slm_src_find(&j->ssrc, "token_embd.weight")].dtype;
    slm_export_opts eo = {.cfg = &j->ssrc.cfg, .meta = &j->meta, .widen_1d = 1};
    eo.recipe = (slm_recipe_opts){.ftype = slm_ftype_find(dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32"),
                                  .output_type = -1, .token_embd_type = -1};
    SLM_TRY(slm_export_plan(&j->x, &ts, &eo, err));
    snprintf(j->x.rep.model_name, sizeof j->x.rep.model_name, "%s", j->ssrc.name);
    snprintf(j->x.rep.model, sizeof j->x.rep.model, "%s", o->student);
    snprintf(j->x.rep.output, sizeof j->x.rep.output, "%s", o->out);
    return SLM_OK;
}

static int write_hf(job *j, int force, slm_err *err) {
    const distill_opts *o = j->o;
    slm_tensor_src ts;
    slm_adir d;
    struct stat st;
    slm_model_tensors(&j->student, &ts);
    const int dt = o->outtype >= 0 ? o->outtype : j->ssrc.tensors[slm_src_find(&j->ssrc, "token_embd.weight")].dtype;
    slm_export_hf_opts ho = {.src = &ts, .cfg = &j->ssrc.cfg, .base_dir = o->student, .dtype = dt};
    SLM_TRY(slm_adir_open(&d, o->out, force ? SLM_AFILE_REPLACE : 0, err));
    int rc = slm_export_hf(&ho, &d, err);
    if (!rc) rc = slm_adir_commit(&d, err);
    else slm_adir_abort(&d);
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", o->out);
    if (!rc && stat(p, &st) == 0) j->x.rep.out_bytes = (uint64_t)st.st_size;
    return rc;
}

/* The student into OUT (committed at once: the evaluation reads it back). */
static int write_output(job *j, cli_outputs *outs, slm_err *err) {
    SLM_TRY(plan_output(j, err));
    if (j->o->format == 1) return write_hf(j, outs->force, err);
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(&outs->set, j->o->out, &f, err));
    SLM_TRY(slm_export_write(&j->x, f, err));
    return cli_outputs_commit(outs, err);
}

static void remove_output(const distill_opts *o) {
    if (o->format == 1) slm_adir_remove(o->out);
    else unlink(o->out);
}

/* The written student against the teacher on --eval-text, and the gates (*gate: EXIT_GATE). */
static int evaluate(job *j, int *gate, slm_err *err) {
    const distill_opts *o = j->o;
    cli_eval_args a = {.model = o->out, .ref = o->teacher, .text = o->eval_text, .ctx = o->eval_ctx ? o->eval_ctx : o->ctx,
                       .chunks = o->eval_chunks, .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    SLM_TRY(cli_eval_into(&a, &j->x.rep.eval, err));
    *gate = cli_gates_check(&o->gates, &j->x.rep);
    return SLM_OK;
}

static void summary(const job *j) {
    const slm_trainer *t = &j->t;
    const slm_report_eval *e = &j->x.rep.eval;
    char b1[32], b2[32];
    fprintf(stderr, "distill: %lld steps, %lld tokens in %.1f s (%.0f tokens/s), %lld pruned zeros kept; %s -> %s\n", (long long)t->step,
            (long long)t->tokens, t->seconds, t->seconds > 0 ? (double)t->tokens / t->seconds : 0.0, (long long)t->n_frozen,
            slm_fmt_bytes(b1, sizeof b1, (double)j->ssrc.total_bytes), slm_fmt_bytes(b2, sizeof b2, (double)j->x.rep.out_bytes));
    const slm_train_point *first = NULL;
    for (size_t i = 0; i < t->n_curve && !first; i++)
        if (t->curve[i].has_eval) first = &t->curve[i];
    if (e->present)
        fprintf(stderr, "eval %s: PPL %.4f (teacher %.4f%s%.4f), mean KLD %.6f, top-1 %.2f%%\n", j->o->eval_text, e->ppl, e->ref_ppl,
                first ? ", before " : "", first ? first->ppl : 0.0, e->kld_mean, 100.0 * e->top1);
}

static int set_train(slm_report *r, const slm_trainer *t, slm_err *err) {
    if (!t->n_curve) return SLM_OK;
    SLM_TRY(slm_calloc((void **)&r->train, t->n_curve, sizeof *r->train, err, "training curve"));
    for (size_t i = 0; i < t->n_curve; i++) {
        const slm_train_point *p = &t->curve[i];
        r->train[i] = (slm_report_train_point){.step = p->step, .tokens = p->tokens, .seconds = p->seconds, .loss = p->loss,
                                               .kd = p->kd, .ce = p->ce, .grad_norm = p->grad_norm, .lr = p->lr,
                                               .has_eval = p->has_eval, .ppl = p->ppl, .ref_ppl = p->ref_ppl, .kld = p->kld,
                                               .top1 = p->top1};
    }
    r->n_train = t->n_curve;
    return SLM_OK;
}

static int finish(job *j, slm_outset *set, slm_err *err) {
    slm_report *r = &j->x.rep;
    snprintf(r->command, sizeof r->command, "distill");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    snprintf(r->method, sizeof r->method, "%s", slm_kd_div_name(j->o->loss));
    snprintf(r->calibration, sizeof r->calibration, "%s", j->o->teacher);
    snprintf(r->method_params, sizeof r->method_params, "steps=%lld tokens=%lld T=%g alpha=%g lr=%g ctx=%ld batch=%ld",
             (long long)j->t.step, (long long)j->t.tokens, j->o->temperature, j->o->alpha, j->o->lr, j->o->ctx, j->o->batch);
    r->threads = slm_threads_get();
    r->seconds = cli_now() - j->t0;
    r->peak_rss_bytes = cli_peak_rss();
    SLM_TRY(set_train(r, &j->t, err));
    if (msg_show_summary()) summary(j);
    if (j->o->report) SLM_TRY(slm_report_write_json(set, r, j->o->report, err));
    if (j->o->report_dir) SLM_TRY(slm_report_write_dir(set, r, 1, j->o->report_dir, err));
    return SLM_OK;
}

static int run(job *j, cli_outputs *outs, int *gate) {
    slm_err err = {0};
    const distill_opts *o = j->o;
    j->t0 = cli_now(), j->ckpt_step = -1;
    int rc = open_models(j, &err);
    slm_trainer_opts to = trainer_opts(o);
    if (!rc) rc = slm_trainer_init(&j->t, &j->teacher, &j->student, j->ids, (int64_t)j->n_ids, j->eval_ids, (int64_t)j->n_eval,
                                   slm_tokenizer_bos(&j->tok), &to, &err);
    if (!rc && o->tcache) rc = use_cache(j, outs->force, &err);
    if (!rc && o->resume) rc = resume(j, &err);
    slm_trainer_hooks h = {.ud = j, .on_point = on_point, .on_checkpoint = o->checkpoint ? on_checkpoint : NULL};
    if (!rc && (rc = slm_trainer_run(&j->t, &h, &err))) failed(j, rc, &err);
    msg_progress_done();
    if (!rc) rc = write_output(j, outs, &err);
    int written = !rc;
    if (!rc && o->eval_text) rc = evaluate(j, gate, &err);
    if (!rc) rc = finish(j, &outs->set, &err);
    if (!rc) rc = cli_outputs_commit(outs, &err);
    if (rc) cli_outputs_abort(outs);
    if (rc && written) remove_output(o); /* no model without its report */
    return rc ? cli_fail(&err) : EXIT_OK;
}

static int check_args(const distill_opts *o) {
    if (!o->teacher || !o->student || !o->text || !o->out)
        return msg_usage_error("needs --teacher MODEL, --student MODEL, --text FILE and -o OUT");
    if (slm_gates_any(&o->gates) && !o->eval_text) return msg_usage_error("quality gates need an evaluation: add --eval-text FILE");
    if (o->eval_ctx > o->ctx) return msg_usage_error("--eval-ctx %ld is longer than --ctx %ld", o->eval_ctx, o->ctx);
    if (o->min_lr > o->lr) return msg_usage_error("--min-lr %g is above --lr %g", o->min_lr, o->lr);
    return 0;
}

static int add_outputs(cli_outputs *outs, const distill_opts *o) {
    const char *in[] = {o->teacher, o->student, o->text, o->eval_text, o->resume};
    for (size_t i = 0; i < SLM_ARRAY_LEN(in); i++) cli_outputs_input(outs, in[i]);
    if (o->format == 1 ? cli_outputs_add_dir(outs, o->out) : cli_outputs_add(outs, o->out)) return EXIT_FAIL;
    if (cli_outputs_add(outs, o->report) || cli_outputs_add_report_dir(outs, o->report_dir, 1)) return EXIT_FAIL;
    struct stat st; /* an existing teacher cache is an input, a new one an output */
    if (o->tcache && stat(o->tcache, &st) == 0) cli_outputs_input(outs, o->tcache);
    else if (o->tcache && cli_outputs_add(outs, o->tcache)) return EXIT_FAIL;
    /* the checkpoint is replaced at every save: only a file that is not the one resumed from
       needs -f to be replaced the first time */
    slm_err err = {0};
    if (o->checkpoint && !(o->resume && cli_same_file(o->checkpoint, o->resume)) &&
        slm_output_check(o->checkpoint, outs->inputs, outs->n_in, outs->paths, outs->n, outs->force, &err))
        return cli_fail(&err);
    return EXIT_OK;
}

int cmd_distill(int argc, char **argv) {
    distill_opts o = {.topk = 32, .ctx = 256, .batch = 8, .accum = 1, .lr = 1e-3, .min_lr = -1, .warmup = -1, .clip = 1.0, .temperature = 1.0,
                      .ckpt_every = 100, .outtype = -1, .loss = SLM_KD_FORWARD_KL};
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    slm_gates_none(&o.gates);
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    if (check_args(&o)) return EXIT_USAGE;
    if (!o.steps && !o.tokens && !o.minutes) o.steps = 200;
    cli_outputs outs;
    cli_outputs_init(&outs, co.force);
    if (add_outputs(&outs, &o)) return EXIT_FAIL;
    slm_threads_set((int)co.threads);
    job j = {.o = &o};
    int gate = EXIT_OK, rc = run(&j, &outs, &gate);
    slm_trainer_free(&j.t);
    slm_tcache_close(&j.cache);
    slm_export_free(&j.x);
    slm_kvs_free(&j.meta);
    slm_model_free(&j.student), slm_model_free(&j.teacher);
    slm_free(j.ids), slm_free(j.eval_ids);
    slm_tokenizer_free(&j.tok);
    slm_src_close(&j.ssrc), slm_src_close(&j.tsrc);
    return rc ? rc : gate;
}
