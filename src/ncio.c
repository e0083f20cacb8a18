/* NetCDF-4 output file: dimensions, variables and provenance attributes of one run.
 *
 * Every rank opens the file with nc_create_par. Small arrays are written by rank 0
 * alone, and the distributed kernel `sgk` and the eigenvectors by every rank from
 * its own blocks, all with independent access (see write_block_cyclic for the
 * reason). [output] compression > 0 is the exception, because it makes the writes
 * of sgk and the eigenvectors collective. Each step ends with agree_status(), so
 * when one rank fails, all ranks return the same status and message instead of
 * waiting in a collective call that the failed rank never enters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netcdf.h>
#include <netcdf_filter.h>
#include <netcdf_par.h>

#include "sgk/sgk.h"

enum {
    DIM_SAMPLE,
    DIM_TRAIN,
    DIM_OUTPUT,
    DIM_FEATURE,
    DIM_REPLICA,
    DIM_CHECKPOINT,
    DIM_EIG,
    DIM_RANK_K,
    DIM_PROBE,
    DIM_NTK_TOP,
    DIM_LEVEL,
    DIM_DISTANCE_BIN,
    DIM_REAL,           /* GAN mode: real samples */
    DIM_GRID_POINT,     /* GAN mode: points of the discriminator field */
    N_DIMS
};

static const char *const dim_names[N_DIMS] = {
    "sample", "train", "output", "feature", "replica", "checkpoint", "eig", "rank_k", "probe",
    "ntk_top", "level", "distance_bin", "real", "grid_point"
};

enum {
    VAR_X,
    VAR_Y,
    VAR_SPLIT,
    VAR_LABEL,
    VAR_CHECKPOINT_STEP,
    VAR_CHECKPOINT_TIME,
    VAR_QUADRATURE_WEIGHT,
    VAR_LOSS_TRAIN,
    VAR_LOSS_TEST,
    VAR_F_MEAN,
    VAR_F_VAR,
    VAR_SGK,
    VAR_EIGENVALUES,
    VAR_DRIFT,
    VAR_REMAINDER,
    VAR_KERNEL_MACHINE,
    VAR_RETRIEVAL_INDEX,
    VAR_RETRIEVAL_WEIGHT,
    VAR_EIGENVECTORS,
    VAR_TARGET_COEFF,
    VAR_CAPTURED_ENERGY,
    VAR_NULL_SPACE_ENERGY,
    VAR_REMAINING_ENERGY,
    VAR_EFFECTIVE_RANK,
    VAR_ALIGNMENT,
    VAR_ALIGNMENT_CENTERED,
    VAR_MEMORY_RESIDUAL,
    VAR_POINT_ERROR,
    VAR_TEST_ERROR_MEAN,
    VAR_TEST_ERROR_REPLICA,
    VAR_RESIDUAL_ERROR_CORRELATION,
    VAR_REPLICA_DROPPED,
    VAR_PROBE_INDEX,
    VAR_PROBE_KERNEL,
    VAR_NTK_TRACE,
    VAR_NTK_FROBENIUS,
    VAR_NTK_ALIGNMENT,
    VAR_NTK_ALIGNMENT_CENTERED,
    VAR_NTK_DISTANCE,
    VAR_NTK_VELOCITY,
    VAR_NTK_EFFECTIVE_RANK,
    VAR_NTK_SPREAD,
    VAR_NTK_TOP_EIGENVALUES,
    VAR_NOISE_LEVEL,
    VAR_LEVEL_TIME,
    VAR_LEVEL_TRACE,
    VAR_LEVEL_EIGENVALUES,
    VAR_LEVEL_SGK,
    VAR_LOCALITY_DISTANCE,
    VAR_LOCALITY_COUNT,
    VAR_LOCALITY_PROFILE,
    VAR_LOCALITY_PROFILE_NORMALIZED,
    VAR_LOCALITY_WIDTH,
    VAR_REAL_X,
    VAR_GENERATED,
    VAR_DISC_GRID,
    VAR_DISC_VALUE,
    VAR_DISC_GRADIENT,
    N_VARS
};

#define DIFFUSION_TIME_UNITS "diffusion time (sum of learning rates)"

/* Name, type, shape and the long_name, units and description attributes of one
 * output variable. units is NULL for flag, label and index variables, which CF
 * leaves without units. n_dims = 0 is a scalar variable. */
typedef struct {
    const char *name;
    nc_type type;
    int n_dims;
    int dims[3];
    const char *long_name;
    const char *units;
    const char *description;
} var_spec;

static const var_spec var_specs[N_VARS] = {
    [VAR_X] = {"x", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_FEATURE}, "evaluation inputs", "1",
               "Network inputs of the evaluation points after the data source's "
               "preprocessing: training points first, then test, then out-of-distribution."},
    [VAR_Y] = {"y", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_OUTPUT}, "evaluation targets", "1",
               "Targets of the evaluation points, one column per network output: -1 or +1 "
               "for two classes, one-hot for more, the source's values for regression."},
    [VAR_SPLIT] = {"split", NC_INT, 1, {DIM_SAMPLE}, "evaluation split", NULL,
                   "Role of each evaluation point: 0 train, 1 test, 2 ood. Training "
                   "points come first, then test points, then ood points."},
    [VAR_LABEL] = {"label", NC_INT, 1, {DIM_SAMPLE}, "class label in the data source", NULL,
                   "Class label of the point in its source data set, or -1 when the "
                   "source has no labels (synthetic points)."},
    [VAR_CHECKPOINT_STEP] = {"checkpoint_step", NC_INT64, 1, {DIM_CHECKPOINT},
                             "optimizer step of the checkpoint", "1",
                             "Number of optimizer steps taken before the checkpoint; "
                             "the first checkpoint is step 0 and the last is the final step."},
    [VAR_CHECKPOINT_TIME] = {"checkpoint_time", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                             "diffusion time of the checkpoint", DIFFUSION_TIME_UNITS,
                             "t = sum of the learning rates eta_k over the steps k before "
                             "the checkpoint."},
    [VAR_QUADRATURE_WEIGHT] = {"quadrature_weight", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                               "time-quadrature weight of the checkpoint", DIFFUSION_TIME_UNITS,
                               "Trapezoid weight omega_c in diffusion time: sgk is the sum "
                               "over checkpoints of omega_c times the replica-mean tangent kernel."},
    [VAR_LOSS_TRAIN] = {"loss_train", NC_DOUBLE, 2, {DIM_REPLICA, DIM_CHECKPOINT},
                        "training loss per replica", "1",
                        "Mean per-sample loss of each replica on the training points at "
                        "each checkpoint."},
    [VAR_LOSS_TEST] = {"loss_test", NC_DOUBLE, 2, {DIM_REPLICA, DIM_CHECKPOINT},
                       "test loss per replica", "1",
                       "Mean per-sample loss of each replica on the test points at each "
                       "checkpoint; NaN when the run has no test points."},
    [VAR_F_MEAN] = {"f_mean", NC_DOUBLE, 3, {DIM_CHECKPOINT, DIM_SAMPLE, DIM_OUTPUT},
                    "ensemble mean of the network outputs", "1",
                    "Mean over replicas of f(x; w) at each checkpoint and evaluation point."},
    [VAR_F_VAR] = {"f_var", NC_DOUBLE, 3, {DIM_CHECKPOINT, DIM_SAMPLE, DIM_OUTPUT},
                   "ensemble variance of the network outputs", "1",
                   "Unbiased variance over replicas (divisor R - 1) of f(x; w) at each "
                   "checkpoint and evaluation point; NaN when there is one replica."},
    [VAR_SGK] = {"sgk", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_SAMPLE}, "stochastic gradient kernel", "1",
                 "K(x_a, x_b) = (1/R) sum_r sum_c omega_c tr_o Theta_{r,c}(x_a, x_b): the "
                 "tangent kernel traced over outputs, integrated over diffusion time with "
                 "quadrature_weight and averaged over replicas. It scales linearly with the "
                 "learning rate because the time integral does."},
    [VAR_EIGENVALUES] = {"eigenvalues", NC_DOUBLE, 1, {DIM_EIG},
                         "eigenvalues of the training-set kernel operator", "1",
                         "Eigenvalues of K_n = K[train, train] / n in descending order, where "
                         "K[train, train] is the leading n x n block of sgk."},
    [VAR_DRIFT] = {"drift", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_OUTPUT}, "kernel drift", "1",
                   "-sum_i D(x, x_i) over the training points i: the change of the ensemble-mean "
                   "output that the per-step tangent kernels and residuals explain."},
    [VAR_REMAINDER] = {"remainder", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_OUTPUT},
                       "remainder of the kernel expansion", "1",
                       "E R_T(x) = E f_T(x) - E f_0(x) - drift(x), measured: the part of the "
                       "ensemble-mean output change that the drift does not explain."},
    [VAR_KERNEL_MACHINE] = {"kernel_machine", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_OUTPUT},
                            "kernel-machine prediction", "1",
                            "E f_0(x) + drift(x): the ensemble-mean output at the first "
                            "checkpoint plus the drift."},
    [VAR_RETRIEVAL_INDEX] = {"retrieval_index", NC_INT, 2, {DIM_SAMPLE, DIM_RANK_K},
                             "training points with the largest drift contributions", NULL,
                             "0-based indices of the training points i with the largest "
                             "|D(x, x_i)|, in decreasing order."},
    [VAR_RETRIEVAL_WEIGHT] = {"retrieval_weight", NC_DOUBLE, 2, {DIM_SAMPLE, DIM_RANK_K},
                              "drift contributions of the retrieved training points", "1",
                              "|D(x, x_i)|, the Euclidean norm over outputs, of the training "
                              "point in the same place of retrieval_index."},
    [VAR_EIGENVECTORS] = {"eigenvectors", NC_DOUBLE, 2, {DIM_TRAIN, DIM_EIG},
                          "eigenvectors of the training-set kernel operator", "1",
                          "Orthonormal eigenvectors v_j of K_n as columns, column j for "
                          "eigenvalues[j]; each is determined up to its sign."},
    [VAR_TARGET_COEFF] = {"target_coeff", NC_DOUBLE, 2, {DIM_EIG, DIM_OUTPUT},
                          "target coefficients on the eigenvectors", "1",
                          "c_jo = v_j . y_o / |y_o| over the training points, with y_o the "
                          "training targets of output o; the sign follows the sign of v_j."},
    [VAR_CAPTURED_ENERGY] = {"captured_energy", NC_DOUBLE, 2, {DIM_EIG, DIM_OUTPUT},
                             "cumulative target energy on the leading eigenvectors", "1",
                             "sum_{i <= j} c_io^2: the share of |y_o|^2 in the span of the j + 1 "
                             "leading eigenvectors."},
    [VAR_NULL_SPACE_ENERGY] = {"null_space_energy", NC_DOUBLE, 1, {DIM_OUTPUT},
                               "target energy in the numerical null space", "1",
                               "Sum of c_jo^2 over the computed eigenpairs with "
                               "lambda_j < tolerance * lambda_1: the part of the targets the "
                               "kernel cannot learn. With fewer eigenpairs than training points, "
                               "remaining_energy holds the energy outside the computed ones."},
    [VAR_REMAINING_ENERGY] = {"remaining_energy", NC_DOUBLE, 1, {DIM_OUTPUT},
                              "target energy outside the computed eigenvectors", "1",
                              "1 - sum_j c_jo^2 over the computed eigenpairs; 0 up to rounding "
                              "when every eigenpair was computed."},
    [VAR_EFFECTIVE_RANK] = {"effective_rank", NC_DOUBLE, 0, {0},
                            "effective rank of the training-set kernel operator", "1",
                            "(sum_j lambda_j)^2 / sum_j lambda_j^2 over the stored eigenvalues "
                            "only: when eig < train it ignores the uncomputed eigenvalues."},
    [VAR_ALIGNMENT] = {"alignment", NC_DOUBLE, 1, {DIM_OUTPUT}, "kernel-target alignment", "1",
                       "y_o^T K y_o / (|K|_F |y_o|^2) on the training block of sgk; NaN when "
                       "K or y_o is zero."},
    [VAR_ALIGNMENT_CENTERED] = {"alignment_centered", NC_DOUBLE, 1, {DIM_OUTPUT},
                                "centered kernel-target alignment", "1",
                                "The alignment of H K H and y_o - mean(y_o), with "
                                "H = I - 1 1^T / n, on the training block; NaN when either is "
                                "zero."},
    [VAR_MEMORY_RESIDUAL] = {"memory_residual", NC_DOUBLE, 1, {DIM_SAMPLE}, "memory residual", "1",
                             "s(x) = 1 - k_x^T K_n^+ k_x / (n K(x, x)), k_x = [K(x, x_i)] over the "
                             "training points, the pseudo-inverse keeping the eigenvalues "
                             "lambda_j >= tolerance * lambda_1: 0 inside the span of the "
                             "training points' features, 1 orthogonal to it; NaN where "
                             "K(x, x) <= 0."},
    [VAR_POINT_ERROR] = {"point_error", NC_DOUBLE, 1, {DIM_SAMPLE},
                         "error of the ensemble mean at each point", "1",
                         "Error of f_mean at the last checkpoint under error_kind at every "
                         "training and test point; NaN at out-of-distribution points, whose "
                         "targets are placeholders for most sources."},
    [VAR_TEST_ERROR_MEAN] = {"test_error_mean", NC_DOUBLE, 0, {0},
                             "test error of the ensemble mean", "1",
                             "Mean of point_error over the test points; NaN without test "
                             "points."},
    [VAR_TEST_ERROR_REPLICA] = {"test_error_replica", NC_DOUBLE, 1, {DIM_REPLICA},
                                "test error of each replica", "1",
                                "The error of each replica's own final outputs over the test "
                                "points, measured like test_error_mean."},
    [VAR_RESIDUAL_ERROR_CORRELATION] = {"residual_error_correlation", NC_DOUBLE, 0, {0},
                                        "correlation of memory residual and test error", "1",
                                        "Pearson correlation of memory_residual and point_error "
                                        "over the test points; NaN when undefined (fewer than "
                                        "two test points, or either is constant)."},
    [VAR_REPLICA_DROPPED] = {"replica_dropped", NC_INT, 1, {DIM_REPLICA},
                             "replica left out after diverging", NULL,
                             "1 for a replica whose loss or outputs became NaN or Inf and that "
                             "[train] on_divergence = drop left out of every ensemble statistic; "
                             "0 otherwise. Its losses after the divergence are NaN."},
    [VAR_PROBE_INDEX] = {"probe_index", NC_INT64, 1, {DIM_PROBE}, "evaluation index of each probe "
                         "point", NULL, "0-based index into sample of each probe point, evenly "
                         "spread over the evaluation set: floor(p N / P)."},
    [VAR_PROBE_KERNEL] = {"probe_kernel", NC_DOUBLE, 3, {DIM_CHECKPOINT, DIM_PROBE, DIM_PROBE},
                          "ensemble-mean tangent kernel on the probe points", "1",
                          "Theta_c = (1/R) sum_r tr_o Theta_{r,c} between probe points at each "
                          "checkpoint, not weighted by time."},
    [VAR_NTK_TRACE] = {"ntk_trace", NC_DOUBLE, 1, {DIM_CHECKPOINT}, "trace of the probe kernel",
                       "1", "tr Theta_c over the probe points."},
    [VAR_NTK_FROBENIUS] = {"ntk_frobenius", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                           "Frobenius norm of the probe kernel", "1", "|Theta_c|_F."},
    [VAR_NTK_ALIGNMENT] = {"ntk_alignment", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                           "kernel-target alignment of the probe kernel", "1",
                           "sum_o y_o^T Theta_c y_o / (|Theta_c|_F sum_o |y_o|^2) over the probe "
                           "points."},
    [VAR_NTK_ALIGNMENT_CENTERED] = {"ntk_alignment_centered", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                                    "centered kernel-target alignment of the probe kernel", "1",
                                    "The alignment of H Theta_c H with the centered targets, "
                                    "H = I - 1 1^T / P."},
    [VAR_NTK_DISTANCE] = {"ntk_distance", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                          "kernel distance to initialization", "1",
                          "1 - <Theta_0, Theta_c>_F / (|Theta_0|_F |Theta_c|_F)."},
    [VAR_NTK_VELOCITY] = {"ntk_velocity", NC_DOUBLE, 1, {DIM_CHECKPOINT}, "kernel velocity",
                          "kernel per diffusion time",
                          "|Theta_c - Theta_{c-1}|_F / (t_c - t_{c-1}); NaN at the first "
                          "checkpoint."},
    [VAR_NTK_EFFECTIVE_RANK] = {"ntk_effective_rank", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                                "effective rank of the probe kernel", "1",
                                "(sum lambda)^2 / sum lambda^2 over the eigenvalues of Theta_c."},
    [VAR_NTK_SPREAD] = {"ntk_spread", NC_DOUBLE, 1, {DIM_CHECKPOINT},
                        "relative spread of the replica kernels", "1",
                        "sqrt(sum_ab var_ab) / |Theta_c|_F, var the unbiased variance over "
                        "replicas of each probe-kernel entry: the stochastic part of the kernel; "
                        "NaN with one replica."},
    [VAR_NTK_TOP_EIGENVALUES] = {"ntk_top_eigenvalues", NC_DOUBLE, 2, {DIM_CHECKPOINT, DIM_NTK_TOP},
                                 "leading eigenvalues of the probe kernel", "1",
                                 "The largest eigenvalues of Theta_c, descending."},
    [VAR_NOISE_LEVEL] = {"noise_level", NC_DOUBLE, 1, {DIM_LEVEL}, "noise standard deviation",
                         "1", "sigma_l of the denoise task's geometric schedule, descending; the "
                         "network takes it as its last input."},
    [VAR_LEVEL_TIME] = {"level_time", NC_DOUBLE, 2, {DIM_CHECKPOINT, DIM_LEVEL},
                        "diffusion time per noise level", DIFFUSION_TIME_UNITS,
                        "Ensemble mean of the learning rates of the steps that trained level l "
                        "before checkpoint c."},
    [VAR_LEVEL_TRACE] = {"level_trace", NC_DOUBLE, 2, {DIM_CHECKPOINT, DIM_LEVEL},
                         "trace of the level kernel", "1",
                         "Ensemble mean over accepted replicas of sum_a tr_o Theta_c((x_a, "
                         "sigma_l), (x_a, sigma_l)) over all evaluation points."},
    [VAR_LEVEL_EIGENVALUES] = {"level_eigenvalues", NC_DOUBLE, 2, {DIM_LEVEL, DIM_EIG},
                               "level kernel eigenvalues", "1",
                               "Eigenvalues of K^(l)[train, train] / n, descending."},
    [VAR_LEVEL_SGK] = {"level_sgk", NC_DOUBLE, 3, {DIM_LEVEL, DIM_SAMPLE, DIM_SAMPLE},
                       "per-level stochastic gradient kernel", "1",
                       "K^(l): the kernel of the steps that trained level l, evaluated with "
                       "sigma_l as the last input and traced over outputs; sgk = sum_l K^(l)."},
    [VAR_LOCALITY_DISTANCE] = {"locality_distance", NC_DOUBLE, 1, {DIM_DISTANCE_BIN},
                               "distance bin centre", "1",
                               "Euclidean distance between two evaluation points at the centre "
                               "of the bin; the bins split [0, largest distance] evenly."},
    [VAR_LOCALITY_COUNT] = {"locality_count", NC_DOUBLE, 1, {DIM_DISTANCE_BIN},
                            "pairs per distance bin", "1",
                            "Ordered pairs of distinct evaluation points in the bin."},
    [VAR_LOCALITY_PROFILE] = {"locality_profile", NC_DOUBLE, 2, {DIM_LEVEL, DIM_DISTANCE_BIN},
                              "mean level kernel per distance bin", "1",
                              "Mean of K^(l)(x, x') over the pairs in the bin; NaN for an empty "
                              "bin."},
    [VAR_LOCALITY_PROFILE_NORMALIZED] = {"locality_profile_normalized", NC_DOUBLE, 2,
                                         {DIM_LEVEL, DIM_DISTANCE_BIN},
                                         "mean normalized level kernel per distance bin", "1",
                                         "Mean of K^(l)(x, x') / sqrt(K^(l)(x, x) K^(l)(x', x')) "
                                         "over the pairs in the bin; NaN for an empty bin."},
    [VAR_LOCALITY_WIDTH] = {"locality_width", NC_DOUBLE, 1, {DIM_LEVEL}, "locality half width",
                            "1", "Distance where locality_profile_normalized first falls to "
                            "half of its first non-empty bin, interpolated linearly between "
                            "bin centres; NaN when it never does."},
    [VAR_REAL_X] = {"real_x", NC_DOUBLE, 2, {DIM_REAL, DIM_OUTPUT}, "real samples", "1",
                    "GAN mode: the training points of the data source, which the "
                    "discriminator learns to tell from generated samples; x holds the latent "
                    "points and f_mean the generated samples."},
    [VAR_GENERATED] = {"generated", NC_DOUBLE, 3, {DIM_REPLICA, DIM_SAMPLE, DIM_OUTPUT},
                       "generated samples per replica", "1",
                       "G_r(z_a) of each replica's generator at the last checkpoint "
                       "(replica_dropped marks those left out of f_mean). f_mean averages "
                       "them, which is not a sample of any generator."},
    [VAR_DISC_GRID] = {"disc_grid", NC_DOUBLE, 2, {DIM_GRID_POINT, DIM_OUTPUT},
                       "discriminator field lattice", "1",
                       "GAN mode, 2-D data: point p = i0 * grid + i1 of a grid x grid lattice "
                       "over the bounding box of real_x enlarged by 10 % of its side on each "
                       "side."},
    [VAR_DISC_VALUE] = {"disc_value", NC_DOUBLE, 1, {DIM_GRID_POINT},
                        "ensemble-mean discriminator output", "1",
                        "Mean over the accepted replicas of the discriminator logit D(x) at "
                        "each disc_grid point, at the last checkpoint."},
    [VAR_DISC_GRADIENT] = {"disc_gradient", NC_DOUBLE, 2, {DIM_GRID_POINT, DIM_OUTPUT},
                           "ensemble-mean discriminator input gradient", "1",
                           "Mean over the accepted replicas of grad_x D(x) at each disc_grid "
                           "point, at the last checkpoint: the direction the generator's "
                           "samples are pushed."},
};

/* long_name and description of the variables whose meaning changes in GAN mode, where the
 * evaluation points are latent points and the network is the generator. */
static const struct {
    const char *long_name;
    const char *description;
} gan_texts[N_VARS] = {
    [VAR_X] = {"latent points", "GAN mode: the latent evaluation points z_a, standard normals "
               "drawn with the data seed; every one is a training point."},
    [VAR_LOSS_TRAIN] = {"discriminator loss per replica",
                        "GAN mode: mean of softplus(-D(x)) over the real samples plus mean of "
                        "softplus(D(G(z))) over the generated latent points, at each "
                        "checkpoint."},
    [VAR_LOSS_TEST] = {"generator loss per replica",
                       "GAN mode: mean of softplus(-D(G(z))) over the generated latent points, "
                       "at each checkpoint."},
    [VAR_F_MEAN] = {"ensemble mean of the generated samples",
                    "GAN mode: mean over replicas of G(z; w) at each checkpoint and latent "
                    "point."},
    [VAR_F_VAR] = {"ensemble variance of the generated samples",
                   "GAN mode: unbiased variance over replicas (divisor R - 1) of G(z; w) at "
                   "each checkpoint and latent point; NaN when there is one replica."},
    [VAR_SGK] = {"generator kernel",
                 "GAN mode: K(z, z') = (1/R) sum_r sum_c omega_c g(z)^T J_G(z) J_G(z')^T g(z'), "
                 "the generator's tangent kernel weighted through the discriminator's input "
                 "gradient g at the generated samples, integrated over diffusion time."},
};

/* Values that must be identical on every rank, because HDF5 requires every
 * rank to define the same dimensions, variables and attributes. Rank 0's copy is
 * broadcast. */
typedef struct {
    int64_t dim_length[N_DIMS];
    int64_t present[N_VARS];      /* 1 when the run computed the variable */
    int64_t data_seed;            /* uint64_t stored bit for bit */
    int64_t ensemble_seed;
    int64_t block_size;
    int64_t n_prow, n_pcol;
    int64_t n_ranks;
    int64_t error_kind;           /* sgk_error_kind of the generalization variables */
    int64_t n_retained;           /* eigenpairs kept in the pseudo-inverse */
    int64_t tolerance_bits;       /* doubles stored bit for bit */
    int64_t eigen_residual_bits;
    int64_t compression;          /* deflate level of sgk and eigenvectors, 0: none */
} shared_header;

/* Strings stored as global attributes, copied from rank 0. */
enum { INFO_CONFIG, INFO_COMMAND_LINE, INFO_START_TIME, INFO_HOST, N_INFO };

typedef struct {
    const char *path;
    MPI_Comm comm;
    int rank;
    int ncid;
    const sgk_analysis *analysis; /* NULL: no analysis variables */
    shared_header header;
    char *info[N_INFO];
    double phase_seconds[SGK_N_PHASES];
    int dimids[N_DIMS];
    int varids[N_VARS];
} nc_writer;

static sgk_status mpi_check(int rc, const char *path, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (rc == MPI_SUCCESS) return SGK_OK;
    MPI_Error_string(rc, text, &length);
    return sgk_error(SGK_ERR_IO, "writing %s: %s failed: %s", path, call, text);
}

/* `what` names the operation and the variable or attribute, e.g. "writing variable sgk". */
static sgk_status nc_check(int rc, const char *path, const char *what)
{
    if (rc == NC_NOERR) return SGK_OK;
    return sgk_error(SGK_ERR_IO, "writing %s: %s failed: %s", path, what, nc_strerror(rc));
}

/* Collective. Return SGK_OK when every rank passes SGK_OK. Otherwise every rank
 * returns the status and message of the lowest failing rank, so all ranks leave
 * together and each can report the cause. */
static sgk_status agree_status(MPI_Comm comm, const char *path, sgk_status local)
{
    int rank, n_ranks, candidate, first_failed, code;
    char message[2048];

    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &n_ranks) != MPI_SUCCESS)
        return sgk_error(SGK_ERR_IO, "writing %s: MPI_Comm_rank or MPI_Comm_size failed", path);
    candidate = local == SGK_OK ? n_ranks : rank;
    SGK_CHECK(mpi_check(MPI_Allreduce(&candidate, &first_failed, 1, MPI_INT, MPI_MIN, comm),
                        path, "MPI_Allreduce of the write status"));
    if (first_failed == n_ranks) return SGK_OK;

    code = (int)local;
    if (rank == first_failed) snprintf(message, sizeof message, "%s", sgk_error_message());
    SGK_CHECK(mpi_check(MPI_Bcast(&code, 1, MPI_INT, first_failed, comm), path,
                        "MPI_Bcast of the write status"));
    SGK_CHECK(mpi_check(MPI_Bcast(message, (int)sizeof message, MPI_CHAR, first_failed, comm),
                        path, "MPI_Bcast of the error message"));
    if (rank != first_failed) sgk_error((sgk_status)code, "%s (reported by rank %d)", message,
                                        first_failed);
    return (sgk_status)code;
}

/* Reject inputs this rank cannot write. Runs on every rank before the file exists. */
static sgk_status check_inputs(const char *path, const sgk_dataset *data,
                               const sgk_results *results, const sgk_grid *grid,
                               const sgk_run_info *info)
{
    const sgk_dmatrix *kernel = &results->sgk;

    if (data->n_samples < 1 || data->n_train < 1 || data->n_features < 1 || data->n_outputs < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: every dimension needs at least one entry, but sample = %ld, "
                         "train = %ld, feature = %d, output = %d (a NetCDF dimension of length 0 "
                         "is unlimited)", path, data->n_samples, data->n_train, data->n_features,
                         data->n_outputs);
    if (results->n_replicas < 1 || results->n_checkpoints < 1)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: replica = %ld and checkpoint = %d must both be at least 1",
                         path, results->n_replicas, results->n_checkpoints);
    if (!data->x || !data->y || !data->split)
        return sgk_error(SGK_ERR_USAGE, "writing %s: the dataset has no x, y or split array", path);
    if (!results->checkpoint_step || !results->checkpoint_time || !results->quadrature_weight)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: checkpoint_step, checkpoint_time and quadrature_weight "
                         "must all be set", path);
    if (!info)
        return sgk_error(SGK_ERR_USAGE, "writing %s: no run information (sgk_run_info) given",
                         path);

    if (kernel->n == 0) return SGK_OK; /* no kernel computed: sgk is left out */
    if (kernel->n != data->n_samples)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: sgk is %ld x %ld but the dataset has %ld samples",
                         path, kernel->n, kernel->n, data->n_samples);
    if (kernel->nb < 1)
        return sgk_error(SGK_ERR_USAGE, "writing %s: sgk has block size %d, expected >= 1",
                         path, kernel->nb);
    if (kernel->grid && (kernel->grid->n_prow != grid->n_prow || kernel->grid->n_pcol != grid->n_pcol))
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: sgk lives on a %dx%d process grid, but the grid passed in "
                         "is %dx%d", path, kernel->grid->n_prow, kernel->grid->n_pcol,
                         grid->n_prow, grid->n_pcol);
    if (kernel->local_rows > 0 && kernel->local_cols > 0 && !kernel->local)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: rank %d owns %d x %d entries of sgk but its local array "
                         "is NULL", path, grid->rank, kernel->local_rows, kernel->local_cols);
    return SGK_OK;
}

/* Reject an analysis that does not match the data set or lacks an array this rank
 * writes. Rank 0 writes every analysis array except the eigenvectors, which every
 * rank writes from its own blocks. */
static sgk_status check_analysis(const char *path, const sgk_dataset *data,
                                 const sgk_results *results, const sgk_analysis *analysis,
                                 const sgk_grid *grid)
{
    const sgk_generalization *g = &analysis->generalization;
    const sgk_dmatrix *v = &analysis->vectors;

    if (analysis->n_train != data->n_train || analysis->n_samples != data->n_samples ||
        analysis->n_outputs != data->n_outputs || analysis->n_eig < 1 ||
        analysis->n_eig > data->n_train)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: the analysis has train = %ld, sample = %ld, output = %d "
                         "and eig = %ld, but the data set has train = %ld, sample = %ld and "
                         "output = %d (eig must be 1..train)",
                         path, analysis->n_train, analysis->n_samples, analysis->n_outputs,
                         analysis->n_eig, data->n_train, data->n_samples, data->n_outputs);
    if (analysis->has_vectors &&
        (v->n != data->n_train || v->grid == NULL || v->grid->n_prow != grid->n_prow ||
         v->grid->n_pcol != grid->n_pcol || (v->local_rows > 0 && v->local_cols > 0 && !v->local)))
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: the eigenvector matrix on rank %d is not an n = %ld matrix "
                         "with its local part on the %dx%d grid of the file",
                         path, grid->rank, data->n_train, grid->n_prow, grid->n_pcol);
    if (grid->rank != 0) return SGK_OK;
    if (!analysis->eigenvalues || !analysis->target_coeff || !analysis->captured_energy ||
        !analysis->null_space_energy || !analysis->remaining_energy || !analysis->alignment ||
        !analysis->alignment_centered || !analysis->memory_residual)
        return sgk_error(SGK_ERR_USAGE, "writing %s: the analysis on rank 0 lacks one of its "
                                        "arrays; pass the result of sgk_analysis_run", path);
    if (analysis->has_generalization && !g->point_error)
        return sgk_error(SGK_ERR_USAGE, "writing %s: the generalization on rank 0 has no "
                                        "point_error array", path);
    if (analysis->has_generalization && g->test_error_replica &&
        g->n_replicas != results->n_replicas)
        return sgk_error(SGK_ERR_USAGE,
                         "writing %s: test_error_replica has %ld entries but replica = %ld",
                         path, g->n_replicas, results->n_replicas);
    return SGK_OK;
}

static int64_t double_bits(double value)
{
    int64_t bits;

    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static double bits_double(int64_t bits)
{
    double value;

    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Fill the header from this rank's inputs; only rank 0's copy is used. */
static void fill_header(shared_header *header, const sgk_config *config,
                        const sgk_dataset *data, const sgk_results *results,
                        const sgk_analysis *analysis, const sgk_grid *grid)
{
    int has_generalization = analysis && analysis->has_generalization;
    int v;

    memset(header, 0, sizeof *header);
    header->dim_length[DIM_SAMPLE] = data->n_samples;
    header->dim_length[DIM_TRAIN] = data->n_train;
    header->dim_length[DIM_OUTPUT] = data->n_outputs;
    header->dim_length[DIM_FEATURE] = data->n_features;
    header->dim_length[DIM_REPLICA] = results->n_replicas;
    header->dim_length[DIM_CHECKPOINT] = results->n_checkpoints;
    if (analysis)
        header->dim_length[DIM_EIG] = analysis->n_eig;
    else
        header->dim_length[DIM_EIG] = results->eigenvalues ? results->n_eig : 0;
    header->dim_length[DIM_RANK_K] = results->has_drift && results->retrieval_index
                                             && results->retrieval_weight
                                         ? results->retrieval_length
                                         : 0;

    for (v = 0; v < N_VARS; v++) header->present[v] = 1;
    header->present[VAR_LOSS_TRAIN] = results->loss_train != NULL;
    header->present[VAR_LOSS_TEST] = results->loss_test != NULL;
    header->present[VAR_F_MEAN] = results->f_mean != NULL;
    header->present[VAR_F_VAR] = results->f_var != NULL;
    header->present[VAR_SGK] = results->sgk.n > 0;
    header->present[VAR_EIGENVALUES] = header->dim_length[DIM_EIG] > 0;
    header->present[VAR_DRIFT] = results->has_drift && results->drift;
    header->present[VAR_REMAINDER] = results->has_drift && results->remainder;
    header->present[VAR_KERNEL_MACHINE] = results->has_drift && results->kernel_machine;
    header->present[VAR_RETRIEVAL_INDEX] = header->dim_length[DIM_RANK_K] > 0;
    header->present[VAR_RETRIEVAL_WEIGHT] = header->dim_length[DIM_RANK_K] > 0;
    for (v = VAR_EIGENVECTORS; v <= VAR_RESIDUAL_ERROR_CORRELATION; v++)
        header->present[v] = analysis != NULL;
    header->present[VAR_EIGENVECTORS] = analysis && analysis->has_vectors;
    header->present[VAR_POINT_ERROR] = has_generalization;
    header->present[VAR_TEST_ERROR_MEAN] = has_generalization;
    header->present[VAR_TEST_ERROR_REPLICA] =
        has_generalization && analysis->generalization.test_error_replica;
    header->present[VAR_RESIDUAL_ERROR_CORRELATION] = has_generalization;
    header->present[VAR_REPLICA_DROPPED] = results->replica_dropped != NULL;
    header->dim_length[DIM_PROBE] = results->has_evolution ? results->n_probe : 0;
    header->dim_length[DIM_NTK_TOP] = results->has_evolution ? results->evolution.n_top : 0;
    header->dim_length[DIM_LEVEL] = results->denoise.n_levels;
    header->dim_length[DIM_DISTANCE_BIN] = results->denoise.n_bins;
    for (int v = VAR_NOISE_LEVEL; v <= VAR_LOCALITY_WIDTH; v++)
        header->present[v] = results->denoise.n_levels > 0 && results->denoise.n_bins > 0;
    if (header->dim_length[DIM_EIG] == 0) header->present[VAR_LEVEL_EIGENVALUES] = 0;
    for (v = VAR_PROBE_INDEX; v <= VAR_NTK_SPREAD; v++)
        header->present[v] = results->has_evolution && results->n_probe > 0;
    header->present[VAR_NTK_TOP_EIGENVALUES] = header->dim_length[DIM_NTK_TOP] > 0
                                               && header->dim_length[DIM_PROBE] > 0;

    /* GAN mode: no targets, and the real samples and discriminator field instead. */
    header->dim_length[DIM_REAL] = results->gan.enabled ? results->gan.n_real : 0;
    header->dim_length[DIM_GRID_POINT] = results->gan.enabled ? results->gan.n_grid : 0;
    header->present[VAR_Y] = !results->gan.enabled;
    for (v = VAR_TARGET_COEFF; v <= VAR_REMAINING_ENERGY; v++)
        header->present[v] = analysis && !analysis->without_targets;
    header->present[VAR_ALIGNMENT] = analysis && !analysis->without_targets;
    header->present[VAR_ALIGNMENT_CENTERED] = analysis && !analysis->without_targets;
    header->present[VAR_REAL_X] = header->dim_length[DIM_REAL] > 0;
    header->present[VAR_GENERATED] = results->gan.enabled && results->f_replica_final != NULL;
    for (v = VAR_DISC_GRID; v <= VAR_DISC_GRADIENT; v++)
        header->present[v] = header->dim_length[DIM_GRID_POINT] > 0;
    if (analysis) {
        header->error_kind = analysis->generalization.kind;
        header->n_retained = analysis->n_retained;
        header->tolerance_bits = double_bits(analysis->tolerance);
        header->eigen_residual_bits = double_bits(analysis->eigen_residual);
    }

    header->data_seed = (int64_t)config->data.seed;
    header->ensemble_seed = (int64_t)config->ensemble.seed;
    header->block_size = results->sgk.n > 0 ? results->sgk.nb : config->kernel.block_size;
    header->n_prow = grid->n_prow;
    header->n_pcol = grid->n_pcol;
    header->n_ranks = grid->n_ranks;
    header->compression = config->output.compression;
}

/* Collective. Copy rank 0's string into a new buffer on every rank (NULL becomes ""). */
static sgk_status broadcast_string(const nc_writer *writer, const char *source, char **copy)
{
    long length = 0;
    sgk_status status = SGK_OK;

    if (writer->rank == 0) length = source ? (long)strlen(source) : 0;
    SGK_CHECK(mpi_check(MPI_Bcast(&length, 1, MPI_LONG, 0, writer->comm), writer->path,
                        "MPI_Bcast of an attribute length"));
    if (length > INT32_MAX - 1)
        return sgk_error(SGK_ERR_USAGE, "writing %s: a text attribute has %ld bytes, more than "
                         "one MPI_Bcast can send (%d)", writer->path, length, INT32_MAX - 1);
    *copy = malloc((size_t)length + 1);
    if (!*copy) status = sgk_error(SGK_ERR_IO, "writing %s: out of memory for a text attribute "
                                   "of %ld bytes", writer->path, length);
    SGK_CHECK(agree_status(writer->comm, writer->path, status));
    if (writer->rank == 0 && length > 0) memcpy(*copy, source, (size_t)length);
    (*copy)[length] = '\0';
    return mpi_check(MPI_Bcast(*copy, (int)length, MPI_CHAR, 0, writer->comm), writer->path,
                     "MPI_Bcast of a text attribute");
}

/* Collective. Give every rank rank 0's header, provenance strings and the
 * slowest rank's phase times. */
static sgk_status share_metadata(nc_writer *writer, const sgk_config *config,
                                 const sgk_dataset *data, const sgk_results *results,
                                 const sgk_grid *grid, const sgk_run_info *info)
{
    const char *sources[N_INFO] = {info->config_ini, info->command_line, info->start_time,
                                   info->host};
    int k;

    fill_header(&writer->header, config, data, results, writer->analysis, grid);
    SGK_CHECK(mpi_check(MPI_Bcast(&writer->header, (int)(sizeof writer->header / sizeof(int64_t)),
                                  MPI_INT64_T, 0, writer->comm),
                        writer->path, "MPI_Bcast of the file header"));
    for (k = 0; k < N_INFO; k++)
        SGK_CHECK(broadcast_string(writer, sources[k], &writer->info[k]));
    return mpi_check(MPI_Allreduce(results->phase_seconds, writer->phase_seconds, SGK_N_PHASES,
                                   MPI_DOUBLE, MPI_MAX, writer->comm),
                     writer->path, "MPI_Allreduce of the phase times");
}

/* Check that this rank's inputs match rank 0's header; a mismatch would make the
 * ranks define different files. rank_k is skipped because only rank 0 has the
 * retrieval lists. */
static sgk_status check_header(const nc_writer *writer, const sgk_config *config,
                               const sgk_dataset *data, const sgk_results *results,
                               const sgk_grid *grid)
{
    shared_header mine;
    int d;

    fill_header(&mine, config, data, results, writer->analysis, grid);
    for (d = 0; d < N_DIMS; d++)
        if (d != DIM_RANK_K && mine.dim_length[d] != writer->header.dim_length[d])
            return sgk_error(SGK_ERR_USAGE,
                             "writing %s: rank %d has dimension %s = %lld but rank 0 has %lld",
                             writer->path, writer->rank, dim_names[d],
                             (long long)mine.dim_length[d],
                             (long long)writer->header.dim_length[d]);
    if (writer->header.present[VAR_SGK] != mine.present[VAR_SGK])
        return sgk_error(SGK_ERR_USAGE, "writing %s: rank 0 and rank %d disagree on whether sgk "
                         "was computed", writer->path, writer->rank);
    if (writer->header.present[VAR_EIGENVECTORS] != mine.present[VAR_EIGENVECTORS])
        return sgk_error(SGK_ERR_USAGE, "writing %s: rank 0 and rank %d disagree on whether the "
                         "eigenvectors are stored", writer->path, writer->rank);
    if (writer->header.compression < 0 || writer->header.compression > 9)
        return sgk_error(SGK_ERR_USAGE, "writing %s: [output] compression = %lld, expected a "
                         "deflate level from 0 (none) to 9", writer->path,
                         (long long)writer->header.compression);
    return SGK_OK;
}

static sgk_status put_text_attribute(const nc_writer *writer, int varid, const char *name,
                                     const char *value)
{
    char what[128];

    snprintf(what, sizeof what, "writing attribute %s", name);
    return nc_check(nc_put_att_text(writer->ncid, varid, name, strlen(value), value),
                    writer->path, what);
}

static sgk_status define_variable(nc_writer *writer, int v)
{
    const var_spec *spec = &var_specs[v];
    int gan = writer->header.dim_length[DIM_REAL] > 0 && gan_texts[v].long_name != NULL;
    const char *long_name = gan ? gan_texts[v].long_name : spec->long_name;
    const char *description = gan ? gan_texts[v].description : spec->description;
    int dimids[3], d, ncid = writer->ncid;
    char what[160];

    for (d = 0; d < spec->n_dims; d++) dimids[d] = writer->dimids[spec->dims[d]];
    snprintf(what, sizeof what, "defining variable %s", spec->name);
    SGK_CHECK(nc_check(nc_def_var(ncid, spec->name, spec->type, spec->n_dims, dimids,
                                  &writer->varids[v]),
                       writer->path, what));
    SGK_CHECK(put_text_attribute(writer, writer->varids[v], "long_name", long_name));
    if (spec->units)
        SGK_CHECK(put_text_attribute(writer, writer->varids[v], "units", spec->units));
    return put_text_attribute(writer, writer->varids[v], "description", description);
}

/* Chunk a block-cyclic variable (sgk or eigenvectors) in block_size x block_size
 * tiles aligned with the ScaLAPACK blocks, cut to the dimensions, so each block a
 * rank writes fills exactly one chunk and no chunk is shared between ranks. Every
 * element is written, so the fill pass is skipped. With [output] compression > 0
 * each chunk is shuffled and deflated at that level. */
static sgk_status define_block_cyclic_storage(const nc_writer *writer, int v)
{
    /* A 3-D variable (level_sgk) stacks matrices along its first dimension, one chunk
     * layer per matrix. */
    const int layered = var_specs[v].n_dims == 3;
    const int64_t rows = writer->header.dim_length[var_specs[v].dims[layered]];
    const int64_t cols = writer->header.dim_length[var_specs[v].dims[layered + 1]];
    const int64_t nb = writer->header.block_size;
    size_t chunk[3] = { 1, 1, 1 };
    int varid = writer->varids[v];
    char what[128];

    chunk[layered] = (size_t)(nb < rows ? nb : rows);
    chunk[layered + 1] = (size_t)(nb < cols ? nb : cols);
    snprintf(what, sizeof what, "setting the chunk shape of variable %s", var_specs[v].name);
    SGK_CHECK(nc_check(nc_def_var_chunking(writer->ncid, varid, NC_CHUNKED, chunk), writer->path,
                       what));
    snprintf(what, sizeof what, "switching off the fill value of variable %s", var_specs[v].name);
    SGK_CHECK(nc_check(nc_def_var_fill(writer->ncid, varid, NC_NOFILL, NULL), writer->path, what));
    if (writer->header.compression == 0) return SGK_OK;

    if (nc_inq_filter_avail(writer->ncid, H5Z_FILTER_DEFLATE) != NC_NOERR)
        return sgk_error(SGK_ERR_IO, "writing %s: [output] compression = %lld needs the deflate "
                         "filter, which this netCDF/HDF5 build lacks; set compression = 0",
                         writer->path, (long long)writer->header.compression);
    snprintf(what, sizeof what, "setting deflate level %lld on variable %s",
             (long long)writer->header.compression, var_specs[v].name);
    return nc_check(nc_def_var_deflate(writer->ncid, varid, 1, 1,
                                       (int)writer->header.compression),
                    writer->path, what);
}

static sgk_status put_double_attribute(const nc_writer *writer, int v, const char *name,
                                       double value)
{
    char what[128];

    snprintf(what, sizeof what, "writing attribute %s:%s", var_specs[v].name, name);
    return nc_check(nc_put_att_double(writer->ncid, writer->varids[v], name, NC_DOUBLE, 1, &value),
                    writer->path, what);
}

/* Attributes of the analysis variables that carry run values: the solver and its
 * residual check, the tolerance, the pseudo-inverse rank and the error measure. */
static sgk_status define_analysis_attributes(const nc_writer *writer)
{
    const shared_header *header = &writer->header;
    const long long retained = (long long)header->n_retained;
    const char *kind = sgk_error_kind_name((sgk_error_kind)header->error_kind);
    const char *solver = header->dim_length[DIM_EIG] < header->dim_length[DIM_TRAIN]
                             ? "ScaLAPACK PDSYEVR, largest eigenpairs"
                             : "ScaLAPACK PDSYEVD, all eigenpairs";
    static const int error_vars[3] = {VAR_POINT_ERROR, VAR_TEST_ERROR_MEAN,
                                      VAR_TEST_ERROR_REPLICA};

    SGK_CHECK(put_text_attribute(writer, writer->varids[VAR_EIGENVALUES], "solver", solver));
    SGK_CHECK(put_double_attribute(writer, VAR_EIGENVALUES, "max_residual",
                                   bits_double(header->eigen_residual_bits)));
    if (header->present[VAR_NULL_SPACE_ENERGY])
        SGK_CHECK(put_double_attribute(writer, VAR_NULL_SPACE_ENERGY, "tolerance",
                                       bits_double(header->tolerance_bits)));
    SGK_CHECK(put_double_attribute(writer, VAR_MEMORY_RESIDUAL, "tolerance",
                                   bits_double(header->tolerance_bits)));
    SGK_CHECK(nc_check(nc_put_att_longlong(writer->ncid, writer->varids[VAR_MEMORY_RESIDUAL],
                                           "retained_eigenpairs", NC_INT64, 1, &retained),
                       writer->path, "writing attribute memory_residual:retained_eigenpairs"));
    for (int e = 0; e < 3; e++)
        if (header->present[error_vars[e]])
            SGK_CHECK(put_text_attribute(writer, writer->varids[error_vars[e]], "error_kind",
                                         kind));
    return SGK_OK;
}

static sgk_status define_split_flags(const nc_writer *writer)
{
    static const int flag_values[3] = {SGK_SPLIT_TRAIN, SGK_SPLIT_TEST, SGK_SPLIT_OOD};
    int varid = writer->varids[VAR_SPLIT];

    SGK_CHECK(nc_check(nc_put_att_int(writer->ncid, varid, "flag_values", NC_INT, 3, flag_values),
                       writer->path, "writing attribute split:flag_values"));
    return put_text_attribute(writer, varid, "flag_meanings", "train test ood");
}

static sgk_status define_global_attributes(const nc_writer *writer)
{
    const shared_header *header = &writer->header;
    const unsigned long long seeds[2] = {(uint64_t)header->data_seed,
                                         (uint64_t)header->ensemble_seed};
    const int n_ranks = (int)header->n_ranks, block_size = (int)header->block_size;
    int ncid = writer->ncid, phase;
    char text[64];

    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "Conventions", "CF-1.8"));
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "program", "sgk-ensemble"));
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "version", sgk_version()));
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "configuration", writer->info[INFO_CONFIG]));
    SGK_CHECK(nc_check(nc_put_att_ulonglong(ncid, NC_GLOBAL, "data_seed", NC_UINT64, 1, &seeds[0]),
                       writer->path, "writing attribute data_seed"));
    SGK_CHECK(nc_check(nc_put_att_ulonglong(ncid, NC_GLOBAL, "ensemble_seed", NC_UINT64, 1,
                                            &seeds[1]),
                       writer->path, "writing attribute ensemble_seed"));
    SGK_CHECK(nc_check(nc_put_att_int(ncid, NC_GLOBAL, "n_ranks", NC_INT, 1, &n_ranks),
                       writer->path, "writing attribute n_ranks"));
    snprintf(text, sizeof text, "%lldx%lld", (long long)header->n_prow, (long long)header->n_pcol);
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "process_grid", text));
    SGK_CHECK(nc_check(nc_put_att_int(ncid, NC_GLOBAL, "block_size", NC_INT, 1, &block_size),
                       writer->path, "writing attribute block_size"));

    /* Seconds of wall-clock time, the maximum over ranks. */
    for (phase = 0; phase < SGK_N_PHASES; phase++) {
        snprintf(text, sizeof text, "wall_time_%s", sgk_phase_name(phase));
        SGK_CHECK(nc_check(nc_put_att_double(ncid, NC_GLOBAL, text, NC_DOUBLE, 1,
                                             &writer->phase_seconds[phase]),
                           writer->path, "writing a wall_time attribute"));
    }
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "host", writer->info[INFO_HOST]));
    SGK_CHECK(put_text_attribute(writer, NC_GLOBAL, "start_time", writer->info[INFO_START_TIME]));
    return put_text_attribute(writer, NC_GLOBAL, "command_line", writer->info[INFO_COMMAND_LINE]);
}

/* Define every dimension, variable and attribute. The same calls run on every
 * rank with the same arguments, as parallel HDF5 requires. */
static sgk_status define_file(nc_writer *writer)
{
    int d, v;
    char what[96];

    for (d = 0; d < N_DIMS; d++) {
        /* Only eig, rank_k and the GAN dimensions can be 0: no spectrum, no retrieval
         * lists, or not a GAN run. */
        if (writer->header.dim_length[d] == 0) continue;
        snprintf(what, sizeof what, "defining dimension %s", dim_names[d]);
        SGK_CHECK(nc_check(nc_def_dim(writer->ncid, dim_names[d],
                                      (size_t)writer->header.dim_length[d], &writer->dimids[d]),
                           writer->path, what));
    }
    for (v = 0; v < N_VARS; v++)
        if (writer->header.present[v]) SGK_CHECK(define_variable(writer, v));
    SGK_CHECK(define_split_flags(writer));
    if (writer->header.present[VAR_SGK]) SGK_CHECK(define_block_cyclic_storage(writer, VAR_SGK));
    if (writer->header.present[VAR_EIGENVECTORS])
        SGK_CHECK(define_block_cyclic_storage(writer, VAR_EIGENVECTORS));
    if (writer->header.present[VAR_LEVEL_SGK])
        SGK_CHECK(define_block_cyclic_storage(writer, VAR_LEVEL_SGK));
    if (writer->header.present[VAR_MEMORY_RESIDUAL]) SGK_CHECK(define_analysis_attributes(writer));
    return define_global_attributes(writer);
}

static int is_block_cyclic(int v)
{
    return v == VAR_SGK || v == VAR_EIGENVECTORS || v == VAR_LEVEL_SGK;
}

/* Set the parallel access mode of every variable. It is independent, because rank 0
 * writes the small arrays alone and write_block_cyclic() explains the choice for
 * sgk. Compressed sgk and eigenvectors are the exception and get collective access,
 * because parallel HDF5 writes filtered datasets only collectively (netCDF 4.9.0
 * rejects independent access to them with NC_EINVAL). Every rank makes the same
 * calls. */
static sgk_status set_access_modes(const nc_writer *writer)
{
    int v, mode;
    char what[96];

    for (v = 0; v < N_VARS; v++) {
        if (!writer->header.present[v]) continue;
        mode = is_block_cyclic(v) && writer->header.compression > 0 ? NC_COLLECTIVE
                                                                    : NC_INDEPENDENT;
        snprintf(what, sizeof what, "setting the parallel access mode of variable %s",
                 var_specs[v].name);
        SGK_CHECK(nc_check(nc_var_par_access(writer->ncid, writer->varids[v], mode),
                           writer->path, what));
    }
    return SGK_OK;
}

static sgk_status put_double(const nc_writer *writer, int v, const double *values)
{
    char what[96];

    snprintf(what, sizeof what, "writing variable %s", var_specs[v].name);
    return nc_check(nc_put_var_double(writer->ncid, writer->varids[v], values), writer->path, what);
}

/* Write the label variable; a dataset without labels gets -1 everywhere. */
static sgk_status put_labels(const nc_writer *writer, const sgk_dataset *data)
{
    int *labels;
    long i;
    sgk_status status;

    if (data->label) {
        return nc_check(nc_put_var_int(writer->ncid, writer->varids[VAR_LABEL], data->label),
                        writer->path, "writing variable label");
    }
    labels = malloc((size_t)data->n_samples * sizeof *labels);
    if (!labels)
        return sgk_error(SGK_ERR_IO, "writing %s: out of memory for %ld labels", writer->path,
                         data->n_samples);
    for (i = 0; i < data->n_samples; i++) labels[i] = -1;
    status = nc_check(nc_put_var_int(writer->ncid, writer->varids[VAR_LABEL], labels),
                      writer->path, "writing variable label");
    free(labels);
    return status;
}

/* Rank 0 only. Write the analysis variables except the eigenvectors. */
static sgk_status write_analysis_arrays(const nc_writer *writer, const sgk_analysis *analysis)
{
    const int64_t *present = writer->header.present;
    const sgk_generalization *g = &analysis->generalization;

    if (present[VAR_TARGET_COEFF]) {
        SGK_CHECK(put_double(writer, VAR_TARGET_COEFF, analysis->target_coeff));
        SGK_CHECK(put_double(writer, VAR_CAPTURED_ENERGY, analysis->captured_energy));
        SGK_CHECK(put_double(writer, VAR_NULL_SPACE_ENERGY, analysis->null_space_energy));
        SGK_CHECK(put_double(writer, VAR_REMAINING_ENERGY, analysis->remaining_energy));
    }
    SGK_CHECK(put_double(writer, VAR_EFFECTIVE_RANK, &analysis->effective_rank));
    if (present[VAR_ALIGNMENT]) {
        SGK_CHECK(put_double(writer, VAR_ALIGNMENT, analysis->alignment));
        SGK_CHECK(put_double(writer, VAR_ALIGNMENT_CENTERED, analysis->alignment_centered));
    }
    SGK_CHECK(put_double(writer, VAR_MEMORY_RESIDUAL, analysis->memory_residual));
    if (present[VAR_POINT_ERROR]) SGK_CHECK(put_double(writer, VAR_POINT_ERROR, g->point_error));
    if (present[VAR_TEST_ERROR_MEAN])
        SGK_CHECK(put_double(writer, VAR_TEST_ERROR_MEAN, &g->test_error_mean));
    if (present[VAR_TEST_ERROR_REPLICA])
        SGK_CHECK(put_double(writer, VAR_TEST_ERROR_REPLICA, g->test_error_replica));
    if (present[VAR_RESIDUAL_ERROR_CORRELATION])
        SGK_CHECK(put_double(writer, VAR_RESIDUAL_ERROR_CORRELATION,
                             &analysis->residual_error_correlation));
    return SGK_OK;
}

/* Rank 0 only. Write the probe kernels and the kernel-evolution metrics. */
static sgk_status write_evolution_arrays(const nc_writer *writer, const sgk_results *results)
{
    const sgk_evolution *e = &results->evolution;

    SGK_CHECK(nc_check(nc_put_var_long(writer->ncid, writer->varids[VAR_PROBE_INDEX],
                                       results->probe_index),
                       writer->path, "writing variable probe_index"));
    SGK_CHECK(put_double(writer, VAR_PROBE_KERNEL, results->probe_mean));
    SGK_CHECK(put_double(writer, VAR_NTK_TRACE, e->trace));
    SGK_CHECK(put_double(writer, VAR_NTK_FROBENIUS, e->frobenius));
    SGK_CHECK(put_double(writer, VAR_NTK_ALIGNMENT, e->alignment));
    SGK_CHECK(put_double(writer, VAR_NTK_ALIGNMENT_CENTERED, e->alignment_centered));
    SGK_CHECK(put_double(writer, VAR_NTK_DISTANCE, e->distance));
    SGK_CHECK(put_double(writer, VAR_NTK_VELOCITY, e->velocity));
    SGK_CHECK(put_double(writer, VAR_NTK_EFFECTIVE_RANK, e->effective_rank));
    SGK_CHECK(put_double(writer, VAR_NTK_SPREAD, e->spread));
    if (writer->header.present[VAR_NTK_TOP_EIGENVALUES])
        SGK_CHECK(put_double(writer, VAR_NTK_TOP_EIGENVALUES, e->top_eigenvalues));
    return SGK_OK;
}

/* Rank 0 only. Write the small arrays of the denoise task. */
static sgk_status write_denoise_arrays(const nc_writer *writer, const sgk_denoise_results *d)
{
    SGK_CHECK(put_double(writer, VAR_NOISE_LEVEL, d->noise_level));
    SGK_CHECK(put_double(writer, VAR_LEVEL_TIME, d->level_time));
    SGK_CHECK(put_double(writer, VAR_LEVEL_TRACE, d->level_trace));
    if (writer->header.present[VAR_LEVEL_EIGENVALUES])
        SGK_CHECK(put_double(writer, VAR_LEVEL_EIGENVALUES, d->level_eigenvalues));
    SGK_CHECK(put_double(writer, VAR_LOCALITY_DISTANCE, d->bin_center));
    SGK_CHECK(put_double(writer, VAR_LOCALITY_COUNT, d->bin_count));
    SGK_CHECK(put_double(writer, VAR_LOCALITY_PROFILE, d->profile));
    SGK_CHECK(put_double(writer, VAR_LOCALITY_PROFILE_NORMALIZED, d->profile_normalized));
    return put_double(writer, VAR_LOCALITY_WIDTH, d->width);
}

/* Rank 0 only. Write every variable except the block-cyclic ones (sgk and the
 * eigenvectors). Their access is independent, so the other ranks go on to write
 * their blocks meanwhile, or wait in the first collective write of a compressed
 * sgk. */
static sgk_status write_small_arrays(const nc_writer *writer, const sgk_dataset *data,
                                     const sgk_results *results)
{
    const int64_t *present = writer->header.present;

    SGK_CHECK(put_double(writer, VAR_X, data->x));
    if (present[VAR_Y]) SGK_CHECK(put_double(writer, VAR_Y, data->y));
    SGK_CHECK(nc_check(nc_put_var_int(writer->ncid, writer->varids[VAR_SPLIT], data->split),
                       writer->path, "writing variable split"));
    SGK_CHECK(put_labels(writer, data));
    SGK_CHECK(nc_check(nc_put_var_long(writer->ncid, writer->varids[VAR_CHECKPOINT_STEP],
                                       results->checkpoint_step),
                       writer->path, "writing variable checkpoint_step"));
    SGK_CHECK(put_double(writer, VAR_CHECKPOINT_TIME, results->checkpoint_time));
    SGK_CHECK(put_double(writer, VAR_QUADRATURE_WEIGHT, results->quadrature_weight));
    if (present[VAR_LOSS_TRAIN]) SGK_CHECK(put_double(writer, VAR_LOSS_TRAIN, results->loss_train));
    if (present[VAR_LOSS_TEST]) SGK_CHECK(put_double(writer, VAR_LOSS_TEST, results->loss_test));
    if (present[VAR_F_MEAN]) SGK_CHECK(put_double(writer, VAR_F_MEAN, results->f_mean));
    if (present[VAR_F_VAR]) SGK_CHECK(put_double(writer, VAR_F_VAR, results->f_var));
    if (present[VAR_EIGENVALUES])
        SGK_CHECK(put_double(writer, VAR_EIGENVALUES, writer->analysis
                                                          ? writer->analysis->eigenvalues
                                                          : results->eigenvalues));
    if (present[VAR_DRIFT]) SGK_CHECK(put_double(writer, VAR_DRIFT, results->drift));
    if (present[VAR_REMAINDER]) SGK_CHECK(put_double(writer, VAR_REMAINDER, results->remainder));
    if (present[VAR_KERNEL_MACHINE])
        SGK_CHECK(put_double(writer, VAR_KERNEL_MACHINE, results->kernel_machine));
    if (present[VAR_RETRIEVAL_INDEX])
        SGK_CHECK(nc_check(nc_put_var_int(writer->ncid, writer->varids[VAR_RETRIEVAL_INDEX],
                                          results->retrieval_index),
                           writer->path, "writing variable retrieval_index"));
    if (present[VAR_RETRIEVAL_WEIGHT])
        SGK_CHECK(put_double(writer, VAR_RETRIEVAL_WEIGHT, results->retrieval_weight));
    if (writer->analysis) SGK_CHECK(write_analysis_arrays(writer, writer->analysis));
    if (present[VAR_REPLICA_DROPPED])
        SGK_CHECK(nc_check(nc_put_var_int(writer->ncid, writer->varids[VAR_REPLICA_DROPPED],
                                          results->replica_dropped),
                           writer->path, "writing variable replica_dropped"));
    if (present[VAR_PROBE_INDEX]) SGK_CHECK(write_evolution_arrays(writer, results));
    if (present[VAR_NOISE_LEVEL]) SGK_CHECK(write_denoise_arrays(writer, &results->denoise));
    if (present[VAR_REAL_X]) SGK_CHECK(put_double(writer, VAR_REAL_X, results->gan.real_x));
    if (present[VAR_GENERATED])
        SGK_CHECK(put_double(writer, VAR_GENERATED, results->f_replica_final));
    if (present[VAR_DISC_GRID]) {
        SGK_CHECK(put_double(writer, VAR_DISC_GRID, results->gan.disc_grid));
        SGK_CHECK(put_double(writer, VAR_DISC_VALUE, results->gan.disc_value));
        SGK_CHECK(put_double(writer, VAR_DISC_GRADIENT, results->gan.disc_gradient));
    }
    return SGK_OK;
}

static int local_block_count(int local_extent, int nb)
{
    return (local_extent + nb - 1) / nb;
}

/* Number of this rank's local block columns that hold columns below n_cols. The
 * first global column of local block column bj grows with bj, so these are the
 * first ones. */
static int written_column_blocks(const sgk_dmatrix *matrix, long n_cols, const sgk_grid *grid)
{
    const int nb = matrix->nb;
    const int col_blocks = local_block_count(matrix->local_cols, nb);
    int bj = 0;

    while (bj < col_blocks && ((long)bj * grid->n_pcol + grid->my_pcol) * nb < n_cols) bj++;
    return bj;
}

/* Write local block (bi, bj) of `matrix`, cut to the first n_cols columns, into
 * variable v through `tile`, a buffer of nb x nb doubles; into layer `layer` of a 3-D
 * variable when layer >= 0. */
static sgk_status put_block(const nc_writer *writer, int v, const sgk_dmatrix *matrix,
                            long n_cols, const sgk_grid *grid, long layer, int bi, int bj,
                            double *tile)
{
    /* Local block (bi, bj) starts at local (bi * nb, bj * nb) and is global block
     * (bi * n_prow + my_prow, bj * n_pcol + my_pcol). */
    const int nb = matrix->nb;
    const int i0 = bi * nb, j0 = bj * nb;
    const int rows = matrix->local_rows - i0 < nb ? matrix->local_rows - i0 : nb;
    const long first_col = ((long)bj * grid->n_pcol + grid->my_pcol) * nb;
    int cols = matrix->local_cols - j0 < nb ? matrix->local_cols - j0 : nb;
    size_t start[3], count[3];
    int r, c, at = layer >= 0;
    char what[96];

    if (first_col + cols > n_cols) cols = (int)(n_cols - first_col);

    /* The local array is column-major and the file row-major. */
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            tile[(size_t)r * cols + c] =
                matrix->local[(size_t)(i0 + r) + (size_t)(j0 + c) * matrix->lld];
    start[0] = (size_t)layer;
    count[0] = 1;
    start[at] = ((size_t)bi * grid->n_prow + grid->my_prow) * nb;
    start[at + 1] = (size_t)first_col;
    count[at] = (size_t)rows;
    count[at + 1] = (size_t)cols;
    snprintf(what, sizeof what, "writing variable %s", var_specs[v].name);
    return nc_check(nc_put_vara_double(writer->ncid, writer->varids[v], start, count, tile),
                    writer->path, what);
}

/* Collective when writer->header.compression > 0. Write this rank's blocks of the
 * block-cyclic matrix into variable v (sgk, or the first n_cols columns into
 * eigenvectors), one nc_put_vara call per local block. Uncompressed variables use
 * independent access.
 *
 * Independent access was chosen over collective access padded with zero-count
 * calls for two reasons. First, with collective access a rank whose call fails
 * inside netCDF before H5Dwrite (a bad start or count, for example) leaves the
 * other ranks waiting in the collective H5Dwrite. This hang was observed here with
 * a deliberately wrong start index. With independent access every rank returns,
 * and agree_status() reports the error. Second, independent access was as fast or
 * faster in every case measured. The setup was Debian bookworm (netCDF 4.9.0,
 * HDF5 1.10.8, Open MPI 4.1.4) on 2 cores and a local disk, timing the best of 3
 * calls of sgk_output_write. For N = 4000 and block size 64 it took 0.42 s against
 * 1.50 s at 2 ranks, and 0.32 s against 0.97 s at 4 ranks. Both modes wrote correct files, also when some ranks
 * hold no block.
 *
 * Parallel HDF5 writes compressed (filtered) variables only with collective access,
 * so with compression every rank makes the same number of nc_put_vara calls: the
 * maximum block count over the ranks, the missing ones with count 0, which netCDF
 * 4.9.0 still passes to H5Dwrite with an empty selection.
 * NOTE: the hang described above remains possible in that mode. The starts and
 * counts are computed here from the grid, so a rank-local netCDF failure would
 * need a library fault or memory exhaustion inside netCDF. */
static sgk_status write_block_cyclic(const nc_writer *writer, int v, const sgk_dmatrix *matrix,
                                     long n_cols, long layer, const sgk_grid *grid)
{
    const int collective = writer->header.compression > 0;
    const int nb = matrix->nb;
    const int row_blocks = local_block_count(matrix->local_rows, nb);
    const int col_blocks = written_column_blocks(matrix, n_cols, grid);
    const long n_blocks = (long)row_blocks * col_blocks;
    long n_calls = n_blocks, k;
    double *tile = NULL;
    sgk_status status = SGK_OK;

    if (n_blocks > 0) {
        tile = malloc((size_t)nb * (size_t)nb * sizeof *tile);
        if (!tile)
            status = sgk_error(SGK_ERR_IO, "writing %s: out of memory for a %d x %d tile of %s",
                               writer->path, nb, nb, var_specs[v].name);
    }
    if (collective) {
        /* Every rank enters the collective calls or none does, so a failed
         * allocation on one rank is shared first. */
        status = agree_status(writer->comm, writer->path, status);
        if (status == SGK_OK)
            status = mpi_check(MPI_Allreduce(&n_blocks, &n_calls, 1, MPI_LONG, MPI_MAX,
                                             writer->comm),
                               writer->path, "MPI_Allreduce of the block count");
    }
    if (status != SGK_OK) {
        free(tile);
        return status;
    }

    for (k = 0; k < n_calls; k++) {
        if (k < n_blocks && status == SGK_OK) {
            status = put_block(writer, v, matrix, n_cols, grid, layer, (int)(k / col_blocks),
                               (int)(k % col_blocks), tile);
        } else if (collective) {
            /* A valid start with count 0 selects nothing but still enters H5Dwrite.
             * A rank whose own write failed keeps making these calls, so the
             * others are not left waiting. */
            static const size_t origin[3] = {0, 0, 0}, nothing[3] = {0, 0, 0};
            const double unused = 0.0;
            sgk_status padding_status =
                nc_check(nc_put_vara_double(writer->ncid, writer->varids[v], origin, nothing,
                                            &unused),
                         writer->path, "writing an empty block of a compressed variable");

            if (status == SGK_OK) status = padding_status;
        } else {
            break;
        }
    }
    free(tile);
    return status;
}

/* Collective. Write the data of every defined variable, then agree on the result. */
static sgk_status write_data(const nc_writer *writer, const sgk_dataset *data,
                             const sgk_results *results, const sgk_grid *grid)
{
    sgk_status status = set_access_modes(writer);

    SGK_CHECK(agree_status(writer->comm, writer->path, status));
    if (writer->rank == 0) status = write_small_arrays(writer, data, results);
    if (writer->header.present[VAR_SGK]) {
        sgk_status kernel_status =
            write_block_cyclic(writer, VAR_SGK, &results->sgk, results->sgk.n, -1, grid);
        if (status == SGK_OK) status = kernel_status;
    }
    if (writer->header.present[VAR_EIGENVECTORS]) {
        sgk_status vector_status =
            write_block_cyclic(writer, VAR_EIGENVECTORS, &writer->analysis->vectors,
                               writer->analysis->n_eig, -1, grid);
        if (status == SGK_OK) status = vector_status;
    }
    for (int l = 0; writer->header.present[VAR_LEVEL_SGK] && l < results->denoise.n_levels; l++) {
        const sgk_dmatrix *level = &results->denoise.level_kernel[l];
        sgk_status level_status = write_block_cyclic(writer, VAR_LEVEL_SGK, level, level->n, l,
                                                     grid);
        if (status == SGK_OK) status = level_status;
    }
    return agree_status(writer->comm, writer->path, status);
}

/* Collective. Define the file and write its data, with `writer->ncid` open. The
 * caller closes the file. */
static sgk_status fill_file(nc_writer *writer, const sgk_dataset *data,
                            const sgk_results *results, const sgk_grid *grid)
{
    sgk_status status = define_file(writer);

    SGK_CHECK(agree_status(writer->comm, writer->path, status));
    status = nc_check(nc_enddef(writer->ncid), writer->path, "leaving define mode");
    SGK_CHECK(agree_status(writer->comm, writer->path, status));
    return write_data(writer, data, results, grid);
}

/* Explain a failed nc_create_par. netCDF reports a missing folder as "Permission
 * denied", so the folder is checked here to name the actual cause. */
static sgk_status create_error(const char *path, int rc)
{
    char folder[SGK_PATH_LEN];
    const char *slash = strrchr(path, '/');

    if (slash && (size_t)(slash - path) < sizeof folder) {
        memcpy(folder, path, (size_t)(slash - path));
        folder[slash - path] = '\0';
        if (folder[0] == '\0') strcpy(folder, "/");
    } else {
        strcpy(folder, ".");
    }
    if (access(folder, F_OK) != 0)
        return sgk_error(SGK_ERR_IO, "cannot create %s: folder %s does not exist; create it or "
                         "choose a path in an existing folder", path, folder);
    return sgk_error(SGK_ERR_IO, "cannot create %s (check that folder %s is writable): %s", path,
                     folder, nc_strerror(rc));
}

sgk_status sgk_output_write(const char *path, const sgk_config *config,
                            const sgk_dataset *data, const sgk_results *results,
                            const sgk_grid *grid, const sgk_run_info *info)
{
    return sgk_output_write_with_analysis(path, config, data, results, NULL, grid, info);
}

sgk_status sgk_output_write_with_analysis(const char *path, const sgk_config *config,
                                          const sgk_dataset *data, const sgk_results *results,
                                          const sgk_analysis *analysis, const sgk_grid *grid,
                                          const sgk_run_info *info)
{
    nc_writer writer;
    sgk_status status;
    int k, rc;

    /* 1. Check the inputs and share rank 0's metadata before the file exists, so a
     *    bad argument on any rank leaves no partial file behind. */
    memset(&writer, 0, sizeof writer);
    /* A GAN run's evaluation set is its latent points, not the data source. */
    if (results->gan.enabled) data = &results->gan.latent;
    writer.path = path;
    writer.comm = grid->comm;
    writer.rank = grid->rank;
    writer.analysis = analysis;
    status = check_inputs(path, data, results, grid, info);
    if (status == SGK_OK && analysis) status = check_analysis(path, data, results, analysis, grid);
    SGK_CHECK(agree_status(writer.comm, path, status));
    status = share_metadata(&writer, config, data, results, grid, info);
    if (status == SGK_OK) status = check_header(&writer, config, data, results, grid);
    status = agree_status(writer.comm, path, status);

    /* 2. Create the file on every rank. A missing folder makes nc_create_par
     *    fail on every rank (tested at 1 to 4 ranks).
     *    NOTE: if it failed on some ranks only, the others would keep the file
     *    open, because closing it is collective over all ranks. */
    if (status == SGK_OK) {
        rc = nc_create_par(path, NC_NETCDF4 | NC_CLOBBER, writer.comm, MPI_INFO_NULL,
                           &writer.ncid);
        status = rc == NC_NOERR ? SGK_OK : create_error(path, rc);
        status = agree_status(writer.comm, path, status);
    }

    /* 3. Define and write, then close on every rank even after a failure, because
     *    nc_close is collective. A file whose writing failed is removed, so no
     *    incomplete output is mistaken for a result. */
    if (status == SGK_OK) {
        sgk_status close_status;

        status = fill_file(&writer, data, results, grid);
        rc = status == SGK_OK ? nc_close(writer.ncid) : nc_abort(writer.ncid);
        close_status = agree_status(writer.comm, path, nc_check(rc, path, "closing the file"));
        if (status == SGK_OK) status = close_status;
        if (status != SGK_OK && writer.rank == 0) remove(path);
    }

    for (k = 0; k < N_INFO; k++) free(writer.info[k]);
    return status;
}
