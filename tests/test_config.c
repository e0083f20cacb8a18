/* Tests of the configuration module: defaults, INI round trip, overrides, and one
 * case per class of malformed input. Serial: the module makes no MPI calls.
 * INI inputs are written to files in a folder made with mkdtemp. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "sgk/config.h"

#define MAX_FILES 256

static char folder[256];
static char *written_files[MAX_FILES];
static int n_written_files;
static char last_path[512]; /* path of the file the last load_text wrote */

/* Write `text` to a new file in the test folder and return its path. */
static const char *write_file(const char *text)
{
    char path[512];
    FILE *file;

    snprintf(path, sizeof path, "%s/case%03d.ini", folder, n_written_files);
    file = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(text, file);
    fclose(file);
    CU_ASSERT_FATAL(n_written_files < MAX_FILES);
    written_files[n_written_files++] = strdup(path);
    snprintf(last_path, sizeof last_path, "%s", path);
    return written_files[n_written_files - 1];
}

/* Load `text` as an INI file on top of the defaults. */
static sgk_status load_text(const char *text, sgk_config *config)
{
    sgk_config_defaults(config);
    sgk_error_clear();
    return sgk_config_load_file(config, write_file(text));
}

static int message_contains(const char *fragment)
{
    if (strstr(sgk_error_message(), fragment)) return 1;
    fprintf(stderr, "\n  message \"%s\"\n  lacks \"%s\"\n", sgk_error_message(), fragment);
    return 0;
}

/* Expect a usage error whose message names `fragment`. */
#define CHECK_USAGE(status, fragment)                                          \
    do {                                                                       \
        CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);                                \
        CU_ASSERT(message_contains(fragment));                                 \
    } while (0)

/* "FILE:LINE" of the last written file. */
static const char *file_line(int line)
{
    static char text[600];

    snprintf(text, sizeof text, "%s:%d:", last_path, line);
    return text;
}

/* ------------------------------------------------------------------------- */

static void test_defaults_validate(void)
{
    sgk_config config;

    sgk_config_defaults(&config);
    CU_ASSERT_EQUAL(sgk_config_validate(&config), SGK_OK);
    CU_ASSERT_EQUAL(config.data.source, SGK_SOURCE_FASHION_MNIST);
    CU_ASSERT_STRING_EQUAL(config.data.path, "/usr/share/datasets/fashion-mnist");
    CU_ASSERT_EQUAL(config.data.n_classes, 2);
    CU_ASSERT_EQUAL(config.data.n_train, 500);
    CU_ASSERT_EQUAL(config.model.n_hidden, 2);
    CU_ASSERT_EQUAL(config.train.batch_size, 32);
    CU_ASSERT_EQUAL(config.train.optimizer, SGK_OPT_SGD);
    CU_ASSERT_EQUAL(config.train.momentum, 0.9);
    CU_ASSERT_EQUAL(config.train.beta2, 0.999);
    CU_ASSERT_EQUAL(config.train.epsilon, 1e-8);
    CU_ASSERT_EQUAL(config.train.temperature, 0.0);
    CU_ASSERT_EQUAL(config.ensemble.replicas, 8);
    CU_ASSERT_EQUAL(config.ensemble.vary, SGK_VARY_INIT | SGK_VARY_BATCH);
    CU_ASSERT_EQUAL(config.spectrum.eigenpairs, 0);
    CU_ASSERT_STRING_EQUAL(config.output.file, "sgk-out.nc");
    CU_ASSERT_EQUAL(config.output.compression, 0);
}

/* Field-by-field comparison; doubles compare exactly, because sgk_config_to_ini writes
 * digits that strtod reads back to the same double. */
static void check_configs_equal(const sgk_config *a, const sgk_config *b)
{
    CU_ASSERT_EQUAL(a->data.source, b->data.source);
    CU_ASSERT_STRING_EQUAL(a->data.path, b->data.path);
    CU_ASSERT_EQUAL_FATAL(a->data.n_classes, b->data.n_classes);
    for (int i = 0; i < a->data.n_classes; i++) CU_ASSERT_EQUAL(a->data.classes[i], b->data.classes[i]);
    CU_ASSERT_EQUAL(a->data.n_train, b->data.n_train);
    CU_ASSERT_EQUAL(a->data.n_test, b->data.n_test);
    CU_ASSERT_EQUAL(a->data.ood, b->data.ood);
    if (a->data.ood == SGK_OOD_CLASSES) {
        CU_ASSERT_EQUAL_FATAL(a->data.n_ood_classes, b->data.n_ood_classes);
        for (int i = 0; i < a->data.n_ood_classes; i++)
            CU_ASSERT_EQUAL(a->data.ood_classes[i], b->data.ood_classes[i]);
    }
    if (a->data.ood == SGK_OOD_SHIFT) CU_ASSERT_EQUAL(a->data.ood_shift, b->data.ood_shift);
    CU_ASSERT_EQUAL(a->data.n_ood, b->data.n_ood);
    CU_ASSERT_EQUAL(a->data.seed, b->data.seed);
    CU_ASSERT_EQUAL(a->data.teacher_inputs, b->data.teacher_inputs);
    CU_ASSERT_EQUAL(a->data.teacher_width, b->data.teacher_width);
    CU_ASSERT_EQUAL(a->data.teacher_noise, b->data.teacher_noise);

    CU_ASSERT_EQUAL_FATAL(a->model.n_hidden, b->model.n_hidden);
    for (int i = 0; i < a->model.n_hidden; i++) CU_ASSERT_EQUAL(a->model.widths[i], b->model.widths[i]);
    CU_ASSERT_EQUAL(a->model.activation, b->model.activation);
    CU_ASSERT_EQUAL(a->model.parametrization, b->model.parametrization);
    CU_ASSERT_STRING_EQUAL(a->model.init_file, b->model.init_file);

    CU_ASSERT_EQUAL(a->train.loss, b->train.loss);
    CU_ASSERT_EQUAL(a->train.optimizer, b->train.optimizer);
    CU_ASSERT_EQUAL(a->train.lr, b->train.lr);
    CU_ASSERT_EQUAL(a->train.momentum, b->train.momentum);
    CU_ASSERT_EQUAL(a->train.beta2, b->train.beta2);
    CU_ASSERT_EQUAL(a->train.epsilon, b->train.epsilon);
    CU_ASSERT_EQUAL(a->train.temperature, b->train.temperature);
    CU_ASSERT_EQUAL(a->train.batch_size, b->train.batch_size);
    CU_ASSERT_EQUAL(a->train.steps, b->train.steps);

    CU_ASSERT_EQUAL(a->ensemble.replicas, b->ensemble.replicas);
    CU_ASSERT_EQUAL(a->ensemble.seed, b->ensemble.seed);
    CU_ASSERT_EQUAL(a->ensemble.vary, b->ensemble.vary);

    CU_ASSERT_EQUAL(a->kernel.checkpoints, b->kernel.checkpoints);
    CU_ASSERT_EQUAL(a->kernel.path_nodes, b->kernel.path_nodes);
    CU_ASSERT_EQUAL(a->kernel.drift, b->kernel.drift);
    CU_ASSERT_EQUAL(a->kernel.block_size, b->kernel.block_size);
    CU_ASSERT_EQUAL(a->kernel.probe, b->kernel.probe);

    CU_ASSERT_EQUAL(a->spectrum.eigenpairs, b->spectrum.eigenpairs);
    CU_ASSERT_EQUAL(a->spectrum.tolerance, b->spectrum.tolerance);
    CU_ASSERT_EQUAL(a->spectrum.eigenvectors, b->spectrum.eigenvectors);

    CU_ASSERT_STRING_EQUAL(a->output.file, b->output.file);
    CU_ASSERT_EQUAL(a->output.retrieval, b->output.retrieval);
    CU_ASSERT_EQUAL(a->output.checkpoint_every, b->output.checkpoint_every);
    CU_ASSERT_EQUAL(a->output.overwrite, b->output.overwrite);
    CU_ASSERT_STRING_EQUAL(a->output.weights_file, b->output.weights_file);
    CU_ASSERT_EQUAL(a->output.compression, b->output.compression);
    CU_ASSERT_EQUAL(a->train.on_divergence, b->train.on_divergence);
}

/* Apply `overrides`, write the result with sgk_config_to_ini, read it back on top of
 * the defaults and compare. */
static void check_round_trip(const char *const *overrides, int n_overrides)
{
    sgk_config original, reread;
    char *text;

    sgk_config_defaults(&original);
    for (int i = 0; i < n_overrides; i++) {
        sgk_status status = sgk_config_override(&original, overrides[i]);
        CU_ASSERT_EQUAL(status, SGK_OK);
        if (status != SGK_OK) fprintf(stderr, "\n  %s: %s\n", overrides[i], sgk_error_message());
    }
    text = sgk_config_to_ini(&original);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    sgk_config_defaults(&reread);
    CU_ASSERT_EQUAL(sgk_config_load_file(&reread, write_file(text)), SGK_OK);
    check_configs_equal(&original, &reread);
    free(text);
}

static void test_round_trip_every_key_changed(void)
{
    static const char *const overrides[] = {
        "data.source=teacher", "data.path=/data/sets/my set", "data.classes=3, 5,9",
        "data.n_train=1234", "data.n_test=0", "data.ood=shift:0.30000000000000004",
        "data.n_ood=77", "data.seed=18446744073709551615", "data.teacher_inputs=5",
        "data.teacher_width=3", "data.teacher_noise=0.3333333333333333",
        "model.widths=7,6,5", "model.activation=gelu", "model.parametrization=ntk",
        "model.init_file=/weights/w0.nc", "train.loss=logistic", "train.optimizer=adam",
        "train.lr=1e-300", "train.momentum=0", "train.beta2=0.9999999999999999",
        "train.epsilon=2.2250738585072014e-308", "train.temperature=0.1",
        "train.batch_size=full", "train.steps=99",
        "ensemble.replicas=3", "ensemble.seed=0", "ensemble.vary=none",
        "kernel.checkpoints=2", "kernel.path_nodes=4", "kernel.drift=no", "kernel.block_size=1", "kernel.probe=0",
        "spectrum.eigenpairs=17", "spectrum.tolerance=0.1", "spectrum.eigenvectors=yes",
        "output.file=out dir/result.nc", "output.retrieval=0", "output.checkpoint_every=12.5",
        "output.overwrite=yes", "output.weights_file=final weights.nc", "output.compression=9",
        "train.on_divergence=drop",
    };

    check_round_trip(overrides, (int)(sizeof overrides / sizeof overrides[0]));
}

static void test_round_trip_other_variants(void)
{
    static const char *const ood_classes[] = { "data.classes=all", "data.ood=classes:7,9,2",
                                               "model.widths=", "ensemble.vary=noise,init" };
    static const char *const ood_noise[] = { "data.ood=noise", "data.n_ood=5",
                                             "train.batch_size=1", "ensemble.vary=batch" };
    static const char *const ood_negative_shift[] = { "data.ood=shift:-2.5e-7" };

    check_round_trip(NULL, 0);
    check_round_trip(ood_classes, 4);
    check_round_trip(ood_noise, 4);
    check_round_trip(ood_negative_shift, 1);
}

/* Every key appears once, and sections follow the order data, model, train, ensemble,
 * kernel, spectrum, output. */
static void test_to_ini_lists_every_key(void)
{
    static const char *const lines[] = {
        "[data]\n", "\nsource =", "\npath =", "\nclasses =", "\nn_train =", "\nn_test =",
        "\nood =", "\nn_ood =", "\nseed =", "\nteacher_inputs =", "\nteacher_width =",
        "\nteacher_noise =", "[model]\n", "\nwidths =", "\nactivation =",
        "\nparametrization =", "\ninit_file =", "[train]\n", "\nloss =", "\noptimizer =",
        "\nlr =", "\nmomentum =", "\nbeta2 =", "\nepsilon =",
        "\ntemperature =", "\nbatch_size =", "\nsteps =", "\non_divergence =", "[ensemble]\n",
        "\nreplicas =", "\nseed =", "\nvary =", "[kernel]\n", "\ncheckpoints =",
        "\npath_nodes =", "\ndrift =", "\nblock_size =", "\nprobe =", "[spectrum]\n", "\neigenpairs =",
        "\ntolerance =", "\neigenvectors =", "[output]\n", "\nfile =", "\nretrieval =",
        "\ncheckpoint_every =", "\noverwrite =", "\nweights_file =", "\ncompression =",
    };
    sgk_config config;
    char *text;
    const char *cursor;

    sgk_config_defaults(&config);
    text = sgk_config_to_ini(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    cursor = text;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *found = strstr(cursor, lines[i]);
        CU_ASSERT_PTR_NOT_NULL(found);
        if (!found) {
            fprintf(stderr, "\n  \"%s\" missing or out of order\n", lines[i]);
            break;
        }
        cursor = found + 1;
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nbatch_size = 32\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nlr = 0.01\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nbeta2 = 0.999\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nepsilon = 1e-08\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ntemperature = 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\neigenpairs = all\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nvary = init,batch\n"));
    free(text);
}

static void test_overrides_win_over_file(void)
{
    sgk_config config;

    CU_ASSERT_EQUAL_FATAL(load_text("[data]\nn_train = 100\n[train]\nlr = 0.5\n", &config), SGK_OK);
    CU_ASSERT_EQUAL(config.data.n_train, 100);
    CU_ASSERT_EQUAL(config.train.lr, 0.5);
    CU_ASSERT_EQUAL(config.data.n_test, 250); /* untouched keys keep their defaults */

    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.n_train=200"), SGK_OK);
    CU_ASSERT_EQUAL(config.data.n_train, 200);
    CU_ASSERT_EQUAL(config.train.lr, 0.5);

    CU_ASSERT_EQUAL(sgk_config_override(&config, " train . lr = 0.25 "), SGK_OK);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.lr=0.125"), SGK_OK);
    CU_ASSERT_EQUAL(config.train.lr, 0.125);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.ood=classes:7,9"), SGK_OK);
    CU_ASSERT_EQUAL(config.data.ood, SGK_OOD_CLASSES);
    CU_ASSERT_EQUAL(config.data.n_ood_classes, 2);
}

static void test_comments_and_whitespace(void)
{
    sgk_config config;
    char text[2048];
    char comment[601];

    memset(comment, 'c', 600);
    comment[600] = '\0';
    snprintf(text, sizeof text,
             "; leading comment\n"
             "# hash comment\n"
             ";%s\n"
             "[data] ; the data section\n"
             "classes = 3,4 ; shirts and coats\n"
             "n_train=42\t; tab before the comment\n"
             "   \n"
             "[model]\n"
             "widths = 8 ;%s\n",
             comment, comment);
    CU_ASSERT_EQUAL_FATAL(load_text(text, &config), SGK_OK);
    CU_ASSERT_EQUAL(config.data.n_classes, 2);
    CU_ASSERT_EQUAL(config.data.classes[0], 3);
    CU_ASSERT_EQUAL(config.data.classes[1], 4);
    CU_ASSERT_EQUAL(config.data.n_train, 42);
    CU_ASSERT_EQUAL(config.model.n_hidden, 1);
    CU_ASSERT_EQUAL(config.model.widths[0], 8);

    /* ';' without whitespace before it belongs to the value. */
    CHECK_USAGE(load_text("[data]\nsource = idx;comment\n", &config), "idx;comment");
}

static void test_failed_load_keeps_config(void)
{
    sgk_config config;

    CU_ASSERT_EQUAL(load_text("[data]\nn_train = 7\nn_test = x\n", &config), SGK_ERR_USAGE);
    CU_ASSERT_EQUAL(config.data.n_train, 500);
}

/* ------------------------------------------------------------------------- */
/* Malformed files: each case names the line and a fragment the message must contain. */

typedef struct {
    const char *text;
    int line;
    const char *fragment;
} file_case;

static void check_file_cases(const file_case *cases, int n_cases)
{
    sgk_config config;

    for (int i = 0; i < n_cases; i++) {
        sgk_status status = load_text(cases[i].text, &config);
        int named = message_contains(file_line(cases[i].line)) && message_contains(cases[i].fragment);

        CU_ASSERT_EQUAL(status, SGK_ERR_USAGE);
        CU_ASSERT(named);
        if (status != SGK_ERR_USAGE || !named)
            fprintf(stderr, "  in case %d: %s\n", i, cases[i].text);
    }
}

static void test_structure_errors(void)
{
    static const file_case cases[] = {
        { "[data]\nn_train = 5\n[nosuch]\nkey = 1\n", 3, "[nosuch]" },
        { "[data]\nn_train = 5\n[nosuch]\nkey = 1\n", 3, "data, model, train" },
        { "[data]\n[extra]\n", 2, "[extra]" },
        { "[model]\nwidth = 5\n", 2, "model.width" },
        { "[model]\nwidth = 5\n", 2, "widths, activation" },
        { "[data]\nn_train = 5\nn_test = 3\nn_train = 6\n", 4, "data.n_train" },
        { "[data]\nn_train = 5\nn_test = 3\nn_train = 6\n", 4, "line 2" },
        { "n_train = 5\n[data]\n", 1, "n_train" },
        { "n_train = 5\n[data]\n", 1, "before any [section]" },
        { "[data]\nn_train\n", 2, "syntax error" },
        { "[data\nn_train = 5\n", 1, "[data" },
        { "[data]\nn_train = 5\n  n_test = 3\n", 3, "continuation of data.n_train" },
    };

    check_file_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

static void test_integer_errors(void)
{
    static const file_case cases[] = {
        { "[data]\nn_train = 12abc\n", 2, "\"12abc\" for data.n_train" },
        { "[data]\nn_train = 12abc\n", 2, "integer from 1 to" },
        { "[data]\nn_train = 1.5\n", 2, "data.n_train" },
        { "[data]\nn_train = \n", 2, "data.n_train" },
        { "[data]\nn_train = 99999999999999999999\n", 2, "data.n_train" },
        { "[data]\nseed = 18446744073709551616\n", 2, "data.seed" },
        { "[data]\nseed = -1\n", 2, "data.seed" },
        { "[ensemble]\nseed = 0x10\n", 2, "ensemble.seed" },
        { "[data]\nn_train = 0\n", 2, "data.n_train" },
        { "[data]\nn_test = -1\n", 2, "data.n_test" },
        { "[data]\nn_ood = -5\n", 2, "data.n_ood" },
        { "[data]\nteacher_inputs = 0\n", 2, "data.teacher_inputs" },
        { "[data]\nteacher_width = 2147483648\n", 2, "data.teacher_width" },
        { "[train]\nsteps = 0\n", 2, "train.steps" },
        { "[train]\nbatch_size = 0\n", 2, "train.batch_size" },
        { "[train]\nbatch_size = half\n", 2, "full, or an integer" },
        { "[ensemble]\nreplicas = 0\n", 2, "ensemble.replicas" },
        { "[kernel]\ncheckpoints = 1\n", 2, "kernel.checkpoints" },
        { "[kernel]\npath_nodes = 0\n", 2, "kernel.path_nodes" },
        { "[kernel]\npath_nodes = 17\n", 2, "kernel.path_nodes" },
        { "[kernel]\ndrift = maybe\n", 2, "kernel.drift" },
        { "[kernel]\nblock_size = 0\n", 2, "kernel.block_size" },
        { "[kernel]\nprobe = -1\n", 2, "kernel.probe" },
        { "[spectrum]\neigenpairs = 0\n", 2, "all, or an integer" },
        { "[output]\nretrieval = -1\n", 2, "output.retrieval" },
        { "[output]\ncheckpoint_every = -1\n", 2, "output.checkpoint_every" },
        { "[output]\noverwrite = perhaps\n", 2, "output.overwrite" },
        { "[output]\ncompression = 10\n", 2, "\"10\" for output.compression" },
        { "[output]\ncompression = 10\n", 2, "integer from 0 to 9" },
        { "[output]\ncompression = -1\n", 2, "output.compression" },
        { "[output]\ncompression = 4.5\n", 2, "output.compression" },
        { "[train]\non_divergence = ignore\n", 2, "train.on_divergence" },
    };

    check_file_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

static void test_real_errors(void)
{
    static const file_case cases[] = {
        { "[train]\nlr = 0.1x\n", 2, "\"0.1x\" for train.lr" },
        { "[train]\nlr = nan\n", 2, "train.lr" },
        { "[train]\nlr = inf\n", 2, "train.lr" },
        { "[train]\nlr = 1e999\n", 2, "train.lr" },
        { "[train]\nlr = 0\n", 2, "a finite number > 0" },
        { "[train]\nlr = -0.1\n", 2, "train.lr" },
        { "[train]\nmomentum = 1\n", 2, "a finite number >= 0 and < 1" },
        { "[train]\nbeta2 = 1\n", 2, "\"1\" for train.beta2: expected a finite number >= 0" },
        { "[train]\nbeta2 = 1\n", 2, "and < 1" },
        { "[train]\nbeta2 = -0.5\n", 2, "train.beta2" },
        { "[train]\nepsilon = 0\n", 2, "\"0\" for train.epsilon: expected a finite number > 0" },
        { "[train]\nepsilon = -1e-8\n", 2, "train.epsilon" },
        { "[train]\nepsilon = inf\n", 2, "train.epsilon" },
        { "[train]\ntemperature = -1e-3\n", 2, "a finite number >= 0" },
        { "[train]\ntemperature = nan\n", 2, "train.temperature" },
        { "[spectrum]\ntolerance = 1\n", 2, "spectrum.tolerance" },
        { "[spectrum]\ntolerance = -1e-3\n", 2, "spectrum.tolerance" },
        { "[data]\nteacher_noise = -0.1\n", 2, "data.teacher_noise" },
        { "[data]\nood = shift:abc\n", 2, "shift:SCALE" },
        { "[data]\nood = shift:inf\n", 2, "data.ood" },
    };

    check_file_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

static void test_keyword_and_list_errors(void)
{
    static const file_case cases[] = {
        { "[model]\nactivation = sigmoid\n", 2, "\"sigmoid\" for model.activation" },
        { "[model]\nactivation = sigmoid\n", 2, "relu, tanh, erf, gelu" },
        { "[data]\nsource = mnist\n", 2, "fashion-mnist, idx, netcdf, csv, teacher" },
        { "[model]\nparametrization = mup\n", 2, "standard, ntk" },
        { "[train]\nloss = hinge\n", 2, "mse, xent, logistic" },
        { "[train]\noptimizer = lbfgs\n", 2, "sgd, momentum, adam, rmsprop, sgld" },
        { "[spectrum]\neigenvectors = maybe\n", 2, "yes, no, true, false, on, off, 1, 0" },
        { "[data]\nclasses = 0,,1\n", 2, "data.classes" },
        { "[data]\nclasses = 0,0\n", 2, "distinct" },
        { "[data]\nclasses = 256\n", 2, "from 0 to 255" },
        { "[data]\nclasses = 1,2,\n", 2, "data.classes" },
        { "[data]\nclasses = -1,2\n", 2, "data.classes" },
        { "[model]\nwidths = a,b\n", 2, "model.widths" },
        { "[model]\nwidths = 128,0\n", 2, "model.widths" },
        { "[model]\nwidths = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", 2, "at most 16" },
        { "[ensemble]\nvary = init,init\n", 2, "ensemble.vary" },
        { "[ensemble]\nvary = weights\n", 2, "init, batch, noise" },
        { "[data]\nood = classes:\n", 2, "data.ood" },
        { "[data]\nood = classes:1,x\n", 2, "data.ood" },
        { "[data]\nood = sometimes\n", 2, "classes:LIST" },
        { "[output]\nfile =\n", 2, "output.file" },
    };

    check_file_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* A line longer than inih's buffer is an error, never a value cut short. The limit is
 * read from the message, then lines of exactly that length and one more are tried. */
static void test_long_lines(void)
{
    sgk_config config;
    char text[1200];
    char value[1024];
    size_t limit;
    const char *at_most;

    memset(value, 'a', 900);
    value[900] = '\0';
    snprintf(text, sizeof text, "[data]\npath = /%s\n", value);
    CHECK_USAGE(load_text(text, &config), file_line(2));
    at_most = strstr(sgk_error_message(), "at most ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at_most);
    limit = strtoul(at_most + strlen("at most "), NULL, 10);
    CU_ASSERT_FATAL(limit > 20 && limit < 800);

    /* "path = /" takes 8 characters of the line. */
    memset(value, 'b', limit - 8);
    value[limit - 8] = '\0';
    snprintf(text, sizeof text, "[data]\npath = /%s\n", value);
    CU_ASSERT_EQUAL(load_text(text, &config), SGK_OK);
    CU_ASSERT_EQUAL(strlen(config.data.path), limit - 7);

    snprintf(text, sizeof text, "[data]\npath = /%sb\n", value);
    CHECK_USAGE(load_text(text, &config), file_line(2));
    CU_ASSERT_STRING_EQUAL(config.data.path, "/usr/share/datasets/fashion-mnist");
}

static void test_missing_file(void)
{
    sgk_config config;
    char path[512];

    snprintf(path, sizeof path, "%s/does-not-exist.ini", folder);
    sgk_config_defaults(&config);
    CHECK_USAGE(sgk_config_load_file(&config, path), path);
    CU_ASSERT(message_contains(strerror(ENOENT)));

    CHECK_USAGE(sgk_config_load_file(&config, folder), folder);
    CU_ASSERT(message_contains(strerror(EISDIR)));
}

static void test_override_errors(void)
{
    sgk_config config;

    sgk_config_defaults(&config);
    CHECK_USAGE(sgk_config_override(&config, "data.n_train"), "--set data.n_train");
    CU_ASSERT(message_contains("missing '='"));
    CHECK_USAGE(sgk_config_override(&config, "n_train=5"), "--set n_train=5");
    CU_ASSERT(message_contains("missing '.'"));
    CHECK_USAGE(sgk_config_override(&config, ".n_train=5"), "empty section or key");
    CHECK_USAGE(sgk_config_override(&config, "data.=5"), "empty section or key");
    CHECK_USAGE(sgk_config_override(&config, "data.n_train=abc"),
                "--set data.n_train=abc: invalid value \"abc\" for data.n_train");
    CHECK_USAGE(sgk_config_override(&config, "nosuch.key=1"), "[nosuch]");
    CHECK_USAGE(sgk_config_override(&config, "train.bogus=1"), "train.bogus");
    CU_ASSERT_EQUAL(config.data.n_train, 500);
}

static void test_long_path_values(void)
{
    sgk_config config;
    char *assignment = malloc(SGK_PATH_LEN + 64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(assignment);
    sgk_config_defaults(&config);

    /* SGK_PATH_LEN - 1 bytes fit. */
    strcpy(assignment, "data.path=");
    memset(assignment + 10, 'p', SGK_PATH_LEN - 1);
    assignment[10 + SGK_PATH_LEN - 1] = '\0';
    CU_ASSERT_EQUAL(sgk_config_override(&config, assignment), SGK_OK);
    CU_ASSERT_EQUAL(strlen(config.data.path), SGK_PATH_LEN - 1);

    /* One more byte does not. */
    strcpy(assignment, "output.file=");
    memset(assignment + 12, 'q', SGK_PATH_LEN);
    assignment[12 + SGK_PATH_LEN] = '\0';
    CHECK_USAGE(sgk_config_override(&config, assignment), "output.file");
    CU_ASSERT(message_contains("at most 4095 bytes"));
    CU_ASSERT_STRING_EQUAL(config.output.file, "sgk-out.nc");

    CHECK_USAGE(sgk_config_set(&config, "model", "init_file", "a ;b", "test"), "model.init_file");
    CHECK_USAGE(sgk_config_set(&config, "data", "path", "a\nb", "test"), "data.path");
    free(assignment);
}

static void test_value_boundaries_accepted(void)
{
    sgk_config config;

    sgk_config_defaults(&config);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.seed=18446744073709551615"), SGK_OK);
    CU_ASSERT_EQUAL(config.data.seed, UINT64_MAX);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.n_train=9223372036854775807"), SGK_OK);
    CU_ASSERT_EQUAL(config.data.n_train, 9223372036854775807L);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.momentum=0"), SGK_OK);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.beta2=0"), SGK_OK);
    CU_ASSERT_EQUAL(config.train.beta2, 0.0);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.epsilon=1e-300"), SGK_OK);
    CU_ASSERT_EQUAL(config.train.epsilon, 1e-300);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.temperature=0"), SGK_OK);
    CU_ASSERT_EQUAL(config.train.temperature, 0.0);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "train.temperature=1e6"), SGK_OK);
    CU_ASSERT_EQUAL(config.train.temperature, 1e6);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "spectrum.tolerance=0"), SGK_OK);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.n_test=0"), SGK_OK);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "spectrum.eigenvectors=ON"), SGK_OK);
    CU_ASSERT_EQUAL(config.spectrum.eigenvectors, 1);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "spectrum.eigenvectors=0"), SGK_OK);
    CU_ASSERT_EQUAL(config.spectrum.eigenvectors, 0);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "data.classes=255,0"), SGK_OK);
    CU_ASSERT_EQUAL(sgk_config_override(&config, "model.widths="), SGK_OK);
    CU_ASSERT_EQUAL(config.model.n_hidden, 0);
}

/* ------------------------------------------------------------------------- */
/* Cross-key validation. */

/* Apply `overrides` to the defaults and validate. */
static sgk_status validate_with(const char *const *overrides, int n_overrides)
{
    sgk_config config;

    sgk_config_defaults(&config);
    for (int i = 0; i < n_overrides; i++) {
        sgk_status status = sgk_config_override(&config, overrides[i]);
        CU_ASSERT_EQUAL(status, SGK_OK);
        if (status != SGK_OK) fprintf(stderr, "\n  %s: %s\n", overrides[i], sgk_error_message());
    }
    return sgk_config_validate(&config);
}

#define VALIDATE(...)                                                          \
    validate_with((const char *const[]){ __VA_ARGS__ },                        \
                  (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)))

static void test_validate_cross_keys(void)
{
    CHECK_USAGE(VALIDATE("data.n_ood=10"), "data.n_ood");
    CHECK_USAGE(VALIDATE("data.ood=noise"), "data.n_ood = 0");
    CHECK_USAGE(VALIDATE("data.n_train=10", "train.batch_size=11"), "train.batch_size");
    CU_ASSERT_EQUAL(VALIDATE("data.n_train=260", "train.batch_size=260"), SGK_OK);
    CHECK_USAGE(VALIDATE("train.steps=10", "kernel.checkpoints=12"), "kernel.checkpoints");
    CU_ASSERT_EQUAL(VALIDATE("train.steps=10", "kernel.checkpoints=11"), SGK_OK);
    CHECK_USAGE(VALIDATE("data.classes=3,10"), "data.classes contains 10");
    CU_ASSERT_EQUAL(VALIDATE("data.source=idx", "data.classes=3,10"), SGK_OK);
    CHECK_USAGE(VALIDATE("data.classes=4"), "at least 2");
    CHECK_USAGE(VALIDATE("data.ood=classes:1,7", "data.n_ood=5"), "class 1");
    CHECK_USAGE(VALIDATE("data.ood=classes:12", "data.n_ood=5"), "data.ood contains class 12");
    CU_ASSERT_EQUAL(VALIDATE("data.ood=classes:7,9", "data.n_ood=5"), SGK_OK);
    CHECK_USAGE(VALIDATE("data.classes=all", "data.ood=classes:7", "data.n_ood=5"),
                "data.classes");
    CHECK_USAGE(VALIDATE("data.source=teacher", "data.ood=classes:7", "data.n_ood=5"),
                "teacher");
    CU_ASSERT_EQUAL(VALIDATE("data.source=teacher", "data.path=", "data.ood=noise",
                             "data.n_ood=5"), SGK_OK);
    CHECK_USAGE(VALIDATE("data.source=idx", "data.path="), "data.path");
    /* probe and retrieval larger than the sets they index are capped, not rejected. */
    CU_ASSERT_EQUAL(VALIDATE("kernel.probe=100000"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("output.retrieval=100000"), SGK_OK);
    CHECK_USAGE(VALIDATE("data.n_train=2000000000", "data.n_test=2000000000"), "ScaLAPACK");
}

/* Every value of the configuration language has an implementation. */
static void test_validate_every_feature(void)
{
    CU_ASSERT_EQUAL(VALIDATE("train.loss=xent", "data.classes=0,1,2"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.loss=logistic"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.optimizer=adam"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.optimizer=sgld", "train.temperature=0.01"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.optimizer=momentum"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.optimizer=rmsprop"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("kernel.path_nodes=3"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("kernel.path_nodes=16"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("data.source=netcdf", "data.path=points.nc"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("data.source=csv", "data.path=points.csv"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("model.init_file=w.nc"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("spectrum.eigenvectors=yes"), SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("spectrum.eigenpairs=5"), SGK_OK);
}

/* GAN mode: disc_lr = 0 keeps the discriminator fixed, and the weight files, which
 * describe one network on the data's inputs, are rejected. */
static void test_validate_gan(void)
{
    sgk_config config;

    CU_ASSERT_EQUAL(VALIDATE("train.task=gan", "gan.disc_lr=0"), SGK_OK);
    sgk_config_defaults(&config);
    CHECK_USAGE(sgk_config_override(&config, "gan.disc_lr=-0.1"), "gan.disc_lr");
    CHECK_USAGE(sgk_config_override(&config, "gan.grid=513"), "gan.grid");
    CHECK_USAGE(VALIDATE("train.task=gan", "model.init_file=w.nc"), "model.init_file");
    CHECK_USAGE(VALIDATE("train.task=gan", "output.weights_file=w.nc"), "output.weights_file");
    CHECK_USAGE(VALIDATE("train.task=gan", "train.optimizer=sgld"), "sgld");
    CHECK_USAGE(VALIDATE("train.task=gan", "gan.latent_points=10", "spectrum.eigenpairs=11"),
                "gan.latent_points");
    /* The GAN kernel's order is latent_points, not the real samples' n_train. */
    CU_ASSERT_EQUAL(VALIDATE("train.task=gan", "data.n_train=40", "gan.latent_points=256",
                             "spectrum.eigenpairs=100"),
                    SGK_OK);
    CU_ASSERT_EQUAL(VALIDATE("train.task=gan", "gan.latent_points=10", "spectrum.eigenpairs=10"),
                    SGK_OK);
}

/* ------------------------------------------------------------------------- */

static void remove_test_folder(void)
{
    for (int i = 0; i < n_written_files; i++) {
        unlink(written_files[i]);
        free(written_files[i]);
    }
    rmdir(folder);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc function;
    } tests[] = {
        { "defaults validate", test_defaults_validate },
        { "round trip, every key changed", test_round_trip_every_key_changed },
        { "round trip, other variants", test_round_trip_other_variants },
        { "to_ini lists every key", test_to_ini_lists_every_key },
        { "overrides win over file", test_overrides_win_over_file },
        { "comments and whitespace", test_comments_and_whitespace },
        { "failed load keeps config", test_failed_load_keeps_config },
        { "structure errors", test_structure_errors },
        { "integer errors", test_integer_errors },
        { "real errors", test_real_errors },
        { "keyword and list errors", test_keyword_and_list_errors },
        { "long lines", test_long_lines },
        { "missing file", test_missing_file },
        { "override errors", test_override_errors },
        { "long path values", test_long_path_values },
        { "value boundaries accepted", test_value_boundaries_accepted },
        { "validate cross keys", test_validate_cross_keys },
        { "validate every feature", test_validate_every_feature },
        { "validate gan", test_validate_gan },
    };
    const char *tmp = getenv("TMPDIR");
    CU_pSuite suite;
    unsigned failures;

    snprintf(folder, sizeof folder, "%s/sgk-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(folder)) {
        fprintf(stderr, "test_config: cannot create a folder from %s: %s\n", folder,
                strerror(errno));
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    suite = CU_add_suite("config", NULL, NULL);
    if (!suite) return 1;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].function)) return 1;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    remove_test_folder();
    return failures != 0 ? 1 : 0;
}
