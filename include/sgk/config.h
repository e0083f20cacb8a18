/* Run configuration: INI file, command-line overrides, validation. */
#ifndef SGK_CONFIG_H
#define SGK_CONFIG_H

#include <stdint.h>
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SGK_MAX_HIDDEN 16    /* hidden layers */
#define SGK_MAX_CLASSES 64   /* entries of a class list */
#define SGK_PATH_LEN 4096    /* bytes of a path, terminator included */
#define SGK_MAX_PATH_NODES 16 /* Gauss-Legendre nodes along a step */

typedef enum {
    SGK_SOURCE_FASHION_MNIST,
    SGK_SOURCE_IDX,
    SGK_SOURCE_NETCDF,
    SGK_SOURCE_CSV,
    SGK_SOURCE_TEACHER,
    SGK_SOURCE_MOONS,            /* two interleaved half circles in the plane */
    SGK_SOURCE_GAUSSIAN_MIXTURE  /* Gaussians evenly spaced on a circle in the plane */
} sgk_source;

typedef enum {
    SGK_OOD_NONE,
    SGK_OOD_CLASSES,
    SGK_OOD_NOISE,
    SGK_OOD_SHIFT,
    SGK_OOD_FILE     /* the split-2 points of a netcdf source */
} sgk_ood_kind;
typedef enum { SGK_ACT_RELU, SGK_ACT_TANH, SGK_ACT_ERF, SGK_ACT_GELU } sgk_activation;
typedef enum { SGK_PARAM_STANDARD, SGK_PARAM_NTK } sgk_parametrization;
typedef enum { SGK_LOSS_MSE, SGK_LOSS_XENT, SGK_LOSS_LOGISTIC } sgk_loss_kind;
typedef enum {
    SGK_OPT_SGD,
    SGK_OPT_MOMENTUM,
    SGK_OPT_ADAM,
    SGK_OPT_RMSPROP,
    SGK_OPT_SGLD
} sgk_optimizer_kind;

/* [train] task: what the network learns. */
typedef enum {
    SGK_TASK_REGRESSION, /* supervised: inputs to targets with [train] loss */
    SGK_TASK_DENOISE,    /* denoising score matching over [denoise] noise levels */
    SGK_TASK_GAN         /* generator against a discriminator ([gan]) */
} sgk_task;

/* [train] on_divergence: what a replica with non-finite loss or outputs does to the run. */
typedef enum { SGK_DIVERGENCE_STOP, SGK_DIVERGENCE_DROP } sgk_divergence_policy;

/* Bits of [ensemble] vary: which randomness differs between replicas. */
enum { SGK_VARY_INIT = 1, SGK_VARY_BATCH = 2, SGK_VARY_NOISE = 4 };

typedef struct {
    struct {
        sgk_source source;
        char path[SGK_PATH_LEN];    /* folder for IDX sets, file for netcdf/csv */
        int classes[SGK_MAX_CLASSES];
        int n_classes;              /* 0: every class of the source */
        long n_train;
        long n_test;
        sgk_ood_kind ood;
        int ood_classes[SGK_MAX_CLASSES];
        int n_ood_classes;
        double ood_shift;           /* SCALE of ood = shift:SCALE */
        long n_ood;
        uint64_t seed;              /* which examples are drawn */
        int teacher_inputs;         /* teacher source: input dimension */
        int teacher_width;          /* teacher source: hidden width of the teacher */
        double teacher_noise;       /* teacher source: standard deviation of label noise */
        double synthetic_noise;     /* moons, gaussian-mixture: standard deviation of the
                                     * Gaussian noise around the curves or centres */
        int mixture_components;     /* gaussian-mixture: number of components */
        double mixture_radius;      /* gaussian-mixture: radius of the circle of centres */
    } data;
    struct {
        int widths[SGK_MAX_HIDDEN];
        int n_hidden;               /* 0: no hidden layer (linear model) */
        sgk_activation activation;
        sgk_parametrization parametrization;
        char init_file[SGK_PATH_LEN]; /* "" when unset */
    } model;
    struct {
        sgk_task task;
        sgk_loss_kind loss;
        sgk_optimizer_kind optimizer;
        sgk_divergence_policy on_divergence;
        double lr;
        double momentum;            /* heavy-ball coefficient, Adam's first-moment decay beta1 */
        double beta2;               /* second-moment decay of adam and rmsprop */
        double epsilon;             /* added to the root of the second moment (adam, rmsprop) */
        double temperature;         /* Langevin temperature of sgld, where 0 gives plain SGD */
        long batch_size;            /* 0 means full batch */
        long steps;
    } train;
    struct {
        long replicas;
        uint64_t seed;
        unsigned vary;              /* SGK_VARY_* bits */
    } ensemble;
    struct {
        int checkpoints;            /* including step 0 and the last step */
        int path_nodes;             /* 1: Jacobian at w_k; q >= 2: q-node Gauss-Legendre along the step */
        int drift;                  /* per-step drift bookkeeping: 1 yes, 0 no, -1 auto (yes
                                     * for regression, no for the generative tasks); read
                                     * it through sgk_config_drift */
        int block_size;
        long probe;
    } kernel;
    struct {
        long eigenpairs;            /* 0 means all */
        double tolerance;
        int eigenvectors;           /* boolean */
    } spectrum;
    struct {
        int levels;                 /* L noise levels */
        double sigma_min;           /* smallest noise standard deviation, sigma_L */
        double sigma_max;           /* largest noise standard deviation, sigma_1 */
        int locality_bins;          /* distance bins of the locality profile */
    } denoise;
    struct {
        int latent_dim;             /* dimension of the generator's latent input */
        long latent_points;         /* latent evaluation points (the kernel's order) */
        int disc_widths[SGK_MAX_HIDDEN];
        int disc_n_hidden;          /* 0: linear discriminator */
        double disc_lr;             /* discriminator learning rate; 0 keeps it fixed */
        int grid;                   /* points per side of the 2-D discriminator field, 0: none */
    } gan;
    struct {
        char file[SGK_PATH_LEN];
        int retrieval;
        double checkpoint_every;    /* minutes between restart snapshots, 0: only on signals */
        int overwrite;              /* boolean: replace an existing output file */
        char weights_file[SGK_PATH_LEN]; /* replica 0's final weights go here; "" for none */
        int compression;            /* deflate level 0..9 of sgk and eigenvectors, 0: none */
    } output;
} sgk_config;

/* Fill `config` with the built-in default experiment. */
void sgk_config_defaults(sgk_config *config);

/* Read an INI file on top of `config`. Unknown sections or keys, duplicate keys,
 * malformed values and over-long lines are SGK_ERR_USAGE errors that name the file,
 * line, key and accepted values. The line limit is the inih line buffer: 198
 * characters without the comment in Debian's inih 55. A file that cannot be opened
 * is SGK_ERR_USAGE too, naming the path. On error `config` is left unchanged. */
sgk_status sgk_config_load_file(sgk_config *config, const char *path);

/* Set one key from its text value, given without surrounding whitespace. `origin`
 * names where the value came from ("run.ini:12", "--set train.lr=0.1") and starts every
 * error message. On error the key keeps its previous value. */
sgk_status sgk_config_set(sgk_config *config, const char *section, const char *key,
                          const char *value, const char *origin);

/* Apply a command-line override of the form "section.key=value"; whitespace around
 * the section, key and value is ignored. */
sgk_status sgk_config_override(sgk_config *config, const char *assignment);

/* Check relations between keys (sizes, class lists, values this version
 * does not implement). Errors are SGK_ERR_USAGE. */
sgk_status sgk_config_validate(const sgk_config *config);

/* Whether the per-step drift bookkeeping runs: [kernel] drift, with auto resolved by
 * [train] task. */
int sgk_config_drift(const sgk_config *config);

/* Name of a [train] task value, as written in the configuration. */
const char *sgk_task_name(sgk_task task);

/* The resolved configuration as INI text, every key present, which
 * sgk_config_load_file reads back to an identical configuration as long as no line
 * exceeds the inih line limit. The caller frees it; NULL when out of memory. */
char *sgk_config_to_ini(const sgk_config *config);

#ifdef __cplusplus
}
#endif
#endif
