/* Run configuration: INI files read with inih, --set overrides, value parsers,
 * cross-key validation and the resolved configuration written back as INI text.
 *
 * Every value passes through sgk_config_set, so a key behaves the same in a file and
 * on the command line. Errors are SGK_ERR_USAGE and start with the origin of the value
 * ("run.ini:12" or "--set data.n_train=5"), then name section.key, the value and what
 * is accepted. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getline, open_memstream, strcasecmp */
#endif

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "sgk/config.h"

/* ------------------------------------------------------------------------- */
/* Names of enumerated values, indexed by the enum value. */

static const char *const source_names[] = { "fashion-mnist", "idx", "netcdf", "csv", "teacher",
                                             "moons", "gaussian-mixture" };
static const char *const task_names[] = { "regression", "denoise", "gan" };
static const char *const activation_names[] = { "relu", "tanh", "erf", "gelu" };
static const char *const parametrization_names[] = { "standard", "ntk" };
static const char *const loss_names[] = { "mse", "xent", "logistic" };
static const char *const optimizer_names[] = { "sgd", "momentum", "adam", "rmsprop", "sgld" };
static const char *const divergence_names[] = { "stop", "drop" };

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* Fashion-MNIST labels are 0..9; IDX label files store one unsigned byte per label. */
#define FASHION_MNIST_CLASSES 10
#define MAX_CLASS_LABEL 255

/* ------------------------------------------------------------------------- */
/* One value on its way into the configuration, with what error messages need. */
typedef struct {
    const char *origin;  /* "run.ini:12" or "--set data.n_train=5" */
    const char *section;
    const char *key;
    const char *value;   /* without surrounding whitespace */
} setting;

/* Shorten `text` for an error message, because the message buffer of status.c has
 * room for 2048 bytes and a path may be 4095 bytes long. */
static const char *shorten(const char *text, char *buffer, size_t size)
{
    size_t length = strlen(text);

    if (length <= 80) return text;
    snprintf(buffer, size, "%.48s... (%zu characters)", text, length);
    return buffer;
}

/* Record "ORIGIN: invalid value "V" for S.K: expected EXPECTED". */
static sgk_status invalid_value(const setting *s, const char *expected_format, ...)
    __attribute__((format(printf, 2, 3)));

static sgk_status invalid_value(const setting *s, const char *expected_format, ...)
{
    char expected[512];
    char short_value[128];
    va_list args;

    va_start(args, expected_format);
    vsnprintf(expected, sizeof expected, expected_format, args);
    va_end(args);
    return sgk_error(SGK_ERR_USAGE, "%s: invalid value \"%s\" for %s.%s: expected %s", s->origin,
                     shorten(s->value, short_value, sizeof short_value), s->section, s->key,
                     expected);
}

/* ------------------------------------------------------------------------- */
/* Conversions of one token. Each rejects empty text, surrounding whitespace, trailing
 * characters and values outside the C type, so nothing wraps or is cut silently. */

static bool convert_llong(const char *text, long long *out)
{
    char *end;

    if (text[0] == '\0' || isspace((unsigned char)text[0])) return false;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno == ERANGE || *end != '\0') return false;
    *out = value;
    return true;
}

/* strtoull accepts "-1" and returns its negation modulo 2^64, so a sign is checked
 * before the call. */
static bool convert_u64(const char *text, uint64_t *out)
{
    char *end;

    if (!isdigit((unsigned char)text[0]) && !(text[0] == '+' && isdigit((unsigned char)text[1])))
        return false;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno == ERANGE || *end != '\0' || value > UINT64_MAX) return false;
    *out = (uint64_t)value;
    return true;
}

/* glibc's strtod sets ERANGE on overflow and on results below the normal range
 * (1e-310, 1e-400). Both are rejected, because the stored number would differ from
 * the one written. */
static bool convert_double(const char *text, double *out)
{
    char *end;

    if (text[0] == '\0' || isspace((unsigned char)text[0])) return false;
    errno = 0;
    double value = strtod(text, &end);
    if (errno == ERANGE || *end != '\0' || !isfinite(value)) return false;
    *out = value;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Parsers of one value. Each writes its output only when the whole value is valid. */

static sgk_status parse_long(const setting *s, long min, long max, long *out)
{
    long long value;

    if (!convert_llong(s->value, &value) || value < min || value > max)
        return invalid_value(s, "an integer from %ld to %ld", min, max);
    *out = (long)value;
    return SGK_OK;
}

static sgk_status parse_int(const setting *s, int min, int max, int *out)
{
    long value = 0;

    SGK_CHECK(parse_long(s, min, max, &value));
    *out = (int)value;
    return SGK_OK;
}

static sgk_status parse_u64(const setting *s, uint64_t *out)
{
    if (!convert_u64(s->value, out))
        return invalid_value(s, "an unsigned integer from 0 to %llu", (unsigned long long)UINT64_MAX);
    return SGK_OK;
}

/* Interval of a real-valued key. An open end excludes its bound, and an infinite
 * bound means no limit on that side. */
typedef struct {
    double low;
    bool low_open;
    double high;
    bool high_open;
} real_interval;

static bool interval_contains(const real_interval *range, double x)
{
    if (range->low_open ? !(x > range->low) : !(x >= range->low)) return false;
    if (range->high_open ? !(x < range->high) : !(x <= range->high)) return false;
    return true;
}

static void describe_interval(const real_interval *range, char *text, size_t size)
{
    int used = snprintf(text, size, "a finite number");

    if (isfinite(range->low))
        used += snprintf(text + used, size - (size_t)used, " %s %g", range->low_open ? ">" : ">=",
                         range->low);
    if (isfinite(range->high))
        snprintf(text + used, size - (size_t)used, "%s %s %g", isfinite(range->low) ? " and" : "",
                 range->high_open ? "<" : "<=", range->high);
}

static sgk_status parse_real(const setting *s, real_interval range, double *out)
{
    double value;
    char expected[128];

    if (!convert_double(s->value, &value) || !interval_contains(&range, value)) {
        describe_interval(&range, expected, sizeof expected);
        return invalid_value(s, "%s", expected);
    }
    *out = value;
    return SGK_OK;
}

static sgk_status parse_bool(const setting *s, int *out)
{
    static const char *const true_words[] = { "yes", "true", "on", "1" };
    static const char *const false_words[] = { "no", "false", "off", "0" };

    for (int i = 0; i < COUNT(true_words); i++) {
        if (strcasecmp(s->value, true_words[i]) == 0) {
            *out = 1;
            return SGK_OK;
        }
        if (strcasecmp(s->value, false_words[i]) == 0) {
            *out = 0;
            return SGK_OK;
        }
    }
    return invalid_value(s, "one of yes, no, true, false, on, off, 1, 0");
}

/* Match the value against `names` (case-insensitive) and store the index. */
static sgk_status parse_keyword(const setting *s, const char *const *names, int n_names, int *out)
{
    char accepted[256] = "";

    for (int i = 0; i < n_names; i++) {
        if (strcasecmp(s->value, names[i]) == 0) {
            *out = i;
            return SGK_OK;
        }
    }
    for (int i = 0; i < n_names; i++) {
        strncat(accepted, i ? ", " : "", sizeof accepted - strlen(accepted) - 1);
        strncat(accepted, names[i], sizeof accepted - strlen(accepted) - 1);
    }
    return invalid_value(s, "one of %s", accepted);
}

static bool value_listed(const int *values, int n, int value)
{
    for (int i = 0; i < n; i++)
        if (values[i] == value) return true;
    return false;
}

/* Rules for a comma-separated list of integers. */
typedef struct {
    int min;
    int max;
    int capacity;      /* size of the destination array, in entries */
    bool distinct;     /* reject repeated entries */
    const char *what;  /* "class labels", "layer widths": for the message */
} int_list_rules;

/* Parse `text` (the whole value, or the part after "classes:") as a comma-separated
 * list; empty text is an empty list. Spaces around entries are allowed. */
static sgk_status parse_int_list(const setting *s, const char *text, const int_list_rules *rules,
                                 int *out, int *n_out)
{
    int values[SGK_MAX_CLASSES > SGK_MAX_HIDDEN ? SGK_MAX_CLASSES : SGK_MAX_HIDDEN];
    int n = 0;
    const char *cursor = text;
    char token[64];

    while (*cursor == ' ' || *cursor == '\t') cursor++;
    if (*cursor == '\0') {
        *n_out = 0;
        return SGK_OK;
    }
    for (;;) {
        const char *comma = strchr(cursor, ',');
        size_t length = comma ? (size_t)(comma - cursor) : strlen(cursor);
        long long value;

        while (length > 0 && isspace((unsigned char)cursor[0])) {
            cursor++;
            length--;
        }
        while (length > 0 && isspace((unsigned char)cursor[length - 1])) length--;
        if (length >= sizeof token) length = sizeof token - 1; /* still invalid: no int has 63 digits */
        memcpy(token, cursor, length);
        token[length] = '\0';

        if (n == rules->capacity || !convert_llong(token, &value) || value < rules->min ||
            value > rules->max || (rules->distinct && value_listed(values, n, (int)value)))
            break;
        values[n++] = (int)value;
        if (!comma) {
            memcpy(out, values, (size_t)n * sizeof values[0]);
            *n_out = n;
            return SGK_OK;
        }
        cursor = comma + 1;
    }
    return invalid_value(s, "a comma-separated list of at most %d %s%s, each from %d to %d",
                         rules->capacity, rules->distinct ? "distinct " : "", rules->what,
                         rules->min, rules->max);
}

/* Paths are stored whole or rejected. A path that contains a line break, or a ';'
 * after whitespace, would be cut when sgk_config_to_ini's output is read back, because
 * inih ends the value there, so such paths are rejected too. */
static sgk_status parse_path(const setting *s, bool allow_empty, char out[SGK_PATH_LEN])
{
    size_t length = strlen(s->value);

    if (length >= SGK_PATH_LEN)
        return invalid_value(s, "a path of at most %d bytes", SGK_PATH_LEN - 1);
    if (length == 0 && !allow_empty) return invalid_value(s, "a file or folder path");
    for (size_t i = 0; i < length; i++) {
        if (iscntrl((unsigned char)s->value[i]))
            return invalid_value(s, "a path without control characters");
        /* The INI text writes "key = value", so a ';' at the start of a path would follow
         * whitespace there and read back as a comment. */
        if (s->value[i] == ';' && (i == 0 || isspace((unsigned char)s->value[i - 1])))
            return invalid_value(s, "a path that does not start with ';' and has no whitespace "
                                    "before ';', which starts a comment");
    }
    memcpy(out, s->value, length + 1);
    return SGK_OK;
}

/* ------------------------------------------------------------------------- */
/* Setters, one per key. */

static const int_list_rules class_rules = { 0, MAX_CLASS_LABEL, SGK_MAX_CLASSES, true,
                                            "class labels" };

static sgk_status set_data_source(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, source_names, COUNT(source_names), &index));
    c->data.source = (sgk_source)index;
    return SGK_OK;
}

static sgk_status set_data_path(sgk_config *c, const setting *s)
{
    return parse_path(s, true, c->data.path);
}

/* "all" and an empty value both mean every class of the source (n_classes = 0). */
static sgk_status set_data_classes(sgk_config *c, const setting *s)
{
    if (strcasecmp(s->value, "all") == 0) {
        c->data.n_classes = 0;
        return SGK_OK;
    }
    return parse_int_list(s, s->value, &class_rules, c->data.classes, &c->data.n_classes);
}

static sgk_status set_data_n_train(sgk_config *c, const setting *s)
{
    return parse_long(s, 1, LONG_MAX, &c->data.n_train);
}

static sgk_status set_data_n_test(sgk_config *c, const setting *s)
{
    return parse_long(s, 0, LONG_MAX, &c->data.n_test);
}

/* none | noise | classes:LIST | shift:SCALE | file. */
static sgk_status set_data_ood(sgk_config *c, const setting *s)
{
    static const real_interval any_finite = { -INFINITY, true, INFINITY, true };
    int classes[SGK_MAX_CLASSES];
    int n_classes;
    double scale;
    char expected[128];

    if (strcasecmp(s->value, "none") == 0) {
        c->data.ood = SGK_OOD_NONE;
        return SGK_OK;
    }
    if (strcasecmp(s->value, "noise") == 0) {
        c->data.ood = SGK_OOD_NOISE;
        return SGK_OK;
    }
    if (strcasecmp(s->value, "file") == 0) {
        c->data.ood = SGK_OOD_FILE;
        return SGK_OK;
    }
    if (strncasecmp(s->value, "classes:", 8) == 0) {
        SGK_CHECK(parse_int_list(s, s->value + 8, &class_rules, classes, &n_classes));
        if (n_classes == 0) return invalid_value(s, "classes:LIST with at least one class label");
        memcpy(c->data.ood_classes, classes, (size_t)n_classes * sizeof classes[0]);
        c->data.n_ood_classes = n_classes;
        c->data.ood = SGK_OOD_CLASSES;
        return SGK_OK;
    }
    if (strncasecmp(s->value, "shift:", 6) == 0) {
        if (!convert_double(s->value + 6, &scale)) {
            describe_interval(&any_finite, expected, sizeof expected);
            return invalid_value(s, "shift:SCALE with SCALE %s", expected);
        }
        c->data.ood_shift = scale;
        c->data.ood = SGK_OOD_SHIFT;
        return SGK_OK;
    }
    return invalid_value(s, "none, noise, classes:LIST (e.g. classes:7,9), shift:SCALE "
                            "(e.g. shift:2.5) or file");
}

static sgk_status set_data_n_ood(sgk_config *c, const setting *s)
{
    return parse_long(s, 0, LONG_MAX, &c->data.n_ood);
}

static sgk_status set_data_seed(sgk_config *c, const setting *s)
{
    return parse_u64(s, &c->data.seed);
}

static sgk_status set_data_teacher_inputs(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, INT_MAX, &c->data.teacher_inputs);
}

static sgk_status set_data_teacher_width(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, INT_MAX, &c->data.teacher_width);
}

static sgk_status set_data_teacher_noise(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->data.teacher_noise);
}

static sgk_status set_data_synthetic_noise(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->data.synthetic_noise);
}

static sgk_status set_data_mixture_components(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, 1024, &c->data.mixture_components);
}

static sgk_status set_data_mixture_radius(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->data.mixture_radius);
}

static sgk_status set_model_widths(sgk_config *c, const setting *s)
{
    static const int_list_rules rules = { 1, INT_MAX, SGK_MAX_HIDDEN, false, "layer widths" };

    return parse_int_list(s, s->value, &rules, c->model.widths, &c->model.n_hidden);
}

static sgk_status set_model_activation(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, activation_names, COUNT(activation_names), &index));
    c->model.activation = (sgk_activation)index;
    return SGK_OK;
}

static sgk_status set_model_parametrization(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, parametrization_names, COUNT(parametrization_names), &index));
    c->model.parametrization = (sgk_parametrization)index;
    return SGK_OK;
}

static sgk_status set_model_init_file(sgk_config *c, const setting *s)
{
    return parse_path(s, true, c->model.init_file);
}

static sgk_status set_train_task(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, task_names, COUNT(task_names), &index));
    c->train.task = (sgk_task)index;
    return SGK_OK;
}

static sgk_status set_train_loss(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, loss_names, COUNT(loss_names), &index));
    c->train.loss = (sgk_loss_kind)index;
    return SGK_OK;
}

static sgk_status set_train_optimizer(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, optimizer_names, COUNT(optimizer_names), &index));
    c->train.optimizer = (sgk_optimizer_kind)index;
    return SGK_OK;
}

static sgk_status set_train_lr(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, true, INFINITY, true }, &c->train.lr);
}

static sgk_status set_train_momentum(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, 1.0, true }, &c->train.momentum);
}

static sgk_status set_train_beta2(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, 1.0, true }, &c->train.beta2);
}

static sgk_status set_train_epsilon(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, true, INFINITY, true }, &c->train.epsilon);
}

static sgk_status set_train_temperature(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->train.temperature);
}

/* "full" is stored as 0. */
static sgk_status set_train_batch_size(sgk_config *c, const setting *s)
{
    long long value;

    if (strcasecmp(s->value, "full") == 0) {
        c->train.batch_size = 0;
        return SGK_OK;
    }
    if (!convert_llong(s->value, &value) || value < 1 || value > LONG_MAX)
        return invalid_value(s, "full, or an integer from 1 to %ld", LONG_MAX);
    c->train.batch_size = (long)value;
    return SGK_OK;
}

static sgk_status set_train_on_divergence(sgk_config *c, const setting *s)
{
    int index;

    SGK_CHECK(parse_keyword(s, divergence_names, COUNT(divergence_names), &index));
    c->train.on_divergence = (sgk_divergence_policy)index;
    return SGK_OK;
}

static sgk_status set_train_steps(sgk_config *c, const setting *s)
{
    return parse_long(s, 1, LONG_MAX, &c->train.steps);
}

static sgk_status set_ensemble_replicas(sgk_config *c, const setting *s)
{
    return parse_long(s, 1, LONG_MAX, &c->ensemble.replicas);
}

static sgk_status set_ensemble_seed(sgk_config *c, const setting *s)
{
    return parse_u64(s, &c->ensemble.seed);
}

/* A comma list of init, batch, noise, each at most once; "none" is the empty set. */
static sgk_status set_ensemble_vary(sgk_config *c, const setting *s)
{
    static const char *const names[] = { "init", "batch", "noise" };
    static const unsigned bits[] = { SGK_VARY_INIT, SGK_VARY_BATCH, SGK_VARY_NOISE };
    unsigned vary = 0;
    const char *cursor = s->value;

    if (strcasecmp(s->value, "none") == 0) {
        c->ensemble.vary = 0;
        return SGK_OK;
    }
    for (;;) {
        const char *comma = strchr(cursor, ',');
        size_t length = comma ? (size_t)(comma - cursor) : strlen(cursor);
        int match = -1;

        while (length > 0 && isspace((unsigned char)cursor[0])) {
            cursor++;
            length--;
        }
        while (length > 0 && isspace((unsigned char)cursor[length - 1])) length--;
        for (int i = 0; i < COUNT(names); i++)
            if (length == strlen(names[i]) && strncasecmp(cursor, names[i], length) == 0) match = i;
        if (match < 0 || (vary & bits[match]))
            return invalid_value(s, "none, or a comma-separated list of distinct entries from "
                                    "init, batch, noise");
        vary |= bits[match];
        if (!comma) break;
        cursor = comma + 1;
    }
    c->ensemble.vary = vary;
    return SGK_OK;
}

static sgk_status set_kernel_checkpoints(sgk_config *c, const setting *s)
{
    return parse_int(s, 2, INT_MAX, &c->kernel.checkpoints);
}

static sgk_status set_kernel_path_nodes(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, SGK_MAX_PATH_NODES, &c->kernel.path_nodes);
}

/* "auto" is stored as -1. */
static sgk_status set_kernel_drift(sgk_config *c, const setting *s)
{
    if (strcasecmp(s->value, "auto") == 0) {
        c->kernel.drift = -1;
        return SGK_OK;
    }
    if (parse_bool(s, &c->kernel.drift) != SGK_OK)
        return invalid_value(s, "yes, no or auto");
    return SGK_OK;
}

static sgk_status set_kernel_block_size(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, INT_MAX, &c->kernel.block_size);
}

static sgk_status set_kernel_probe(sgk_config *c, const setting *s)
{
    return parse_long(s, 0, LONG_MAX, &c->kernel.probe);
}

/* "all" is stored as 0. */
static sgk_status set_denoise_levels(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, 1024, &c->denoise.levels);
}

static sgk_status set_denoise_sigma_min(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->denoise.sigma_min);
}

static sgk_status set_denoise_sigma_max(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->denoise.sigma_max);
}

static sgk_status set_denoise_locality_bins(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, 100000, &c->denoise.locality_bins);
}

static sgk_status set_gan_latent_dim(sgk_config *c, const setting *s)
{
    return parse_int(s, 1, 65536, &c->gan.latent_dim);
}

static sgk_status set_gan_latent_points(sgk_config *c, const setting *s)
{
    return parse_long(s, 1, INT_MAX, &c->gan.latent_points);
}

static sgk_status set_gan_disc_widths(sgk_config *c, const setting *s)
{
    static const int_list_rules rules = { 1, INT_MAX, SGK_MAX_HIDDEN, false, "layer widths" };

    return parse_int_list(s, s->value, &rules, c->gan.disc_widths, &c->gan.disc_n_hidden);
}

static sgk_status set_gan_disc_lr(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->gan.disc_lr);
}

static sgk_status set_gan_grid(sgk_config *c, const setting *s)
{
    /* The field takes a discriminator pass over grid^2 points on every rank at once. */
    return parse_int(s, 0, 512, &c->gan.grid);
}

static sgk_status set_spectrum_eigenpairs(sgk_config *c, const setting *s)
{
    long long value;

    if (strcasecmp(s->value, "all") == 0) {
        c->spectrum.eigenpairs = 0;
        return SGK_OK;
    }
    if (!convert_llong(s->value, &value) || value < 1 || value > LONG_MAX)
        return invalid_value(s, "all, or an integer from 1 to %ld", LONG_MAX);
    c->spectrum.eigenpairs = (long)value;
    return SGK_OK;
}

static sgk_status set_spectrum_tolerance(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, 1.0, true }, &c->spectrum.tolerance);
}

static sgk_status set_spectrum_eigenvectors(sgk_config *c, const setting *s)
{
    return parse_bool(s, &c->spectrum.eigenvectors);
}

static sgk_status set_output_file(sgk_config *c, const setting *s)
{
    return parse_path(s, false, c->output.file);
}

static sgk_status set_output_checkpoint_every(sgk_config *c, const setting *s)
{
    return parse_real(s, (real_interval){ 0.0, false, INFINITY, true }, &c->output.checkpoint_every);
}

static sgk_status set_output_overwrite(sgk_config *c, const setting *s)
{
    return parse_bool(s, &c->output.overwrite);
}

static sgk_status set_output_weights_file(sgk_config *c, const setting *s)
{
    return parse_path(s, true, c->output.weights_file);
}

static sgk_status set_output_retrieval(sgk_config *c, const setting *s)
{
    return parse_int(s, 0, INT_MAX, &c->output.retrieval);
}

static sgk_status set_output_compression(sgk_config *c, const setting *s)
{
    return parse_int(s, 0, 9, &c->output.compression);
}

/* ------------------------------------------------------------------------- */
/* Key table, in the order of the INI layout that sgk_config_to_ini writes. */

typedef struct {
    const char *section;
    const char *key;
    sgk_status (*set)(sgk_config *config, const setting *s);
} key_entry;

static const char *const section_names[] = { "data",    "model",   "train",    "ensemble",
                                              "kernel",  "denoise", "gan",      "spectrum",
                                              "output" };

static const key_entry key_table[] = {
    { "data", "source", set_data_source },
    { "data", "path", set_data_path },
    { "data", "classes", set_data_classes },
    { "data", "n_train", set_data_n_train },
    { "data", "n_test", set_data_n_test },
    { "data", "ood", set_data_ood },
    { "data", "n_ood", set_data_n_ood },
    { "data", "seed", set_data_seed },
    { "data", "teacher_inputs", set_data_teacher_inputs },
    { "data", "teacher_width", set_data_teacher_width },
    { "data", "teacher_noise", set_data_teacher_noise },
    { "data", "synthetic_noise", set_data_synthetic_noise },
    { "data", "mixture_components", set_data_mixture_components },
    { "data", "mixture_radius", set_data_mixture_radius },
    { "model", "widths", set_model_widths },
    { "model", "activation", set_model_activation },
    { "model", "parametrization", set_model_parametrization },
    { "model", "init_file", set_model_init_file },
    { "train", "task", set_train_task },
    { "train", "loss", set_train_loss },
    { "train", "optimizer", set_train_optimizer },
    { "train", "lr", set_train_lr },
    { "train", "momentum", set_train_momentum },
    { "train", "beta2", set_train_beta2 },
    { "train", "epsilon", set_train_epsilon },
    { "train", "temperature", set_train_temperature },
    { "train", "batch_size", set_train_batch_size },
    { "train", "steps", set_train_steps },
    { "train", "on_divergence", set_train_on_divergence },
    { "ensemble", "replicas", set_ensemble_replicas },
    { "ensemble", "seed", set_ensemble_seed },
    { "ensemble", "vary", set_ensemble_vary },
    { "kernel", "checkpoints", set_kernel_checkpoints },
    { "kernel", "path_nodes", set_kernel_path_nodes },
    { "kernel", "drift", set_kernel_drift },
    { "kernel", "block_size", set_kernel_block_size },
    { "kernel", "probe", set_kernel_probe },
    { "denoise", "levels", set_denoise_levels },
    { "denoise", "sigma_min", set_denoise_sigma_min },
    { "denoise", "sigma_max", set_denoise_sigma_max },
    { "denoise", "locality_bins", set_denoise_locality_bins },
    { "gan", "latent_dim", set_gan_latent_dim },
    { "gan", "latent_points", set_gan_latent_points },
    { "gan", "disc_widths", set_gan_disc_widths },
    { "gan", "disc_lr", set_gan_disc_lr },
    { "gan", "grid", set_gan_grid },
    { "spectrum", "eigenpairs", set_spectrum_eigenpairs },
    { "spectrum", "tolerance", set_spectrum_tolerance },
    { "spectrum", "eigenvectors", set_spectrum_eigenvectors },
    { "output", "file", set_output_file },
    { "output", "retrieval", set_output_retrieval },
    { "output", "checkpoint_every", set_output_checkpoint_every },
    { "output", "overwrite", set_output_overwrite },
    { "output", "weights_file", set_output_weights_file },
    { "output", "compression", set_output_compression },
};

#define N_KEYS COUNT(key_table)

static bool is_section(const char *name)
{
    for (int i = 0; i < COUNT(section_names); i++)
        if (strcmp(name, section_names[i]) == 0) return true;
    return false;
}

static void list_sections(char *text, size_t size)
{
    text[0] = '\0';
    for (int i = 0; i < COUNT(section_names); i++) {
        strncat(text, i ? ", " : "", size - strlen(text) - 1);
        strncat(text, section_names[i], size - strlen(text) - 1);
    }
}

static sgk_status unknown_section(const char *origin, const char *section)
{
    char sections[128];
    char short_name[128];

    list_sections(sections, sizeof sections);
    return sgk_error(SGK_ERR_USAGE, "%s: unknown section [%s]; accepted sections: %s", origin,
                     shorten(section, short_name, sizeof short_name), sections);
}

/* Find section.key in key_table, or record an error naming the keys the section has. */
static sgk_status find_key(const char *section, const char *key, const char *origin, int *index)
{
    char keys[512] = "";
    char short_key[128];

    if (!is_section(section)) return unknown_section(origin, section);
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(key_table[i].section, section) != 0) continue;
        if (strcmp(key_table[i].key, key) == 0) {
            *index = i;
            return SGK_OK;
        }
        strncat(keys, keys[0] ? ", " : "", sizeof keys - strlen(keys) - 1);
        strncat(keys, key_table[i].key, sizeof keys - strlen(keys) - 1);
    }
    return sgk_error(SGK_ERR_USAGE, "%s: unknown key %s.%s; keys of [%s]: %s", origin, section,
                     shorten(key, short_key, sizeof short_key), section, keys);
}

/* ------------------------------------------------------------------------- */

void sgk_config_defaults(sgk_config *config)
{
    memset(config, 0, sizeof *config);

    config->data.source = SGK_SOURCE_FASHION_MNIST;
    strcpy(config->data.path, "/usr/share/datasets/fashion-mnist");
    config->data.classes[0] = 0;
    config->data.classes[1] = 1;
    config->data.n_classes = 2;
    config->data.n_train = 500;
    config->data.n_test = 250;
    config->data.ood = SGK_OOD_NONE;
    config->data.n_ood = 0;
    config->data.seed = 1;
    config->data.teacher_inputs = 16;
    config->data.teacher_width = 64;
    config->data.teacher_noise = 0.1;
    config->data.synthetic_noise = 0.1;
    config->data.mixture_components = 8;
    config->data.mixture_radius = 2.0;

    config->model.widths[0] = 128;
    config->model.widths[1] = 128;
    config->model.n_hidden = 2;
    config->model.activation = SGK_ACT_RELU;
    config->model.parametrization = SGK_PARAM_STANDARD;

    config->train.task = SGK_TASK_REGRESSION;
    config->train.loss = SGK_LOSS_MSE;
    config->train.optimizer = SGK_OPT_SGD;
    config->train.lr = 0.01;
    config->train.momentum = 0.9;
    config->train.beta2 = 0.999;
    config->train.epsilon = 1e-8;
    config->train.temperature = 0.0;
    config->train.batch_size = 32;
    config->train.steps = 500;

    config->ensemble.replicas = 8;
    config->ensemble.seed = 2026;
    config->ensemble.vary = SGK_VARY_INIT | SGK_VARY_BATCH;

    config->kernel.checkpoints = 11;
    config->kernel.path_nodes = 1;
    config->kernel.drift = -1;
    config->denoise.levels = 8;
    config->denoise.sigma_min = 0.02;
    config->denoise.sigma_max = 2.0;
    config->denoise.locality_bins = 24;
    config->gan.latent_dim = 2;
    config->gan.latent_points = 256;
    config->gan.disc_widths[0] = 64;
    config->gan.disc_widths[1] = 64;
    config->gan.disc_n_hidden = 2;
    config->gan.disc_lr = 0.01;
    config->gan.grid = 32;
    config->kernel.block_size = 64;
    config->kernel.probe = 256;

    config->spectrum.eigenpairs = 0;
    config->spectrum.tolerance = 1e-10;
    config->spectrum.eigenvectors = 0;

    strcpy(config->output.file, "sgk-out.nc");
    config->output.retrieval = 10;
    config->output.checkpoint_every = 0.0;
    config->output.overwrite = 0;
    config->output.weights_file[0] = '\0';
    config->output.compression = 0;
    config->train.on_divergence = SGK_DIVERGENCE_STOP;
}

sgk_status sgk_config_set(sgk_config *config, const char *section, const char *key,
                          const char *value, const char *origin)
{
    int index;

    if (!origin) origin = "configuration";
    if (!section || !key || !value)
        return sgk_error(SGK_ERR_USAGE, "%s: a configuration setting needs a section, a key and "
                         "a value", origin);
    SGK_CHECK(find_key(section, key, origin, &index));
    setting s = { origin, key_table[index].section, key_table[index].key, value };
    return key_table[index].set(config, &s);
}

/* ------------------------------------------------------------------------- */
/* INI files. The reader hands inih one line at a time, so this file, not inih, decides
 * what a line is:
 *  - inih 55 (Debian bookworm) reads into a 200-byte buffer with fgets semantics, so a
 *    longer line arrives in pieces: the value is cut and the rest parsed as a new line,
 *    with no error (checked with that build). The reader rejects such lines instead.
 *  - Whether inih strips inline comments is a build option, so the reader strips them:
 *    ';' at the start of a line or after whitespace starts a comment, as does '#' at
 *    the start of a line. Comment text therefore never counts towards the line limit.
 *  - inih calls the handler only for key = value lines, so the reader checks section
 *    headers, or an unknown section without keys would pass unnoticed. */

typedef struct {
    FILE *file;
    const char *path;
    sgk_config *config;    /* working copy, copied to the caller's on success */
    char *line;            /* getline buffer */
    size_t line_capacity;
    int line_number;       /* lines handed to inih so far */
    bool line_indented;    /* the current line starts with whitespace */
    int first_line[N_KEYS]; /* line that set each key, 0 when not yet set */
    int previous_key;      /* key_table index of the last key set, -1 before any */
    int error_line;        /* line of the first error recorded, 0 when none */
    sgk_status status;
} ini_reader_state;

static sgk_status reader_error(ini_reader_state *state, sgk_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static sgk_status reader_error(ini_reader_state *state, sgk_status status, const char *format, ...)
{
    char message[1536];
    va_list args;

    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    state->status = sgk_error(status, "%s:%d: %s", state->path, state->line_number, message);
    state->error_line = state->line_number;
    return state->status;
}

/* Cut a comment off `text` and strip trailing whitespace, line break included. */
static void strip_comment(char *text)
{
    char *first = text;
    size_t length;

    while (isspace((unsigned char)*first)) first++;
    if (*first == ';' || *first == '#') {
        text[0] = '\0';
        return;
    }
    for (char *p = first; *p; p++) {
        if (*p == ';' && p > text && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    length = strlen(text);
    while (length > 0 && isspace((unsigned char)text[length - 1])) text[--length] = '\0';
}

/* Reject "[name]" headers of unknown sections; a header without ']' is left to
 * inih, which reports it as a syntax error. */
static bool check_section_header(ini_reader_state *state, const char *text)
{
    char sections[128];
    char short_name[128];
    const char *close;

    while (isspace((unsigned char)*text)) text++;
    if (*text != '[' || !(close = strchr(text, ']'))) return true;

    size_t length = (size_t)(close - text - 1);
    char *name = strndup(text + 1, length);
    if (!name) {
        reader_error(state, SGK_ERR_IO, "out of memory reading a section header");
        return false;
    }
    if (!is_section(name)) {
        list_sections(sections, sizeof sections);
        reader_error(state, SGK_ERR_USAGE, "unknown section [%s]; accepted sections: %s",
                     shorten(name, short_name, sizeof short_name), sections);
    }
    free(name);
    return state->status == SGK_OK;
}

/* ini_reader: copy the next line, comment removed, into `buffer` of `size` bytes.
 * Returns NULL at the end of the file and after the first error. */
static char *read_ini_line(char *buffer, int size, void *stream)
{
    ini_reader_state *state = stream;
    ssize_t length;
    char *text;

    if (state->status != SGK_OK) return NULL;
    errno = 0;
    length = getline(&state->line, &state->line_capacity, state->file);
    if (length < 0) {
        if (ferror(state->file))
            reader_error(state, errno == ENOMEM ? SGK_ERR_IO : SGK_ERR_USAGE,
                         "cannot read the configuration file: %s", strerror(errno));
        return NULL;
    }
    state->line_number++;
    text = state->line;
    if (strlen(text) != (size_t)length) {
        reader_error(state, SGK_ERR_USAGE, "line contains a NUL byte; a configuration file "
                     "must be text");
        return NULL;
    }
    if (state->line_number == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3; /* UTF-8 BOM */
    strip_comment(text);
    state->line_indented = isspace((unsigned char)text[0]);

    /* inih needs room for the line, a '\n' and the terminating NUL. */
    size_t fits = size > 2 ? (size_t)size - 2 : 0;
    if (strlen(text) > fits) {
        reader_error(state, SGK_ERR_USAGE, "line has %zu characters without its comment, but "
                     "the INI reader (inih) accepts at most %zu; shorten the line, or give the "
                     "value on the command line with --set section.key=value",
                     strlen(text), fits);
        return NULL;
    }
    if (!check_section_header(state, text)) return NULL;
    snprintf(buffer, (size_t)size, "%s\n", text);
    return buffer;
}

/* ini_handler: apply one key = value pair. Returns 1 on success, 0 after an error. */
static int handle_ini_pair(void *user, const char *section, const char *name, const char *value)
{
    ini_reader_state *state = user;
    char origin[SGK_PATH_LEN + 32];
    char sections[128];
    int index;

    if (state->status != SGK_OK) return 0;
    if (section[0] == '\0') {
        list_sections(sections, sizeof sections);
        reader_error(state, SGK_ERR_USAGE, "key \"%s\" appears before any [section] header; "
                     "put it under one of [%s]", name, sections);
        return 0;
    }

    snprintf(origin, sizeof origin, "%s:%d", state->path, state->line_number);
    state->status = find_key(section, name, origin, &index);
    if (state->status != SGK_OK) {
        state->error_line = state->line_number;
        return 0;
    }

    /* With multi-line values enabled (the inih default), an indented line after a key is
     * passed on as a second value of that key. */
    if (state->first_line[index] != 0 && state->line_indented && state->previous_key == index) {
        reader_error(state, SGK_ERR_USAGE, "indented line is read as a continuation of %s.%s, "
                     "and multi-line values are not accepted; remove the leading whitespace",
                     section, name);
        return 0;
    }
    if (state->first_line[index] != 0) {
        reader_error(state, SGK_ERR_USAGE, "duplicate key %s.%s, first set on line %d; each key "
                     "may appear once per file", section, name, state->first_line[index]);
        return 0;
    }

    state->status = sgk_config_set(state->config, section, name, value, origin);
    if (state->status != SGK_OK) {
        state->error_line = state->line_number;
        return 0;
    }
    state->first_line[index] = state->line_number;
    state->previous_key = index;
    return 1;
}

/* Record a syntax error that inih found on line `line_number`, quoting that line. */
static sgk_status syntax_error(ini_reader_state *state, int line_number)
{
    char buffer[128];
    const char *quoted = "";

    rewind(state->file);
    for (int i = 0; i < line_number; i++)
        if (getline(&state->line, &state->line_capacity, state->file) < 0) break;
    if (state->line) {
        strip_comment(state->line);
        quoted = shorten(state->line, buffer, sizeof buffer);
    }
    return sgk_error(SGK_ERR_USAGE, "%s:%d: syntax error in \"%s\": expected a [section] header, "
                     "a key = value line, a comment or a blank line", state->path, line_number,
                     quoted);
}

sgk_status sgk_config_load_file(sgk_config *config, const char *path)
{
    ini_reader_state state = { 0 };
    sgk_config working = *config;
    sgk_status status;
    int result;

    if (!path) return sgk_error(SGK_ERR_USAGE, "no configuration file path given");
    state.file = fopen(path, "r");
    if (!state.file)
        return sgk_error(SGK_ERR_USAGE, "cannot open configuration file \"%s\": %s", path,
                         strerror(errno));
    state.path = path;
    state.config = &working;
    state.previous_key = -1;

    result = ini_parse_stream(read_ini_line, &state, handle_ini_pair, &state);

    /* inih returns the first line it rejected, and the state records the first line
     * that this file rejected. The earlier of the two is reported. */
    if (result == -2)
        status = sgk_error(SGK_ERR_IO, "%s: out of memory while parsing", path);
    else if (result > 0 && (state.error_line == 0 || result < state.error_line))
        status = syntax_error(&state, result);
    else
        status = state.status;

    free(state.line);
    fclose(state.file);
    if (status == SGK_OK) *config = working;
    return status;
}

sgk_status sgk_config_override(sgk_config *config, const char *assignment)
{
    char origin[160];
    char short_text[128];
    char *copy;
    char *equals, *dot, *section, *key, *value;
    sgk_status status;

    if (!assignment) return sgk_error(SGK_ERR_USAGE, "--set needs an argument section.key=value");
    snprintf(origin, sizeof origin, "--set %s", shorten(assignment, short_text, sizeof short_text));
    equals = strchr(assignment, '=');
    if (!equals)
        return sgk_error(SGK_ERR_USAGE, "%s: missing '='; expected --set section.key=value, "
                         "e.g. --set data.n_train=500", origin);
    dot = memchr(assignment, '.', (size_t)(equals - assignment));
    if (!dot)
        return sgk_error(SGK_ERR_USAGE, "%s: missing '.' between section and key; expected "
                         "--set section.key=value, e.g. --set data.n_train=500", origin);

    copy = strdup(assignment);
    if (!copy) return sgk_error(SGK_ERR_IO, "%s: out of memory", origin);
    copy[equals - assignment] = '\0';
    copy[dot - assignment] = '\0';
    section = copy;
    key = copy + (dot - assignment) + 1;
    value = copy + (equals - assignment) + 1;

    /* Trim as inih trims a file's names and values. */
    char *ends[] = { section, key, value };
    for (int i = 0; i < 3; i++) {
        char *text = ends[i];
        size_t length = strlen(text);
        while (length > 0 && isspace((unsigned char)text[length - 1])) text[--length] = '\0';
    }
    while (isspace((unsigned char)*section)) section++;
    while (isspace((unsigned char)*key)) key++;
    while (isspace((unsigned char)*value)) value++;

    if (section[0] == '\0' || key[0] == '\0')
        status = sgk_error(SGK_ERR_USAGE, "%s: empty section or key; expected --set "
                           "section.key=value, e.g. --set data.n_train=500", origin);
    else
        status = sgk_config_set(config, section, key, value, origin);
    free(copy);
    return status;
}

/* ------------------------------------------------------------------------- */
/* Cross-key validation. */

static sgk_status check_sizes(const sgk_config *c)
{
    const long int_max = INT_MAX;

    if (c->data.ood == SGK_OOD_NONE && c->data.n_ood > 0)
        return sgk_error(SGK_ERR_USAGE, "data.n_ood = %ld but data.ood = none; set data.ood to "
                         "classes:LIST, noise or shift:SCALE, or set data.n_ood = 0", c->data.n_ood);
    if (c->data.ood != SGK_OOD_NONE && c->data.n_ood == 0)
        return sgk_error(SGK_ERR_USAGE, "data.ood is set but data.n_ood = 0; set data.n_ood to "
                         "the number of out-of-distribution points, or data.ood = none");

    /* ScaLAPACK descriptors hold the matrix order as a C int. */
    if (c->data.n_train > int_max || c->data.n_test > int_max - c->data.n_train ||
        c->data.n_ood > int_max - c->data.n_train - c->data.n_test)
        return sgk_error(SGK_ERR_USAGE, "data.n_train + data.n_test + data.n_ood = %ld + %ld + %ld "
                         "exceeds %d, the largest kernel order ScaLAPACK indexes",
                         c->data.n_train, c->data.n_test, c->data.n_ood, INT_MAX);
    if (c->train.batch_size > c->data.n_train)
        return sgk_error(SGK_ERR_USAGE, "train.batch_size = %ld exceeds data.n_train = %ld; use "
                         "at most %ld, or full", c->train.batch_size, c->data.n_train,
                         c->data.n_train);
    if ((long)c->kernel.checkpoints - 1 > c->train.steps)
        return sgk_error(SGK_ERR_USAGE, "kernel.checkpoints = %d needs at least %ld training "
                         "steps, but train.steps = %ld; lower kernel.checkpoints to at most %ld",
                         c->kernel.checkpoints, (long)c->kernel.checkpoints - 1, c->train.steps,
                         c->train.steps + 1);
    /* A GAN kernel's order is gan.latent_points, which check_task bounds it by. */
    if (c->train.task != SGK_TASK_GAN && c->spectrum.eigenpairs > c->data.n_train)
        return sgk_error(SGK_ERR_USAGE, "spectrum.eigenpairs = %ld exceeds data.n_train = %ld, "
                         "the order of the training kernel; use at most %ld, or all",
                         c->spectrum.eigenpairs, c->data.n_train, c->data.n_train);
    return SGK_OK;
}

static sgk_status check_classes(const sgk_config *c)
{
    bool labelled = c->data.source == SGK_SOURCE_FASHION_MNIST || c->data.source == SGK_SOURCE_IDX;
    int max_label = c->data.source == SGK_SOURCE_FASHION_MNIST ? FASHION_MNIST_CLASSES - 1
                                                               : MAX_CLASS_LABEL;

    if (c->data.source != SGK_SOURCE_TEACHER && c->data.source != SGK_SOURCE_MOONS
        && c->data.source != SGK_SOURCE_GAUSSIAN_MIXTURE && c->data.path[0] == '\0')
        return sgk_error(SGK_ERR_USAGE, "data.path is empty, but data.source = %s reads its "
                         "examples from it; set data.path", source_names[c->data.source]);
    if (c->data.ood == SGK_OOD_FILE && c->data.source != SGK_SOURCE_NETCDF)
        return sgk_error(SGK_ERR_USAGE, "data.ood = file takes the split-2 points of a netcdf "
                         "file, but data.source = %s; use none, noise, classes:LIST or "
                         "shift:SCALE", source_names[c->data.source]);
    if (c->data.ood == SGK_OOD_CLASSES && !labelled)
        return sgk_error(SGK_ERR_USAGE, "data.ood = classes:LIST needs a labelled source, but "
                         "data.source = %s; use fashion-mnist or idx, or data.ood = noise or "
                         "shift:SCALE", source_names[c->data.source]);
    if (!labelled) return SGK_OK;

    if (c->data.n_classes == 1)
        return sgk_error(SGK_ERR_USAGE, "data.classes lists one class (%d); a classification "
                         "needs at least 2, e.g. classes = 0,1", c->data.classes[0]);
    for (int i = 0; i < c->data.n_classes; i++)
        if (c->data.classes[i] > max_label)
            return sgk_error(SGK_ERR_USAGE, "data.classes contains %d, but %s labels are 0 to "
                             "%d", c->data.classes[i], source_names[c->data.source], max_label);
    if (c->data.ood != SGK_OOD_CLASSES) return SGK_OK;

    if (c->data.n_classes == 0)
        return sgk_error(SGK_ERR_USAGE, "data.ood = classes:LIST needs data.classes to list the "
                         "training classes, because data.classes = all leaves no class out");
    for (int i = 0; i < c->data.n_ood_classes; i++) {
        int label = c->data.ood_classes[i];
        if (label > max_label)
            return sgk_error(SGK_ERR_USAGE, "data.ood contains class %d, but %s labels are 0 "
                             "to %d", label, source_names[c->data.source], max_label);
        if (value_listed(c->data.classes, c->data.n_classes, label))
            return sgk_error(SGK_ERR_USAGE, "data.ood class %d is also a training class in "
                             "data.classes; out-of-distribution classes must differ from them",
                             label);
    }
    return SGK_OK;
}


/* The generative tasks fix their own losses and have no per-step drift; the noise levels
 * must form a geometric schedule. */
static sgk_status check_task(const sgk_config *c)
{
    const char *task = task_names[c->train.task];

    if (c->train.task == SGK_TASK_REGRESSION) return SGK_OK;
    if (c->train.loss != SGK_LOSS_MSE)
        return sgk_error(SGK_ERR_USAGE, "train.loss = %s does not apply to train.task = %s, "
                         "whose loss is fixed (doc/generative.md); remove the key or set "
                         "train.loss = mse", loss_names[c->train.loss], task);
    if (c->kernel.drift == 1)
        return sgk_error(SGK_ERR_USAGE, "kernel.drift = yes is not available with train.task "
                         "= %s; set kernel.drift = auto or no", task);
    if (c->train.task == SGK_TASK_DENOISE) {
        if (c->denoise.sigma_min > c->denoise.sigma_max)
            return sgk_error(SGK_ERR_USAGE, "denoise.sigma_min = %g exceeds denoise.sigma_max "
                             "= %g; the smallest noise level must not exceed the largest",
                             c->denoise.sigma_min, c->denoise.sigma_max);
        if (c->denoise.levels > 1 && c->denoise.sigma_min == 0.0)
            return sgk_error(SGK_ERR_USAGE, "denoise.sigma_min = 0 with denoise.levels = %d: a "
                             "geometric schedule needs sigma_min > 0; zero noise is possible "
                             "only with levels = 1 and sigma_max = 0", c->denoise.levels);
        if (c->denoise.levels == 1 && c->denoise.sigma_min != c->denoise.sigma_max)
            return sgk_error(SGK_ERR_USAGE, "denoise.levels = 1 takes one noise level, but "
                             "denoise.sigma_min = %g and denoise.sigma_max = %g differ; set "
                             "them equal", c->denoise.sigma_min, c->denoise.sigma_max);
    }
    if (c->train.task == SGK_TASK_GAN) {
        if (c->train.optimizer == SGK_OPT_SGLD)
            return sgk_error(SGK_ERR_USAGE, "train.optimizer = sgld is not available with "
                             "train.task = gan; use sgd, momentum, adam or rmsprop");
        if (c->data.ood != SGK_OOD_NONE)
            return sgk_error(SGK_ERR_USAGE, "data.ood does not apply to train.task = gan, "
                             "whose evaluation points are latent points; set data.ood = none");
        /* Weight files describe one network on the data's inputs, but a GAN replica
         * contains a generator on latent inputs and a discriminator. */
        if (c->model.init_file[0] != '\0')
            return sgk_error(SGK_ERR_USAGE, "model.init_file is not available with train.task "
                             "= gan; remove the key");
        if (c->output.weights_file[0] != '\0')
            return sgk_error(SGK_ERR_USAGE, "output.weights_file is not available with "
                             "train.task = gan; remove the key");
        /* The kernel's training points are the latent points. */
        if (c->spectrum.eigenpairs > c->gan.latent_points)
            return sgk_error(SGK_ERR_USAGE, "spectrum.eigenpairs = %ld exceeds gan.latent_points "
                             "= %ld, the order of the GAN kernel; use all or at most %ld",
                             c->spectrum.eigenpairs, c->gan.latent_points, c->gan.latent_points);
    }
    return SGK_OK;
}

sgk_status sgk_config_validate(const sgk_config *config)
{
    SGK_CHECK(check_sizes(config));
    SGK_CHECK(check_task(config));
    return check_classes(config);
}

int sgk_config_drift(const sgk_config *config)
{
    if (config->kernel.drift >= 0) return config->kernel.drift;
    return config->train.task == SGK_TASK_REGRESSION;
}

const char *sgk_task_name(sgk_task task)
{
    return (unsigned)task < COUNT(task_names) ? task_names[task] : "unknown";
}

/* ------------------------------------------------------------------------- */
/* INI output. */

/* Write the shortest of %.15g, %.16g, %.17g that strtod reads back to `x` exactly;
 * %.17g always does for IEEE doubles. */
static void format_real(double x, char *text, size_t size)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, size, "%.*g", digits, x);
        if (strtod(text, NULL) == x) return;
    }
}

static void write_int_list(FILE *out, const int *values, int n)
{
    for (int i = 0; i < n; i++) fprintf(out, "%s%d", i ? "," : "", values[i]);
}

static void write_data_section(FILE *out, const sgk_config *c)
{
    char number[32];

    fprintf(out, "[data]\n");
    fprintf(out, "source = %s\n", source_names[c->data.source]);
    fprintf(out, "path = %s\n", c->data.path);
    fprintf(out, "classes = ");
    if (c->data.n_classes == 0) fprintf(out, "all");
    write_int_list(out, c->data.classes, c->data.n_classes);
    fprintf(out, "\nn_train = %ld\n", c->data.n_train);
    fprintf(out, "n_test = %ld\n", c->data.n_test);
    fprintf(out, "ood = ");
    switch (c->data.ood) {
    case SGK_OOD_NONE:
        fprintf(out, "none");
        break;
    case SGK_OOD_NOISE:
        fprintf(out, "noise");
        break;
    case SGK_OOD_CLASSES:
        fprintf(out, "classes:");
        write_int_list(out, c->data.ood_classes, c->data.n_ood_classes);
        break;
    case SGK_OOD_SHIFT:
        format_real(c->data.ood_shift, number, sizeof number);
        fprintf(out, "shift:%s", number);
        break;
    case SGK_OOD_FILE:
        fprintf(out, "file");
        break;
    }
    fprintf(out, "\nn_ood = %ld\n", c->data.n_ood);
    fprintf(out, "seed = %llu\n", (unsigned long long)c->data.seed);
    fprintf(out, "teacher_inputs = %d\n", c->data.teacher_inputs);
    fprintf(out, "teacher_width = %d\n", c->data.teacher_width);
    format_real(c->data.teacher_noise, number, sizeof number);
    fprintf(out, "teacher_noise = %s\n", number);
    format_real(c->data.synthetic_noise, number, sizeof number);
    fprintf(out, "synthetic_noise = %s\n", number);
    fprintf(out, "mixture_components = %d\n", c->data.mixture_components);
    format_real(c->data.mixture_radius, number, sizeof number);
    fprintf(out, "mixture_radius = %s\n", number);
}

static void write_model_and_train(FILE *out, const sgk_config *c)
{
    char number[32];

    fprintf(out, "\n[model]\nwidths =%s", c->model.n_hidden ? " " : "");
    write_int_list(out, c->model.widths, c->model.n_hidden);
    fprintf(out, "\nactivation = %s\n", activation_names[c->model.activation]);
    fprintf(out, "parametrization = %s\n", parametrization_names[c->model.parametrization]);
    fprintf(out, "init_file =%s%s\n", c->model.init_file[0] ? " " : "", c->model.init_file);

    fprintf(out, "\n[train]\n");
    fprintf(out, "task = %s\n", task_names[c->train.task]);
    fprintf(out, "loss = %s\n", loss_names[c->train.loss]);
    fprintf(out, "optimizer = %s\n", optimizer_names[c->train.optimizer]);
    format_real(c->train.lr, number, sizeof number);
    fprintf(out, "lr = %s\n", number);
    format_real(c->train.momentum, number, sizeof number);
    fprintf(out, "momentum = %s\n", number);
    format_real(c->train.beta2, number, sizeof number);
    fprintf(out, "beta2 = %s\n", number);
    format_real(c->train.epsilon, number, sizeof number);
    fprintf(out, "epsilon = %s\n", number);
    format_real(c->train.temperature, number, sizeof number);
    fprintf(out, "temperature = %s\n", number);
    if (c->train.batch_size == 0)
        fprintf(out, "batch_size = full\n");
    else
        fprintf(out, "batch_size = %ld\n", c->train.batch_size);
    fprintf(out, "steps = %ld\n", c->train.steps);
    fprintf(out, "on_divergence = %s\n", divergence_names[c->train.on_divergence]);
}

static void write_remaining_sections(FILE *out, const sgk_config *c)
{
    static const char *const vary_names[] = { "init", "batch", "noise" };
    static const unsigned vary_bits[] = { SGK_VARY_INIT, SGK_VARY_BATCH, SGK_VARY_NOISE };
    char number[32];
    int n_varied = 0;

    fprintf(out, "\n[ensemble]\n");
    fprintf(out, "replicas = %ld\n", c->ensemble.replicas);
    fprintf(out, "seed = %llu\n", (unsigned long long)c->ensemble.seed);
    fprintf(out, "vary = ");
    for (int i = 0; i < COUNT(vary_bits); i++)
        if (c->ensemble.vary & vary_bits[i]) fprintf(out, "%s%s", n_varied++ ? "," : "", vary_names[i]);
    if (n_varied == 0) fprintf(out, "none");

    fprintf(out, "\n\n[kernel]\n");
    fprintf(out, "checkpoints = %d\n", c->kernel.checkpoints);
    fprintf(out, "path_nodes = %d\n", c->kernel.path_nodes);
    const char *drift = "auto";
    if (c->kernel.drift >= 0) drift = c->kernel.drift ? "yes" : "no";
    fprintf(out, "drift = %s\n", drift);
    fprintf(out, "block_size = %d\n", c->kernel.block_size);
    fprintf(out, "probe = %ld\n", c->kernel.probe);

    fprintf(out, "\n[denoise]\n");
    fprintf(out, "levels = %d\n", c->denoise.levels);
    format_real(c->denoise.sigma_min, number, sizeof number);
    fprintf(out, "sigma_min = %s\n", number);
    format_real(c->denoise.sigma_max, number, sizeof number);
    fprintf(out, "sigma_max = %s\n", number);
    fprintf(out, "locality_bins = %d\n", c->denoise.locality_bins);

    fprintf(out, "\n[gan]\n");
    fprintf(out, "latent_dim = %d\n", c->gan.latent_dim);
    fprintf(out, "latent_points = %ld\n", c->gan.latent_points);
    fprintf(out, "disc_widths =%s", c->gan.disc_n_hidden ? " " : "");
    write_int_list(out, c->gan.disc_widths, c->gan.disc_n_hidden);
    format_real(c->gan.disc_lr, number, sizeof number);
    fprintf(out, "\ndisc_lr = %s\n", number);
    fprintf(out, "grid = %d\n", c->gan.grid);

    fprintf(out, "\n[spectrum]\n");
    if (c->spectrum.eigenpairs == 0)
        fprintf(out, "eigenpairs = all\n");
    else
        fprintf(out, "eigenpairs = %ld\n", c->spectrum.eigenpairs);
    format_real(c->spectrum.tolerance, number, sizeof number);
    fprintf(out, "tolerance = %s\n", number);
    fprintf(out, "eigenvectors = %s\n", c->spectrum.eigenvectors ? "yes" : "no");

    fprintf(out, "\n[output]\n");
    fprintf(out, "file = %s\n", c->output.file);
    fprintf(out, "retrieval = %d\n", c->output.retrieval);
    format_real(c->output.checkpoint_every, number, sizeof number);
    fprintf(out, "checkpoint_every = %s\n", number);
    fprintf(out, "overwrite = %s\n", c->output.overwrite ? "yes" : "no");
    fprintf(out, "weights_file =%s%s\n", c->output.weights_file[0] ? " " : "",
            c->output.weights_file);
    fprintf(out, "compression = %d\n", c->output.compression);
}

char *sgk_config_to_ini(const sgk_config *config)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    if (!out) return NULL;
    write_data_section(out, config);
    write_model_and_train(out, config);
    write_remaining_sections(out, config);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}
