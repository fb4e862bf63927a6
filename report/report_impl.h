/* report_impl.h - internals shared by the report renderers (report.c, report_html.c).
 * Not part of the public API.
 */
#ifndef SLM_REPORT_IMPL_H
#define SLM_REPORT_IMPL_H

#include <cjson/cJSON.h>

#include "report.h"

/* One run as the JSON object report.json holds (stable keys); NULL when out of memory. */
cJSON *slm_report_to_cjson(const slm_report *r);
/* Writes root (consumed; NULL means out of memory) as indented JSON + newline into the set. */
int slm_report_write_cjson(slm_outset *os, cJSON *root, const char *path, slm_err *err);
/* The Markdown (html 0) or HTML (html 1) page into *text (slm_alloc'd, NUL-terminated, len
   bytes; the caller frees it with slm_free): what slm_report_write_markdown/_html write. */
int slm_report_render(const slm_report *runs, size_t n_runs, int html, char **text, size_t *len, slm_err *err);

#endif
