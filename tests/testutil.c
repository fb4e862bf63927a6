/* testutil.c - fixture paths, temp folders and comparisons for the cmocka tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/afile.h"
#include "export/export.h"
#include "formats/model_src.h"
#include "model/catalog.h"
#include "model/transformer.h"
#include "quantize/qtypes.h"

static char g_ring[8][4096];
static int g_ring_i;
static char g_tmpdir[4096];

static char *ring(void) { return g_ring[g_ring_i++ % 8]; }

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *base_path(const char *env, const char *dflt, const char *rel) {
    const char *root = getenv(env);
    char *out = ring();
    snprintf(out, 4096, "%s/%s", root && *root ? root : dflt, rel);
    if (!file_exists(out)) fail_msg("fixture missing: %s (set %s)", out, env);
    return out;
}

const char *fixture_path(const char *rel) { return base_path("SLM_FIXTURES", "../shared/fixtures", rel); }
const char *golden_path(const char *rel) { return base_path("SLM_GOLDEN", "../shared/golden", rel); }

void *read_whole_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    assert_non_null(buf);
    if (sz > 0 && fread(buf, 1, (size_t)sz, f) != (size_t)sz) fail_msg("short read on %s", path);
    fclose(f);
    buf[sz] = 0;
    if (n) *n = (size_t)sz;
    return buf;
}

void write_whole_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write on %s", path);
    fclose(f);
}

static void rm_tmpdir(void) {
    if (!g_tmpdir[0] || getenv("SLM_KEEP_TMP")) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmpdir);
}

const char *tmp_path(const char *name) {
    if (!g_tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/slm-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_tmpdir)) fail_msg("mkdtemp failed");
        atexit(rm_tmpdir);
    }
    char *out = ring();
    snprintf(out, 4096, "%s/%s", g_tmpdir, name);
    return out;
}

void expect_tensor_near(const char *what, const float *a, const float *b, int64_t n, double atol, double rtol) {
    int64_t bad = -1, nbad = 0;
    double maxabs = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxabs || isnan(d)) maxabs = isnan(d) ? INFINITY : d;
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 0) bad = i;
            nbad++;
        }
    }
    if (bad >= 0)
        fail_msg("%s: %lld of %lld values differ; first at %lld: got %.9g want %.9g; max abs diff %.3g",
                 what, (long long)nbad, (long long)n, (long long)bad, a[bad], b[bad], maxabs);
}

void expect_bytes_equal(const char *what, const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) fail_msg("%s: byte %zu differs: got 0x%02x want 0x%02x", what, i, x[i], y[i]);
}

/* ---- a model made of a function */

static int fn_list(void *ud, slm_role role, int l) {
    test_fn_src *f = ud;
    if (f->n >= 4096) return SLM_E_ARG;
    f->role[f->n] = role;
    f->layer[f->n++] = l;
    return SLM_OK;
}

static void fn_info(const void *ud, size_t i, slm_tensor_info *o) {
    const test_fn_src *f = ud;
    int64_t shape[2];
    memset(o, 0, sizeof *o);
    slm_catalog_gguf_name(f->role[i], f->layer[i], o->name, sizeof o->name);
    snprintf(o->src_name, sizeof o->src_name, "%s", o->name);
    o->file = "test source";
    o->dtype = f->dtype;
    o->ndim = slm_catalog_shape(&f->cfg, f->role[i], f->layer[i], shape);
    o->shape[0] = shape[0];
    o->shape[1] = shape[1];
    o->nbytes = slm_dtype_row_size(f->dtype, o->ndim == 2 ? shape[1] : shape[0]) * (size_t)(o->ndim == 2 ? shape[0] : 1);
}

static int fn_find(const void *ud, const char *name) {
    const test_fn_src *f = ud;
    int l, role = slm_catalog_parse_gguf(name, &l);
    for (int i = 0; role >= 0 && i < f->n; i++)
        if (f->role[i] == role && f->layer[i] == l) return i;
    return -1;
}

static int fn_read_f32(const void *ud, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err) {
    const test_fn_src *f = ud;
    slm_tensor_info t;
    fn_info(ud, i, &t);
    return f->read(f->ud, t.name, slm_tensor_info_nrows(&t), slm_tensor_info_ncols(&t), r0, n, dst, err);
}

static const void *fn_read_raw(const void *ud, size_t i, int64_t r0, int64_t n, void *scratch, slm_err *err) {
    return fn_read_f32(ud, i, r0, n, scratch, err) ? NULL : scratch;
}

void test_fn_src_init(test_fn_src *f, const slm_model_config *cfg, test_rows_fn read, void *ud, slm_tensor_src *out) {
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    f->read = read;
    f->ud = ud;
    f->dtype = SLM_DTYPE_F32;
    if (slm_catalog_each(cfg, fn_list, f)) fail_msg("test_fn_src: too many tensors");
    *out = (slm_tensor_src){(size_t)f->n, f, fn_info, fn_find, fn_read_f32, fn_read_raw, NULL};
}

int test_model_build_src(const slm_src *s, slm_model *m, int ctx, int flags, slm_err *err) {
    slm_tensor_src ts;
    slm_src_tensors(s, &ts);
    return slm_model_build(m, &s->cfg, &ts, ctx, flags, err);
}

void test_export_file(const char *in, const char *out, const char *ftype) {
    slm_err e = {0};
    slm_src s;
    slm_tensor_src ts;
    slm_kvs meta = {0};
    slm_export x;
    slm_afile f;
    if (slm_src_open(&s, in, &e)) fail_msg("%s", e.msg);
    slm_src_tensors(&s, &ts);
    if (!ftype) {
        int dt = s.tensors[slm_src_find(&s, "token_embd.weight")].dtype;
        ftype = dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32";
    }
    slm_export_opts o = {.cfg = &s.cfg, .meta = &meta, .widen_1d = s.kind == SLM_SRC_HF,
                         .recipe = {.ftype = slm_ftype_find(ftype), .output_type = -1, .token_embd_type = -1}};
    if (!o.recipe.ftype) fail_msg("unknown recipe %s", ftype);
    if (slm_src_output_meta(&s, &meta, &e) || slm_export_plan(&x, &ts, &o, &e) || slm_afile_open(&f, out, &e))
        fail_msg("%s: %s", in, e.msg);
    if (slm_export_write(&x, &f, &e) || slm_afile_commit(&f, &e)) fail_msg("%s -> %s: %s", in, out, e.msg);
    slm_export_free(&x);
    slm_kvs_free(&meta);
    slm_src_close(&s);
}
