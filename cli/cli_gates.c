/* cli_gates.c - quality gates on the command line (cli_gates.h). */
#include "cli_gates.h"

#include <stdio.h>

#include "msg.h"

int cli_gates_check(const slm_gates *g, slm_report *r) {
    if (!slm_gates_any(g)) return EXIT_OK;
    int failed = slm_gates_check(g, r);
    char b[256];
    for (int i = 0; i < r->n_gates; i++)
        if (!r->gates[i].passed) msg_error("%s", slm_gate_describe(b, sizeof b, &r->gates[i]));
        else if (msg_show_summary()) fprintf(stderr, "  %s\n", slm_gate_describe(b, sizeof b, &r->gates[i]));
    return failed ? EXIT_GATE : EXIT_OK;
}
