/* fuzz_report.c - libFuzzer target: the JSON report reader (slm_report_parse_json) on bytes
 * from memory. A report that reads is rendered the way `slm report` writes it: report.json
 * (valid UTF-8), Markdown and HTML, alone and as a comparison of two runs.
 */
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "report/report.h"
#include "report/report_impl.h"

static void render(const slm_report *runs, size_t n) {
    slm_err e = {0};
    for (int html = 0; html < 2; html++) {
        char *text = NULL;
        size_t len = 0;
        int rc = slm_report_render(runs, n, html, &text, &len, &e);
        if (rc) fuzz_check_refusal(rc, &e);
        else SLM_ASSERT(len > 0 && strlen(text) == len);
        slm_free(text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_report r[2];
    slm_err e = {0};
    int rc = slm_report_parse_json(&r[0], (const char *)data, size, "r.json", &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        return 0;
    }
    cJSON *j = slm_report_to_cjson(&r[0]);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (text) { /* what report.json would hold: valid UTF-8, and it reads back */
        SLM_ASSERT(slm_utf8_valid(text, strlen(text)));
        slm_report back;
        SLM_ASSERT(slm_report_parse_json(&back, text, strlen(text), "report.json", &e) == SLM_OK);
        SLM_ASSERT(back.n_tensors == r[0].n_tensors && back.threads == r[0].threads && back.n_params == r[0].n_params);
        slm_report_free(&back);
        free(text);
    }
    render(r, 1);
    r[1] = r[0]; /* shares the tensors: read only */
    render(r, 2);
    slm_report_free(&r[0]);
    return 0;
}
