/* main.c - `slm <command>` dispatch, argv[0] aliases (slm-quantize ...), --help, --version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/mem.h"
#include "core/signals.h"
#include "core/slm.h"
#include "msg.h"
#include "opts.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} command;

static const command k_commands[] = {
    {"convert", cmd_convert, "Hugging Face folder -> GGUF (F32/F16/BF16), lossless by default"},
    {"quantize", cmd_quantize, "model -> quantized GGUF (Q8_0 ... Q2_K, IQ4_NL/XS, Q4_K_M ...)"},
    {"inspect", cmd_inspect, "print the metadata and tensor table of a GGUF or safetensors file"},
    {"calibrate", cmd_calibrate, "calibration statistics of a model on a text: an imatrix GGUF + AWQ/GPTQ extras"},
    {"eval", cmd_eval, "perplexity of a model on a text, KL divergence from a reference model"},
    {"generate", cmd_generate, "greedy text generation from a prompt"},
    {"distill", cmd_distill, "train a student on a teacher's outputs (logit distillation, AdamW)"},
    {"prune", cmd_prune, "remove weights, FFN channels, attention heads or blocks (magnitude, Wanda, SparseGPT)"},
    {"report", cmd_report, "JSON reports -> Markdown + self-contained HTML page with charts"},
    {"pack", cmd_pack, "GGUF -> packed GGUF (zstd per tensor, read directly by eval/inspect)"},
    {"unpack", cmd_unpack, "packed GGUF -> the original GGUF, byte for byte"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: slm <command> [options]\n\n"
               "slm makes small language models smaller and faster, and measures what it cost.\n\n"
               "commands:\n");
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_commands); i++) fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].about);
    fprintf(f, "\n'slm <command> --help' shows a command's options. Each command is also installed as\n"
               "slm-<command> (slm-quantize, slm-convert, ...).\n\n"
               "exit status: 0 ok, 1 failure, 2 usage error, 3 quality gate failed,\n"
               "             130/143 interrupted (no partial output is left)\n");
}

/* The man page (make install writes it as slm.1): this header, every command's option table
   (`slm <command> --man`, the same tables --help prints), the common options and exit status. */
static int man_page(void) {
    printf(".TH SLM 1 \"\" \"slm %s\" \"User Commands\"\n.SH NAME\nslm \\- small language models, smaller and faster, "
           "with the cost measured\n.SH SYNOPSIS\n.B slm\n.I command\n[options]\n.br\n.B slm\\-\\fIcommand\\fR [options]\n"
           ".SH DESCRIPTION\nslm converts Hugging Face model folders to GGUF, quantizes them with llama.cpp's block formats and "
           "recipes (byte for byte llama\\-quantize's output), and measures what quantization cost: per\\-tensor error, "
           "perplexity and KL divergence, in JSON, Markdown and HTML reports.\n.SH COMMANDS\n", SLM_VERSION);
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_commands); i++) printf(".TP\n.B %s\n%s\n", k_commands[i].name, k_commands[i].about);
    printf(".SH \"COMMON OPTIONS\"\n");
    fflush(stdout);
    opts_man_common(stdout);
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_commands); i++) {
        char *argv[] = {(char *)k_commands[i].name, "--man", NULL};
        fflush(stdout);
        if (k_commands[i].run(2, argv)) return EXIT_FAIL;
    }
    fflush(stdout);
    printf(".SH \"EXIT STATUS\"\n0 ok, 1 failure (I/O, malformed or unsupported input, bad data, memory), 2 usage error, "
           "3 a quality gate failed (output kept), 130/143 interrupted by SIGINT/SIGTERM (no partial output is left).\n");
    return ferror(stdout) || fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

static const command *find(const char *name) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_commands); i++)
        if (!strcmp(k_commands[i].name, name)) return &k_commands[i];
    return NULL;
}

/* SLM_TEST_FAIL_ALLOC=k makes the (k+1)-th allocation fail: tests/faults.sh walks every
   allocation of a command this way (clean exit, one line, no output, no leak). */
static void test_hooks(void) {
    const char *k = getenv("SLM_TEST_FAIL_ALLOC");
    if (k && *k) slm_mem_fail_after(strtol(k, NULL, 10));
}

int main(int argc, char **argv) {
    slm_signals_install();
    test_hooks();
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (!strncmp(base, "slm-", 4)) { /* alias: slm-quantize == slm quantize */
        const command *c = find(base + 4);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "slm %s", base + 4);
        msg_init(cmd);
        if (!c) return msg_usage_error("unknown command '%s'", base + 4);
        return c->run(argc, argv);
    }
    msg_init("slm");
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--man")) return man_page();
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("slm %s\n", SLM_VERSION);
        return EXIT_OK;
    }
    const command *c = find(argv[1]);
    if (!c) return msg_usage_error("unknown command '%s'", argv[1]);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "slm %s", c->name);
    msg_init(cmd);
    return c->run(argc - 1, argv + 1);
}
