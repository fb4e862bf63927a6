/* args.h - a tiny strict option parser shared by the subcommands.
 *
 * Accepts --opt=value and --opt value (a value may not start with '-' unless it is a number),
 * -x short flags, and "--" to end options. Numbers are checked for range and overflow; nothing
 * is silently clamped. The common options (-h/--help, -q, -v, --threads, -f, --progress,
 * --no-progress) are handled by args_common.
 * Must not: be used below cli/.
 */
#ifndef SLM_ARGS_H
#define SLM_ARGS_H

typedef struct args {
    int argc;
    char **argv;
    int i;              /* index of the current argument */
    const char *val;    /* value of the last matched option */
    int only_positional;
} args;

/* Common options every command accepts. */
typedef struct common_opts {
    int help;   /* 1: -h (short usage), 2: --help (full) */
    int force;  /* -f: overwrite outputs */
    int threads;
} common_opts;

void args_init(args *a, int argc, char **argv);
/* Advances; returns the current argument or NULL at the end. */
const char *args_next(args *a);
/* 1 when the current argument is an option (starts with '-' and options are not over). */
int args_is_opt(const args *a);
/* Flag match: "--name" exactly (or the short form). */
int args_flag(const args *a, const char *lng, const char *shrt);
/* Option with a value: "--name=v" or "--name v" / "-s v"; returns 1 and sets a->val, 0 when not
   this option, -1 (usage error already printed) when the value is missing. */
int args_value(args *a, const char *lng, const char *shrt);
/* Parses a->val as an integer in [lo, hi]; -1 and a usage message when not. */
int args_int(const args *a, const char *opt, long lo, long hi, long *out);
int args_double(const args *a, const char *opt, double lo, double hi, double *out);
/* Handles the common options: 1 consumed, 0 not common, -1 usage error (printed). */
int args_common(args *a, common_opts *c);

#endif
