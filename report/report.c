/* report.c - the report's JSON rendering (stable keys, format "slm-report/1") and reader.
 * Markdown and HTML renderings live in report_html.c. Written into an output set (core/afile.h).
 */
#include "report.h"
#include "report_impl.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "core/afile.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/utf8.h"

void slm_report_free(slm_report *r) {
    slm_free(r->tensors);
    r->tensors = NULL;
    r->n_tensors = 0;
    slm_free(r->train);
    r->train = NULL;
    r->n_train = 0;
}

static cJSON *num(cJSON *o, const char *k, double v) { return cJSON_AddNumberToObject(o, k, v); }

/* o[k] = s as valid UTF-8: names and paths come from model files and the command line, and
   cJSON copies bytes as they are (it escapes only control characters). */
static void str(cJSON *o, const char *k, const char *s) {
    size_t n = strlen(s);
    if (slm_utf8_valid(s, n)) {
        cJSON_AddStringToObject(o, k, s);
        return;
    }
    char *fixed = slm_utf8_fix(s, n, NULL);
    if (fixed) cJSON_AddStringToObject(o, k, fixed);
    slm_free(fixed);
}

static double get_num(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

/* A tensor's error: null (or absent) is NaN, "not computed" (a --dry-run report). */
static double get_err(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

/* An integer field in [0, hi]: absent or not a number reads as 0 (as get_num); a number that
   is not an integer in range is an error (converting it would be undefined behaviour). */
static int get_int(const cJSON *o, const char *k, int64_t hi, int64_t *out, const char *what, slm_err *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = 0;
    if (cJSON_IsNumber(j) && !slm_f64_to_i64(j->valuedouble, 0, hi, out))
        return slm_errf(err, SLM_E_FORMAT, "%s: \"%s\" is not an integer in [0, %lld]", what, k, (long long)hi);
    return SLM_OK;
}

static int get_i32(const cJSON *o, const char *k, int *out, const char *what, slm_err *err) {
    int64_t v;
    SLM_TRY(get_int(o, k, INT32_MAX, &v, what, err));
    *out = (int)v;
    return SLM_OK;
}

static int get_i64(const cJSON *o, const char *k, int64_t *out, const char *what, slm_err *err) {
    return get_int(o, k, INT64_MAX, out, what, err);
}

static int get_u64(const cJSON *o, const char *k, uint64_t *out, const char *what, slm_err *err) {
    int64_t v;
    SLM_TRY(get_int(o, k, INT64_MAX, &v, what, err));
    *out = (uint64_t)v;
    return SLM_OK;
}

static void get_str(const cJSON *o, const char *k, char *dst, size_t cap) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(dst, cap, "%s", cJSON_IsString(j) ? j->valuestring : "");
}

/* ---- the evaluation's keys, once: writer and reader both walk this table */

enum { F_STR, F_INT, F_I64, F_DBL };
#define EV(key, type, field, ref_only) {key, type, offsetof(slm_report_eval, field), sizeof(((slm_report_eval *)0)->field), ref_only}
static const struct {
    const char *key;
    int type;
    size_t off, size;
    int ref_only; /* written only when there is a reference model */
} k_eval_fields[] = {
    EV("text", F_STR, text, 0),
    EV("convention", F_STR, convention, 0),
    EV("numerics", F_STR, numerics, 0),
    EV("ctx", F_INT, ctx, 0),
    EV("tokens", F_I64, tokens, 0),
    EV("n_chunks", F_I64, n_chunks, 0),
    EV("scored_tokens", F_I64, scored, 0),
    EV("nll_sum", F_DBL, nll_sum, 0),
    EV("mean_nll", F_DBL, mean_nll, 0),
    EV("ppl", F_DBL, ppl, 0),
    EV("ppl_err", F_DBL, ppl_err, 0),
    EV("tokens_per_second", F_DBL, tok_per_s, 0),
    EV("packed_bytes", F_I64, packed_bytes, 0),
    EV("reference", F_STR, ref, 1),
    EV("ref_mean_nll", F_DBL, ref_mean_nll, 1),
    EV("ref_ppl", F_DBL, ref_ppl, 1),
    EV("ref_ppl_err", F_DBL, ref_ppl_err, 1),
    EV("delta_ppl", F_DBL, dppl, 1),
    EV("delta_ppl_err", F_DBL, dppl_err, 1),
    EV("ln_ppl_ratio", F_DBL, ln_ppl_ratio, 1),
    EV("ln_ppl_ratio_err", F_DBL, ln_ppl_ratio_err, 1),
    EV("kld_mean", F_DBL, kld_mean, 1),
    EV("kld_mean_err", F_DBL, kld_mean_err, 1),
    EV("kld_median", F_DBL, kld_median, 1),
    EV("kld_p90", F_DBL, kld_p90, 1),
    EV("kld_p99", F_DBL, kld_p99, 1),
    EV("kld_p999", F_DBL, kld_p999, 1),
    EV("kld_max", F_DBL, kld_max, 1),
    EV("top1_agreement", F_DBL, top1, 1),
    EV("top1_agreement_err", F_DBL, top1_err, 1),
    EV("rms_dp", F_DBL, rms_dp, 1),
    EV("rms_dp_err", F_DBL, rms_dp_err, 1),
    EV("mean_dp", F_DBL, mean_dp, 1),
    EV("max_dp", F_DBL, max_dp, 1),
};
#undef EV

static void eval_to_cjson(const slm_report_eval *e, cJSON *o) {
    for (size_t i = 0; i < sizeof k_eval_fields / sizeof k_eval_fields[0]; i++) {
        const char *f = (const char *)e + k_eval_fields[i].off;
        if (k_eval_fields[i].ref_only && !e->has_ref) continue;
        switch (k_eval_fields[i].type) {
        case F_STR: str(o, k_eval_fields[i].key, f); break;
        case F_INT: num(o, k_eval_fields[i].key, *(const int *)(const void *)f); break;
        case F_I64: num(o, k_eval_fields[i].key, (double)*(const int64_t *)(const void *)f); break;
        default: num(o, k_eval_fields[i].key, *(const double *)(const void *)f); break;
        }
    }
}

/* "gates": [{gate, limit, value, excess, passed}], "gates_passed" (only when gates were set) */
/* The training curve: the one key table of its points (writer and reader). */
#define TP(key, type, field, ev) {key, type, offsetof(slm_report_train_point, field), 0, ev}
static const struct {
    const char *key;
    int type;
    size_t off, size;
    int eval; /* 1: evaluation points only, 0: step points only, 2: both */
} k_train_fields[] = {
    TP("step", F_I64, step, 2),   TP("tokens", F_I64, tokens, 2), TP("seconds", F_DBL, seconds, 2),
    TP("loss", F_DBL, loss, 0),   TP("kd", F_DBL, kd, 0),         TP("ce", F_DBL, ce, 0),
    TP("grad_norm", F_DBL, grad_norm, 0), TP("lr", F_DBL, lr, 0), TP("ppl", F_DBL, ppl, 1),
    TP("ref_ppl", F_DBL, ref_ppl, 1), TP("kld", F_DBL, kld, 1),  TP("top1", F_DBL, top1, 1),
};
#undef TP

static void train_to_cjson(const slm_report *r, cJSON *root) {
    cJSON *a = cJSON_AddArrayToObject(root, "train");
    for (size_t i = 0; a && i < r->n_train; i++) {
        const slm_report_train_point *p = &r->train[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(a, o);
        cJSON_AddBoolToObject(o, "eval", p->has_eval);
        for (size_t k = 0; k < sizeof k_train_fields / sizeof k_train_fields[0]; k++) {
            const char *f = (const char *)p + k_train_fields[k].off;
            if (k_train_fields[k].eval != 2 && k_train_fields[k].eval != p->has_eval) continue;
            if (k_train_fields[k].type == F_I64) num(o, k_train_fields[k].key, (double)*(const int64_t *)(const void *)f);
            else num(o, k_train_fields[k].key, *(const double *)(const void *)f);
        }
    }
}

static int read_train(const cJSON *a, slm_report *r, const char *what, slm_err *err) {
    int n = cJSON_GetArraySize(a);
    if (n <= 0) return SLM_OK;
    SLM_TRY(slm_calloc((void **)&r->train, (size_t)n, sizeof *r->train, err, "training curve"));
    for (const cJSON *o = a->child; o; o = o->next) {
        if (!cJSON_IsObject(o)) continue;
        slm_report_train_point *p = &r->train[r->n_train++];
        p->has_eval = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "eval"));
        for (size_t k = 0; k < sizeof k_train_fields / sizeof k_train_fields[0]; k++) {
            char *f = (char *)p + k_train_fields[k].off;
            if (k_train_fields[k].type == F_I64) SLM_TRY(get_i64(o, k_train_fields[k].key, (int64_t *)(void *)f, what, err));
            else *(double *)(void *)f = get_err(o, k_train_fields[k].key);
        }
    }
    return SLM_OK;
}

static void gates_to_cjson(const slm_report *r, cJSON *root) {
    if (!r->n_gates) return;
    cJSON *a = cJSON_AddArrayToObject(root, "gates");
    int ok = 1;
    for (int i = 0; a && i < r->n_gates; i++) {
        const slm_report_gate *g = &r->gates[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(a, o);
        str(o, "gate", g->name);
        num(o, "limit", g->limit);
        num(o, "value", g->value);
        num(o, "excess", g->excess);
        cJSON_AddBoolToObject(o, "passed", g->passed);
        ok &= g->passed;
    }
    cJSON_AddBoolToObject(root, "gates_passed", ok);
}

static void read_gates(const cJSON *root, slm_report *r) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "gates");
    for (const cJSON *o = cJSON_IsArray(a) ? a->child : NULL; o && r->n_gates < SLM_REPORT_MAX_GATES; o = o->next) {
        if (!cJSON_IsObject(o)) continue;
        slm_report_gate *g = &r->gates[r->n_gates++];
        get_str(o, "gate", g->name, sizeof g->name);
        g->limit = get_num(o, "limit");
        g->value = get_num(o, "value");
        g->excess = get_num(o, "excess");
        g->passed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "passed"));
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "manifest");
    if (cJSON_IsObject(m)) {
        r->manifest.present = 1;
        get_str(m, "slm_version", r->manifest.version, sizeof r->manifest.version);
        get_str(m, "input_sha256", r->manifest.input_sha256, sizeof r->manifest.input_sha256);
        get_str(m, "flags", r->manifest.flags, sizeof r->manifest.flags);
    }
}

cJSON *slm_report_to_cjson(const slm_report *r) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    str(root, "format", SLM_REPORT_FORMAT);
    str(root, "command", r->command);
    str(root, "slm_version", r->version);
    str(root, "model", r->model);
    str(root, "model_name", r->model_name);
    str(root, "output", r->output);
    str(root, "type", r->ftype);
    str(root, "method", r->method);
    str(root, "method_params", r->method_params);
    str(root, "calibration", r->calibration);
    num(root, "threads", r->threads);
    num(root, "seconds", r->seconds);
    num(root, "peak_rss_bytes", r->peak_rss_bytes);
    num(root, "source_bytes", (double)r->src_bytes);
    num(root, "output_bytes", (double)r->out_bytes);
    num(root, "n_params", (double)r->n_params);
    num(root, "bits_per_weight", r->bpw);
    num(root, "compression_ratio", r->out_bytes ? (double)r->src_bytes / (double)r->out_bytes : 0);
    num(root, "n_fallback", r->n_fallback);
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; ts && i < r->n_tensors; i++) {
        const slm_report_tensor *t = &r->tensors[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(ts, o);
        str(o, "name", t->name);
        str(o, "type", t->type);
        str(o, "source_type", t->src_type);
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; sh && d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        num(o, "n_params", (double)t->n_params);
        num(o, "bytes", (double)t->bytes);
        num(o, "source_bytes", (double)t->src_bytes);
        num(o, "bits_per_weight", t->bpw);
        num(o, "rmse", t->rmse);
        num(o, "rel_rmse", t->rel_rmse);
        num(o, "max_abs_err", t->max_abs_err);
        cJSON_AddBoolToObject(o, "fell_back", t->fell_back);
    }
    if (r->eval.present) {
        cJSON *o = cJSON_AddObjectToObject(root, "eval");
        if (o) eval_to_cjson(&r->eval, o);
    }
    gates_to_cjson(r, root);
    if (r->n_train) train_to_cjson(r, root);
    if (r->manifest.present) {
        cJSON *o = cJSON_AddObjectToObject(root, "manifest");
        if (o) {
            str(o, "slm_version", r->manifest.version);
            str(o, "input_sha256", r->manifest.input_sha256);
            str(o, "flags", r->manifest.flags);
        }
    }
    return root;
}

int slm_report_write_cjson(slm_outset *os, cJSON *root, const char *path, slm_err *err) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return slm_errf(err, SLM_E_NOMEM, "%s: rendering the report: out of memory", path);
    size_t n = strlen(text);
    text[n] = '\n'; /* replace the NUL: files end with a newline */
    int rc = slm_outset_write_file(os, path, text, n + 1, err);
    free(text);
    return rc;
}

char *slm_report_json_string(const slm_report *r) {
    cJSON *root = slm_report_to_cjson(r);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int slm_report_write_json(slm_outset *os, const slm_report *r, const char *path, slm_err *err) {
    return slm_report_write_cjson(os, slm_report_to_cjson(r), path, err);
}

static int read_tensor(const cJSON *o, slm_report_tensor *t, const char *what, slm_err *err) {
    get_str(o, "name", t->name, sizeof t->name);
    get_str(o, "type", t->type, sizeof t->type);
    get_str(o, "source_type", t->src_type, sizeof t->src_type);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shape");
    for (const cJSON *d = cJSON_IsArray(sh) ? sh->child : NULL; d && t->ndim < SLM_MAX_DIMS; d = d->next) {
        int64_t v = 0;
        if (cJSON_IsNumber(d) && !slm_f64_to_i64(d->valuedouble, 0, INT64_MAX, &v))
            return slm_errf(err, SLM_E_FORMAT, "%s: tensor '%.100s': shape[%d] is not a non-negative integer", what, t->name, t->ndim);
        t->shape[t->ndim++] = v;
    }
    SLM_TRY(get_i64(o, "n_params", &t->n_params, what, err));
    SLM_TRY(get_u64(o, "bytes", &t->bytes, what, err));
    SLM_TRY(get_u64(o, "source_bytes", &t->src_bytes, what, err));
    t->bpw = get_num(o, "bits_per_weight");
    t->rmse = get_err(o, "rmse");
    t->rel_rmse = get_err(o, "rel_rmse");
    t->max_abs_err = get_err(o, "max_abs_err");
    t->fell_back = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "fell_back"));
    return SLM_OK;
}

static int read_eval(const cJSON *e, slm_report_eval *v, const char *what, slm_err *err) {
    v->present = 1;
    v->has_ref = cJSON_GetObjectItemCaseSensitive(e, "reference") != NULL;
    for (size_t i = 0; i < sizeof k_eval_fields / sizeof k_eval_fields[0]; i++) {
        char *f = (char *)v + k_eval_fields[i].off;
        const char *k = k_eval_fields[i].key;
        switch (k_eval_fields[i].type) {
        case F_STR: get_str(e, k, f, k_eval_fields[i].size); break;
        case F_INT: SLM_TRY(get_i32(e, k, (int *)(void *)f, what, err)); break;
        case F_I64: SLM_TRY(get_i64(e, k, (int64_t *)(void *)f, what, err)); break;
        default: *(double *)(void *)f = get_num(e, k); break;
        }
    }
    return SLM_OK;
}

static int read_root(slm_report *r, const cJSON *root, const char *what, slm_err *err) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (cJSON_IsArray(root))
        return slm_errf(err, SLM_E_FORMAT, "%s: an array of reports (" SLM_REPORT_JSONS_NAME "); pass the reports it was made from", what);
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, SLM_REPORT_FORMAT))
        return slm_errf(err, SLM_E_FORMAT, "%s: not an slm report (format is not \"%s\")", what, SLM_REPORT_FORMAT);
    get_str(root, "command", r->command, sizeof r->command);
    get_str(root, "slm_version", r->version, sizeof r->version);
    get_str(root, "model", r->model, sizeof r->model);
    get_str(root, "model_name", r->model_name, sizeof r->model_name);
    get_str(root, "output", r->output, sizeof r->output);
    get_str(root, "type", r->ftype, sizeof r->ftype);
    get_str(root, "method", r->method, sizeof r->method);
    get_str(root, "method_params", r->method_params, sizeof r->method_params);
    get_str(root, "calibration", r->calibration, sizeof r->calibration);
    SLM_TRY(get_i32(root, "threads", &r->threads, what, err));
    r->seconds = get_num(root, "seconds");
    r->peak_rss_bytes = get_num(root, "peak_rss_bytes");
    SLM_TRY(get_u64(root, "source_bytes", &r->src_bytes, what, err));
    SLM_TRY(get_u64(root, "output_bytes", &r->out_bytes, what, err));
    SLM_TRY(get_i64(root, "n_params", &r->n_params, what, err));
    r->bpw = get_num(root, "bits_per_weight");
    SLM_TRY(get_i32(root, "n_fallback", &r->n_fallback, what, err));
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int nt = cJSON_IsArray(ts) ? cJSON_GetArraySize(ts) : 0;
    if (nt > 0) SLM_TRY(slm_calloc((void **)&r->tensors, (size_t)nt, sizeof(slm_report_tensor), err, "report tensors"));
    for (const cJSON *o = nt ? ts->child : NULL; o; o = o->next) {
        if (!cJSON_IsObject(o)) continue;
        SLM_TRY(read_tensor(o, &r->tensors[r->n_tensors++], what, err));
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eval");
    if (cJSON_IsObject(e)) SLM_TRY(read_eval(e, &r->eval, what, err));
    read_gates(root, r);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "train");
    if (cJSON_IsArray(tr)) SLM_TRY(read_train(tr, r, what, err));
    return SLM_OK;
}

int slm_report_parse_json(slm_report *r, const char *text, size_t len, const char *what, slm_err *err) {
    memset(r, 0, sizeof(*r));
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return slm_errf(err, SLM_E_FORMAT, "%s: not valid JSON", what);
    int rc = read_root(r, root, what, err);
    cJSON_Delete(root);
    if (rc) slm_report_free(r);
    return rc;
}

int slm_report_read_json(slm_report *r, const char *path, slm_err *err) {
    memset(r, 0, sizeof(*r));
    slm_map m;
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_report_parse_json(r, (const char *)m.data, m.size, path, err);
    slm_map_close(&m);
    return rc;
}
