/* Traced tangent-kernel blocks from layer factors.
 *
 * For a dense layer the gradient of f_o with respect to W_l is the outer product
 * c_l delta_{l,o} a_{l-1}^T, so the kernel contribution of layer l is the product of
 * two small Grams, <delta_l(x), delta_l(x')> (c_l^2 <a_{l-1}(x), a_{l-1}(x')> + beta_l^2),
 * and no N x P Jacobian is ever formed. Rows of K are processed in panels so that the
 * temporaries take PANEL_ROWS x fb->m doubles each, not fa->m x fb->m. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "sgk/tangent.h"

/* Rows of K per panel. Three panel buffers of N = 20000 columns take 123 MB. For
 * N = 3000 points of a 784-256-256-10 relu network on one core of the 2-core
 * development machine, panels of 64 and 256 rows and a single panel of all rows ran
 * equally fast within timing noise (about 1.3 to 2.7 s per Gram). */
enum { PANEL_ROWS = 256 };

static sgk_status check_factors(const sgk_mlp *net, const sgk_factors *factors,
                                const char *which)
{
    int n_layers = net->n_layers;

    if (factors->n_layers != n_layers || factors->n_outputs != net->dims[n_layers])
        return sgk_error(SGK_ERR_USAGE, "tangent factors %s have %d layers and %d outputs "
                         "but the network has %d and %d; compute them with this network",
                         which, factors->n_layers, factors->n_outputs, n_layers,
                         net->dims[n_layers]);
    for (int l = 0; l <= n_layers; l++)
        if (factors->dims[l] != net->dims[l])
            return sgk_error(SGK_ERR_USAGE, "tangent factors %s have width %d at layer %d "
                             "but the network has %d; compute them with this network",
                             which, factors->dims[l], l, net->dims[l]);
    if (factors->m < 0 || factors->m > factors->capacity)
        return sgk_error(SGK_ERR_USAGE, "tangent factors %s hold %d points but were "
                         "allocated for %d", which, factors->m, factors->capacity);
    return SGK_OK;
}

/* G = rows r0 .. r0 + rows - 1 of Fa times columns col0 .. col0 + cols - 1 of Fb^T,
 * where Fa and Fb are row-major with `width` columns and G has leading dimension ldg.
 * In the symmetric case (Fa == Fb, col0 == r0) only G[i][j] with j >= i is written:
 * dsyrk forms the upper triangle of the diagonal block and dgemm the block to its right. */
static void panel_gram(const double *Fa, const double *Fb, int width, int r0, int rows,
                       int col0, int cols, int symmetric, double *G, int ldg)
{
    const double *panel = Fa + (size_t)r0 * width;

    if (!symmetric) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, width, 1.0, panel,
                    width, Fb + (size_t)col0 * width, width, 0.0, G, ldg);
        return;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, rows, width, 1.0, panel, width,
                0.0, G, ldg);
    if (cols > rows)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols - rows, width, 1.0,
                    panel, width, Fb + (size_t)(col0 + rows) * width, width, 0.0, G + rows,
                    ldg);
}

/* target[i][j] += alpha * Gd[i][j] * (c2 * Ga[i][j] + b2) for j >= first(i), where
 * first(i) is i in the symmetric case and 0 otherwise. */
static void add_layer_term(int rows, int cols, int symmetric, double alpha, double c2,
                           double b2, const double *gram_delta, int ld_delta,
                           const double *gram_act, int ld_act, double *target, int ld_target)
{
    for (int i = 0; i < rows; i++) {
        const double *gd = gram_delta + (size_t)i * ld_delta;
        const double *ga = gram_act + (size_t)i * ld_act;
        double *t = target + (size_t)i * ld_target;

        for (int j = symmetric ? i : 0; j < cols; j++) t[j] += alpha * gd[j] * (c2 * ga[j] + b2);
    }
}

/* Add a panel's upper-triangle sums to both triangles of K: sum[i][j] with j >= i is
 * the entry (r0 + i, r0 + j). */
static void add_symmetric_panel(int r0, int rows, int cols, const double *sum, int ld_sum,
                                double *K, int ldk)
{
    for (int i = 0; i < rows; i++) {
        size_t row = (size_t)(r0 + i);

        for (int j = i; j < cols; j++) {
            size_t col = (size_t)(r0 + j);
            double value = sum[(size_t)i * ld_sum + j];

            K[row * ldk + col] += value;
            if (col != row) K[col * ldk + row] += value;
        }
    }
}

sgk_status sgk_tangent_gram(const sgk_mlp *net, const sgk_factors *fa, const sgk_factors *fb,
                            const double *input_gram, int ld_input, double alpha,
                            double *K, int ldk)
{
    int symmetric = (fa == fb);
    int n_outputs = net->dims[net->n_layers];
    int ma = fa->m;
    int mb = fb->m;
    int panel_rows;
    double *gram_delta = NULL;  /* panel x mb: <delta_l(x_i), delta_l(x_j)> */
    double *gram_act = NULL;    /* panel x mb: <a_{l-1}(x_i), a_{l-1}(x_j)> */
    double *sum = NULL;         /* panel x mb: symmetric case, upper triangle over layers */

    SGK_CHECK(check_factors(net, fa, "of the rows"));
    SGK_CHECK(check_factors(net, fb, "of the columns"));
    if (ma == 0 || mb == 0) return SGK_OK;
    if (ldk < mb)
        return sgk_error(SGK_ERR_USAGE, "kernel leading dimension %d is smaller than the "
                         "%d columns of the block", ldk, mb);
    if (input_gram && ld_input < mb)
        return sgk_error(SGK_ERR_USAGE, "input Gram leading dimension %d is smaller than "
                         "the %d columns of the block", ld_input, mb);

    panel_rows = ma < PANEL_ROWS ? ma : PANEL_ROWS;
    gram_delta = malloc(sizeof(double) * (size_t)panel_rows * mb);
    gram_act = malloc(sizeof(double) * (size_t)panel_rows * mb);
    if (symmetric) sum = malloc(sizeof(double) * (size_t)panel_rows * mb);
    if (!gram_delta || !gram_act || (symmetric && !sum)) {
        free(gram_delta);
        free(gram_act);
        free(sum);
        return sgk_error(SGK_ERR_IO, "out of memory for tangent-kernel panels of %d x %d "
                         "points", panel_rows, mb);
    }

    for (int r0 = 0; r0 < ma; r0 += panel_rows) {
        int rows = ma - r0 < panel_rows ? ma - r0 : panel_rows;
        int col0 = symmetric ? r0 : 0; /* the symmetric case needs columns >= rows only */
        int cols = mb - col0;
        double *target = symmetric ? sum : K + (size_t)r0 * ldk;
        int ld_target = symmetric ? mb : ldk;

        if (symmetric) memset(sum, 0, sizeof(double) * (size_t)rows * mb);
        for (int l = 1; l <= net->n_layers; l++) {
            int width_delta = n_outputs * net->dims[l];
            int width_act = net->dims[l - 1];
            double c = net->weight_scale[l - 1];
            double beta = net->bias_scale[l - 1];
            const double *act_gram = gram_act;
            int ld_act = mb;

            if (l == net->n_layers) {
                /* The output layer's sensitivities are an O x O identity per point, so
                 * their traced Gram is exactly O: no product over O^2 entries needed. */
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++) gram_delta[(size_t)i * mb + j] = n_outputs;
            } else {
                panel_gram(fa->delta[l - 1], fb->delta[l - 1], width_delta, r0, rows, col0,
                           cols, symmetric, gram_delta, mb);
            }
            if (l == 1 && input_gram) {
                act_gram = input_gram + (size_t)r0 * ld_input + col0;
                ld_act = ld_input;
            } else {
                panel_gram(fa->act[l - 1], fb->act[l - 1], width_act, r0, rows, col0, cols,
                           symmetric, gram_act, mb);
            }
            add_layer_term(rows, cols, symmetric, alpha, c * c, beta * beta, gram_delta, mb,
                           act_gram, ld_act, target, ld_target);
        }
        if (symmetric) add_symmetric_panel(r0, rows, cols, sum, mb, K, ldk);
    }

    free(gram_delta);
    free(gram_act);
    free(sum);
    return SGK_OK;
}

void sgk_tangent_gram_explicit(int ma, int mb, int n_outputs, long n_params,
                               const double *jac_a, const double *jac_b, double alpha,
                               double *K, int ldk)
{
    int row_stride = (int)(n_outputs * n_params);

    if (ma <= 0 || mb <= 0) return;
    /* The rows of output o are every O-th row starting at row o, a matrix with leading
     * dimension O * P, so each output's Gram is one dgemm accumulated into K. */
    for (int o = 0; o < n_outputs; o++)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ma, mb, (int)n_params, alpha,
                    jac_a + (size_t)o * n_params, row_stride, jac_b + (size_t)o * n_params,
                    row_stride, 1.0, K, ldk);
}

/* Jacobian rows of m points with every column p scaled by sqrt(P_p). */
static void scaled_jacobian(const sgk_mlp *net, const double *w, const double *x, int m,
                            const double *root_p, sgk_mlp_work *work, double *jacobian)
{
    long n_params = net->n_params;
    size_t rows = (size_t)m * net->dims[net->n_layers];

    sgk_mlp_jacobian(net, w, x, m, work, jacobian);
    for (size_t row = 0; row < rows; row++) {
        double *j = jacobian + row * n_params;
        for (long p = 0; p < n_params; p++) j[p] *= root_p[p];
    }
}

sgk_status sgk_tangent_gram_preconditioned(const sgk_mlp *net, const double *w,
                                           const double *x_a, int ma, const double *x_b, int mb,
                                           const double *preconditioner, double alpha,
                                           double *K, int ldk)
{
    int n_outputs = net->dims[net->n_layers];
    long n_params = net->n_params;
    int d = net->dims[0];
    /* Points per block, so that one block of Jacobian rows takes about 32 MB. */
    long chunk = (4L << 20) / ((long)n_outputs * n_params);
    double *root_p, *jac_a, *jac_b;
    sgk_mlp_work work;

    if (ma <= 0 || mb <= 0) return SGK_OK;
    if (chunk < 1) chunk = 1;
    if (chunk > ma && chunk > mb) chunk = ma > mb ? ma : mb;
    root_p = malloc(sizeof(double) * n_params);
    jac_a = malloc(sizeof(double) * chunk * n_outputs * n_params);
    jac_b = malloc(sizeof(double) * chunk * n_outputs * n_params);
    if (!root_p || !jac_a || !jac_b || sgk_mlp_work_alloc(net, (int)chunk, &work) != SGK_OK) {
        free(root_p);
        free(jac_a);
        free(jac_b);
        return sgk_error(SGK_ERR_IO, "out of memory for preconditioned Jacobian blocks of %ld "
                         "points x %ld parameters", chunk, n_params);
    }
    for (long p = 0; p < n_params; p++) root_p[p] = sqrt(preconditioner[p]);

    /* Theta_P(x, x') = sum_o (sqrt(P) .* J_o(x)) . (sqrt(P) .* J_o(x')), block by block. */
    for (int i0 = 0; i0 < ma; i0 += (int)chunk) {
        int rows = ma - i0 < chunk ? ma - i0 : (int)chunk;
        scaled_jacobian(net, w, x_a + (size_t)i0 * d, rows, root_p, &work, jac_a);
        for (int j0 = 0; j0 < mb; j0 += (int)chunk) {
            int cols = mb - j0 < chunk ? mb - j0 : (int)chunk;
            scaled_jacobian(net, w, x_b + (size_t)j0 * d, cols, root_p, &work, jac_b);
            sgk_tangent_gram_explicit(rows, cols, n_outputs, n_params, jac_a, jac_b, alpha,
                                      K + (size_t)i0 * ldk + j0, ldk);
        }
    }
    sgk_mlp_work_free(&work);
    free(root_p);
    free(jac_a);
    free(jac_b);
    return SGK_OK;
}
