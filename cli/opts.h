/* opts.h - options as data: one table per command drives parsing, the usage line and --help
 * (and the man page, which is generated from the same tables).
 *
 * Owns: the table types, the strict parser (--opt=v and --opt v, a value may not start with
 * '-' unless it is a number; "--" ends options; numbers range-checked, never clamped), the
 * options every command accepts (-h/--help, -q, -v, -f, -t, --progress, --no-progress), and
 * the rendering of usage and help text.
 * Must not: be used below cli/, or validate relations between options (each command does,
 * after parsing, with its own messages).
 */
#ifndef SLM_OPTS_H
#define SLM_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum opt_kind {
    OPT_FLAG,   /* int = 1 when given */
    OPT_STR,    /* const char * (argv's storage) */
    OPT_INT,    /* long in [lo, hi] */
    OPT_NUM,    /* double in [lo, hi] */
    OPT_CHOICE, /* int = choices[k].value for the name given */
    OPT_LIST,   /* opt_list: repeatable, at most hi values */
} opt_kind;

typedef struct opt_choice {
    const char *name;
    int value;
} opt_choice;

#define OPT_LIST_MAX 64
typedef struct opt_list {
    const char *v[OPT_LIST_MAX];
    int n;
} opt_list;

typedef struct opt {
    const char *lng;           /* "--output" */
    const char *shrt;          /* "-o", or NULL */
    opt_kind kind;
    size_t off;                /* offsetof(the command's options struct, field) */
    const char *metavar;       /* "FILE"; NULL for flags (OPT_CHOICE: the choices are listed) */
    const char *help;          /* lines separated by '\n' */
    double lo, hi;             /* OPT_INT / OPT_NUM range; OPT_LIST: hi = most values */
    const opt_choice *choices; /* OPT_CHOICE: terminated by a NULL name (case-insensitive match) */
    const char *hint;          /* appended to the message for a bad value, or NULL */
} opt;

typedef struct cmd_spec {
    const char *name;       /* "eval" */
    const char *synopsis;   /* after "slm eval ": "MODEL --text FILE [--ctx N] [options]" */
    const char *about;      /* what the command does: a paragraph before the options */
    const opt *opts;
    size_t n_opts;
    int n_pos_min, n_pos_max; /* positional arguments; n_pos_max -1: any number (pos[] holds argc) */
    const char *pos_names;  /* "MODEL" (for "missing MODEL") */
    const char *notes;      /* after the options (the exit status line is added) */
    int gate_exit;          /* the command has quality gates: exit status 3 is listed */
} cmd_spec;

/* Options every command accepts. */
typedef struct common_opts {
    int help;    /* 1: -h (short usage), 2: --help (full), 3: --man (man page section) */
    int force;   /* -f: overwrite outputs */
    long threads;
} common_opts;

#define OPT_OF(type, field) offsetof(type, field)

/* Parses argv[1..argc) into `out` (the command's options struct, defaults already set), *co and
   up to spec->n_pos_max positional arguments pos[], *n_pos of them. Returns 0, or 2 after
   printing a usage error. When -h/--help was given it prints the help and sets co->help: the
   command then returns 0. Missing positional arguments are a usage error unless help. */
int opts_parse(const cmd_spec *spec, int argc, char **argv, void *out, common_opts *co, const char **pos, int *n_pos);
/* The option of spec named lng ("--type"), or NULL. */
const opt *opts_find(const cmd_spec *spec, const char *lng);
/* Stores one value (NULL for a flag) of option o into out, checked as on the command line;
   messages start with `where` ("r.json: key 'type': ") when not NULL. 0, or 2 after printing
   the usage error. */
int opts_apply(const opt *o, const char *value, void *out, const char *where);
/* The options set in `opts` that shape a command's result, as a canonical command line
   ("--type Q4_K_M --eval-ctx 64 ..."; table order, numbers as %.10g; options holding their
   value in `defaults` (when not NULL) are left out, and so are options naming files or
   folders: their contents are hashed instead). Returns the length (truncated to cap - 1). */
size_t opts_render(const cmd_spec *spec, const void *opts, const void *defaults, char *buf, size_t cap);
/* "usage: slm <name> <synopsis>" and, when full, the whole help. */
void opts_usage(const cmd_spec *spec, FILE *f, int full);
/* The same help as a man page section (troff): `slm <command> --man`; `slm --man` puts the
   whole page together (make install writes it as slm.1). */
void opts_man(const cmd_spec *spec, FILE *f);
/* The options every command accepts, as man page paragraphs. */
void opts_man_common(FILE *f);

#endif
