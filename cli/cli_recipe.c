/* cli_recipe.c - recipe files (cli_recipe.h). */
#include "cli_recipe.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/mapfile.h"
#include "msg.h"

static int bad(const char *path, const char *key, const char *what) {
    msg_error("%s: key '%s': %s", path, key, what);
    return EXIT_USAGE;
}

/* A copy kept until cli_recipe_free; NULL when out of room. */
static const char *keep(cli_recipe *r, const char *s) {
    if (r->n_own == CLI_RECIPE_MAX_VALUES) return NULL;
    return r->own[r->n_own++] = strdup(s);
}

/* One value v of the option named by `name` (a key: '_' -> '-', prefix as given). */
static int apply_value(cli_recipe *r, const char *path, const char *key, const char *lng, const cJSON *v,
                       const cmd_spec *spec, void *out) {
    const opt *o = opts_find(spec, lng);
    char where[512], num[64];
    if (!o || !strcmp(lng, "--recipe") || !strcmp(lng, "--output")) return bad(path, key, "not an option of this command");
    snprintf(where, sizeof where, "%s: key '%s': ", path, key);
    if (o->kind == OPT_FLAG) {
        if (!cJSON_IsBool(v)) return bad(path, key, "expected true or false");
        return cJSON_IsTrue(v) ? opts_apply(o, NULL, out, where) : 0;
    }
    const char *s = NULL;
    int numeric = o->kind == OPT_INT || o->kind == OPT_NUM;
    if (cJSON_IsString(v) && !numeric) s = keep(r, v->valuestring);
    else if (cJSON_IsNumber(v) && numeric) {
        snprintf(num, sizeof num, "%.17g", v->valuedouble);
        s = keep(r, num);
    } else {
        return bad(path, key, numeric ? "expected a number" : "expected a string");
    }
    if (!s) return bad(path, key, "too many values");
    return opts_apply(o, s, out, where);
}

/* "tensor_types": {REGEX: TYPE} or ["REGEX=TYPE", ...] */
static int apply_map(cli_recipe *r, const char *path, const cJSON *m, const cmd_spec *spec, void *out) {
    const opt *o = opts_find(spec, "--tensor-type");
    if (!o) return bad(path, "tensor_types", "not an option of this command");
    for (const cJSON *e = m->child; e; e = e->next) {
        char kv[1024], where[512];
        if (cJSON_IsObject(m) && cJSON_IsString(e)) snprintf(kv, sizeof kv, "%s=%s", e->string, e->valuestring);
        else if (cJSON_IsArray(m) && cJSON_IsString(e)) snprintf(kv, sizeof kv, "%s", e->valuestring);
        else return bad(path, "tensor_types", "expected {\"REGEX\": \"TYPE\", ...}");
        const char *s = keep(r, kv);
        if (!s) return bad(path, "tensor_types", "too many values");
        snprintf(where, sizeof where, "%s: key 'tensor_types': ", path);
        if (opts_apply(o, s, out, where)) return EXIT_USAGE;
    }
    return 0;
}

/* The keys of object o, each as option prefix + key. */
static int apply_object(cli_recipe *r, const char *path, const char *group, const char *prefix, const cJSON *o,
                        const cmd_spec *spec, void *out) {
    for (const cJSON *e = o->child; e; e = e->next) {
        char key[256], lng[300];
        snprintf(key, sizeof key, "%s%s%s", group, group[0] ? "." : "", e->string);
        if (!group[0] && !strcmp(e->string, "method")) {
            if (!cJSON_IsString(e) || strcmp(e->valuestring, spec->name)) {
                char b[160];
                snprintf(b, sizeof b, "a recipe for '%s', this is slm %s", cJSON_IsString(e) ? e->valuestring : "?", spec->name);
                return bad(path, key, b);
            }
            continue;
        }
        if (!group[0] && (!strcmp(e->string, "about") || !strcmp(e->string, "comment"))) continue;
        if (!group[0] && !strcmp(e->string, "prune")) { /* the pruning step: slm prune's options */
            if (!cJSON_IsObject(e)) return bad(path, key, "expected an object");
            if (!strcmp(spec->name, "prune")) SLM_TRY(apply_object(r, path, "prune", "--", e, spec, out));
            continue;
        }
        if (!group[0] && !strcmp(e->string, "tensor_types")) {
            if (!cJSON_IsObject(e) && !cJSON_IsArray(e)) return bad(path, key, "expected {\"REGEX\": \"TYPE\", ...}");
            SLM_TRY(apply_map(r, path, e, spec, out));
            continue;
        }
        if (!group[0] && (!strcmp(e->string, "gates") || !strcmp(e->string, "eval"))) {
            if (!cJSON_IsObject(e)) return bad(path, key, "expected an object");
            SLM_TRY(apply_object(r, path, e->string, !strcmp(e->string, "eval") ? "--eval-" : "--", e, spec, out));
            continue;
        }
        int n = snprintf(lng, sizeof lng, "%s%s", prefix, e->string);
        for (int i = 2; i < n; i++) lng[i] = lng[i] == '_' ? '-' : lng[i];
        SLM_TRY(apply_value(r, path, key, lng, e, spec, out));
    }
    return 0;
}

int cli_recipe_apply(cli_recipe *r, const char *path, const cmd_spec *spec, void *out) {
    slm_map m;
    slm_err err = {0};
    memset(r, 0, sizeof *r);
    if (slm_map_open(&m, path, &err)) return cli_fail(&err);
    cJSON *root = cJSON_ParseWithLength(m.data ? (const char *)m.data : "", m.size);
    slm_map_close(&m);
    r->root = root;
    if (!root) return msg_error("%s: not valid JSON", path), EXIT_USAGE;
    if (!cJSON_IsObject(root)) return msg_error("%s: a recipe is a JSON object", path), EXIT_USAGE;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (!method) return bad(path, "method", "missing (the command, e.g. \"quantize\")");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "prune");
    if (!strcmp(spec->name, "prune") && cJSON_IsString(method) && strcmp(method->valuestring, "prune")) {
        /* a chain (prune, then quantize ...): slm prune takes its step, the rest is the next command's */
        if (!step) {
            char b[200];
            snprintf(b, sizeof b, "a recipe for '%s' with no \"prune\" step, this is slm prune", method->valuestring);
            return bad(path, "method", b);
        }
        if (!cJSON_IsObject(step)) return bad(path, "prune", "expected an object");
        return apply_object(r, path, "prune", "--", step, spec, out);
    }
    return apply_object(r, path, "", "--", root, spec, out);
}

void cli_recipe_free(cli_recipe *r) {
    cJSON_Delete(r->root);
    for (int i = 0; i < r->n_own; i++) free(r->own[i]);
    memset(r, 0, sizeof *r);
}
