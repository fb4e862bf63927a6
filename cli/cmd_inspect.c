/* cmd_inspect.c - `slm inspect FILE [--json]`: metadata and tensor table of a GGUF file, a
 * packed GGUF (with each tensor's compressed size), a safetensors file or a Hugging Face
 * folder (its safetensors shards). Names and strings from
 * the file reach the terminal through msg_safe (no raw control characters) and the JSON as
 * valid UTF-8 (invalid bytes as U+FFFD). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/utf8.h"
#include "formats/gguf.h"
#include "formats/pack.h"
#include "formats/safetensors.h"
#include "msg.h"
#include "opts.h"

typedef struct inspect_opts {
    int json;
} inspect_opts;

static const opt k_opts[] = {
    {"--json", NULL, OPT_FLAG, OPT_OF(inspect_opts, json), NULL, "machine-readable output on stdout", 0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "inspect", "FILE [--json]",
    "Prints the metadata and the tensor table (name, type, shape, bytes, offset) of a GGUF\n"
    "file, a packed GGUF (slm pack; also each tensor's compressed size), a safetensors file or\n"
    "a Hugging Face folder. Offsets are relative to the data section. The file is validated\n"
    "completely first (a packed file's tensors are decompressed only by the commands that\n"
    "read them, which check their checksums).",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "FILE", NULL, 0,
};

/* ---- JSON rendering of GGUF values -------------------------------------------------------- */

/* A JSON string of s: invalid UTF-8 becomes U+FFFD (cJSON escapes control characters). */
static cJSON *json_str(const char *s) {
    size_t n = strlen(s);
    if (slm_utf8_valid(s, n)) return cJSON_CreateString(s);
    char *fixed = slm_utf8_fix(s, n, NULL);
    cJSON *j = fixed ? cJSON_CreateString(fixed) : NULL;
    slm_free(fixed);
    return j;
}

/* obj[key] = item, the key made valid UTF-8 the same way. */
static void json_add(cJSON *obj, const char *key, cJSON *item) {
    size_t n = strlen(key);
    char *fixed = slm_utf8_valid(key, n) ? NULL : slm_utf8_fix(key, n, NULL);
    if (!cJSON_AddItemToObject(obj, fixed ? fixed : key, item)) cJSON_Delete(item);
    slm_free(fixed);
}

static cJSON *scalar_json(int type, const void *p) {
    switch (type) {
    case SLM_GGUF_UINT8: return cJSON_CreateNumber(*(const uint8_t *)p);
    case SLM_GGUF_INT8: return cJSON_CreateNumber(*(const int8_t *)p);
    case SLM_GGUF_UINT16: return cJSON_CreateNumber(slm_le_u16(p));
    case SLM_GGUF_INT16: return cJSON_CreateNumber((int16_t)slm_le_u16(p));
    case SLM_GGUF_UINT32: return cJSON_CreateNumber(slm_le_u32(p));
    case SLM_GGUF_INT32: return cJSON_CreateNumber((int32_t)slm_le_u32(p));
    case SLM_GGUF_FLOAT32: return cJSON_CreateNumber(slm_le_f32(p));
    case SLM_GGUF_BOOL: return cJSON_CreateBool(*(const uint8_t *)p != 0);
    case SLM_GGUF_UINT64: return cJSON_CreateNumber((double)slm_le_u64(p));
    case SLM_GGUF_INT64: return cJSON_CreateNumber((double)(int64_t)slm_le_u64(p));
    case SLM_GGUF_FLOAT64: return cJSON_CreateNumber(slm_le_f64(p));
    }
    return cJSON_CreateNull();
}

static cJSON *val_json(const slm_gguf_val *v) {
    if (v->type == SLM_GGUF_STRING) return json_str(v->v.str.s);
    if (v->type != SLM_GGUF_ARRAY) return scalar_json(v->type, &v->v);
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; a && i < v->v.arr.n; i++) {
        cJSON *e;
        if (v->v.arr.type == SLM_GGUF_STRING) e = json_str(((const slm_gguf_str *)v->v.arr.data)[i].s);
        else if (v->v.arr.type == SLM_GGUF_ARRAY) e = val_json(&((const slm_gguf_val *)v->v.arr.data)[i]);
        else e = scalar_json(v->v.arr.type, (const uint8_t *)v->v.arr.data + i * slm_gguf_scalar_size(v->v.arr.type));
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

/* Short text form: scalars in full, strings up to ~60 bytes (escaped), arrays as type x count. */
/* full: strings whole (the slm.* manifest keys), else cut to a screen column */
static void val_text(const slm_gguf_val *v, FILE *f, int full) {
    if (v->type == SLM_GGUF_STRING) {
        char b[64], w[2048];
        fprintf(f, "\"%s\"", full ? msg_safe(w, sizeof w, v->v.str.s) : msg_safe(b, sizeof b, v->v.str.s));
        return;
    }
    if (v->type == SLM_GGUF_ARRAY) {
        fprintf(f, "[%s x %llu]", slm_gguf_type_name(v->v.arr.type), (unsigned long long)v->v.arr.n);
        return;
    }
    cJSON *j = scalar_json(v->type, &v->v);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    fprintf(f, "%s", s ? s : "?");
    free(s);
    cJSON_Delete(j);
}

static cJSON *add_tensor_json(cJSON *arr, const char *name, int type, const int64_t *shape, int ndim, size_t nbytes, uint64_t off) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    json_add(o, "name", json_str(name));
    cJSON_AddStringToObject(o, "type", slm_dtype_name(type));
    cJSON *sh = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[d]));
    cJSON_AddNumberToObject(o, "bytes", (double)nbytes);
    cJSON_AddNumberToObject(o, "offset", (double)off);
    return o;
}

static void print_tensor_row(const char *name, int type, const int64_t *shape, int ndim, size_t nbytes, uint64_t off) {
    char sh[64], nm[512];
    printf("  %-40s %-7s %-16s %12zu %12llu", msg_safe(nm, sizeof nm, name), slm_dtype_name(type),
           slm_shape_str(sh, sizeof sh, shape, ndim), nbytes, (unsigned long long)off);
}

/* A packed frame's compressed size and its share of the bytes it holds. */
static double ratio(const slm_pack_frame *f) { return f->rsize ? (double)f->csize / (double)f->rsize : 0; }

static int emit_json(cJSON *root) {
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) { msg_error("out of memory"); return EXIT_FAIL; }
    printf("%s\n", s);
    free(s);
    return EXIT_OK;
}

/* The GGUF g as JSON; p (or NULL) the pack holding it: "packed" facts and per tensor
   "compressed_bytes" (its frame: the tensor and the padding after it). */
static cJSON *gguf_json(const char *path, const slm_gguf *g, const slm_pack *p) {
    cJSON *root = cJSON_CreateObject();
    json_add(root, "file", json_str(path));
    cJSON_AddStringToObject(root, "format", p ? "gguf.zst" : "gguf");
    if (p) {
        cJSON *pk = cJSON_AddObjectToObject(root, "packed");
        cJSON_AddNumberToObject(pk, "version", p->version);
        cJSON_AddNumberToObject(pk, "zstd_level", p->level);
        cJSON_AddNumberToObject(pk, "gguf_bytes", (double)p->gguf_size);
        cJSON_AddNumberToObject(pk, "packed_bytes", (double)p->map.size);
        cJSON_AddNumberToObject(pk, "header_compressed_bytes", (double)p->frames[0].csize);
    }
    cJSON_AddNumberToObject(root, "version", g->version);
    cJSON_AddNumberToObject(root, "alignment", (double)g->alignment);
    cJSON_AddNumberToObject(root, "data_offset", (double)g->data_offset);
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    for (size_t i = 0; i < g->kv.n; i++) json_add(md, g->kv.items[i].key, val_json(&g->kv.items[i].val));
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < g->n_tensors; i++) {
        const slm_gguf_tinfo *t = &g->tensors[i];
        cJSON *o = add_tensor_json(ts, t->name, t->type, t->shape, t->ndim, t->nbytes, t->offset);
        if (p) cJSON_AddNumberToObject(o, "compressed_bytes", (double)p->frames[i + 1].csize);
    }
    return root;
}

static void gguf_text(const char *path, const slm_gguf *g, const slm_pack *p) {
    char b[1024];
    if (p) {
        char x[32], y[32];
        printf("%s: packed GGUF (slm pack v%u, zstd level %u): %s -> %s (%.3f of the size), header %llu -> %llu bytes\n",
               msg_safe(b, sizeof b, path), p->version, p->level, slm_fmt_bytes(x, sizeof x, (double)p->gguf_size),
               slm_fmt_bytes(y, sizeof y, (double)p->map.size), p->gguf_size ? (double)p->map.size / (double)p->gguf_size : 0,
               (unsigned long long)p->frames[0].rsize, (unsigned long long)p->frames[0].csize);
        printf("  GGUF v%u, %zu metadata keys, %zu tensors, alignment %zu, data at %zu\n", g->version, g->kv.n, g->n_tensors,
               g->alignment, g->data_offset);
    } else {
        printf("%s: GGUF v%u, %zu metadata keys, %zu tensors, alignment %zu, data at %zu\n", msg_safe(b, sizeof b, path), g->version,
               g->kv.n, g->n_tensors, g->alignment, g->data_offset);
    }
    for (size_t i = 0; i < g->kv.n; i++) {
        printf("  %-44s %-6s ", msg_safe(b, sizeof b, g->kv.items[i].key), slm_gguf_type_name(g->kv.items[i].val.type));
        val_text(&g->kv.items[i].val, stdout, !strncmp(g->kv.items[i].key, "slm.", 4));
        printf("\n");
    }
    printf("  %-40s %-7s %-16s %12s %12s", "tensor", "type", "shape", "bytes", "offset");
    printf(p ? " %12s %6s\n" : "\n", "compressed", "ratio");
    for (size_t i = 0; i < g->n_tensors; i++) {
        const slm_gguf_tinfo *t = &g->tensors[i];
        print_tensor_row(t->name, t->type, t->shape, t->ndim, t->nbytes, t->offset);
        if (p) printf(" %12llu %6.3f", (unsigned long long)p->frames[i + 1].csize, ratio(&p->frames[i + 1]));
        printf("\n");
    }
}

static int inspect_gguf(const char *path, int json) {
    slm_gguf g;
    slm_err err = {0};
    if (slm_gguf_open(&g, path, &err)) return cli_fail(&err);
    int rc = EXIT_OK;
    if (json) rc = emit_json(gguf_json(path, &g, NULL));
    else gguf_text(path, &g, NULL);
    slm_gguf_close(&g);
    return rc;
}

static int inspect_pack(const char *path, int json) {
    slm_pack p;
    slm_err err = {0};
    if (slm_pack_open(&p, path, &err)) return cli_fail(&err);
    int rc = EXIT_OK;
    if (json) rc = emit_json(gguf_json(path, &p.gguf, &p));
    else gguf_text(path, &p.gguf, &p);
    slm_pack_close(&p);
    return rc;
}

static int inspect_st(const char *path, int json) {
    slm_err err = {0};
    slm_st_model m;
    memset(&m, 0, sizeof m);
    int rc;
    rc = slm_st_model_open(&m, path, &err);
    if (rc) {
        slm_st_model_close(&m);
        return cli_fail(&err);
    }
    cJSON *root = json ? cJSON_CreateObject() : NULL, *ts = NULL;
    if (json) {
        json_add(root, "file", json_str(path));
        cJSON_AddStringToObject(root, "format", "safetensors");
        cJSON *sh = cJSON_AddArrayToObject(root, "shards");
        for (int s = 0; s < m.n_shards; s++) cJSON_AddItemToArray(sh, json_str(m.shard_names[s]));
        ts = cJSON_AddArrayToObject(root, "tensors");
    } else {
        char b[1024];
        printf("%s: safetensors, %d file(s), %zu tensors\n", msg_safe(b, sizeof b, path), m.n_shards, m.n_tensors);
        printf("  %-40s %-7s %-16s %12s %12s\n", "tensor", "type", "shape", "bytes", "offset");
    }
    for (size_t i = 0; i < m.n_tensors; i++) {
        const slm_st_entry *e = &m.shards[m.tensors[i].shard].entries[m.tensors[i].entry];
        if (json) add_tensor_json(ts, e->name, e->dtype, e->shape, e->ndim, (size_t)(e->end - e->begin), e->begin);
        else {
            print_tensor_row(e->name, e->dtype, e->shape, e->ndim, (size_t)(e->end - e->begin), e->begin);
            printf("\n");
        }
    }
    slm_st_model_close(&m);
    return json ? emit_json(root) : EXIT_OK;
}

int cmd_inspect(int argc, char **argv) {
    inspect_opts o = {0};
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    const char *in = pos[0];
    const int json = o.json;
    slm_map m;
    slm_err err = {0};
    struct stat st;
    if (stat(in, &st) == 0 && S_ISDIR(st.st_mode)) return inspect_st(in, json);
    /* by extension first (so a .gguf with a bad magic gets GGUF's message), else by magic */
    size_t len = strlen(in);
    int is_gguf = len > 5 && !strcmp(in + len - 5, ".gguf"), is_pack = len > 9 && !strcmp(in + len - 9, ".gguf.zst");
    if (!is_gguf && !is_pack && !(len > 12 && !strcmp(in + len - 12, ".safetensors"))) {
        if (slm_map_open(&m, in, &err)) return cli_fail(&err);
        is_gguf = m.size >= 4 && slm_le_u32(m.data) == SLM_GGUF_MAGIC;
        is_pack = slm_pack_sniff(m.data, m.size);
        slm_map_close(&m);
    }
    return is_pack ? inspect_pack(in, json) : is_gguf ? inspect_gguf(in, json) : inspect_st(in, json);
}
