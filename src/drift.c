#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drift.h"

static const double PI = 3.14159265358979323846264338327950288;

static int max_width(const sgk_mlp *net)
{
    int width = 0;

    for (int l = 0; l <= net->n_layers; l++)
        if (net->dims[l] > width) width = net->dims[l];
    return width;
}

sgk_status sgk_drift_alloc(const sgk_mlp *net, long n_samples, long n_train, int capacity,
                           sgk_drift *drift)
{
    int n_outputs = net->dims[net->n_layers];
    size_t d_max = (size_t)max_width(net);

    memset(drift, 0, sizeof *drift);
    drift->n_samples = n_samples;
    drift->n_train = n_train;
    drift->n_outputs = n_outputs;
    drift->capacity = capacity;
    drift->pair = calloc((size_t)n_samples * n_train * n_outputs, sizeof(double));
    drift->step = malloc(sizeof(double) * (size_t)n_samples * n_outputs * capacity);
    drift->product = malloc(sizeof(double) * (size_t)n_samples * n_outputs * capacity);
    drift->gram = malloc(sizeof(double) * (size_t)n_samples * capacity);
    drift->tangent = malloc(sizeof(double) * (size_t)n_samples * d_max);
    drift->vector = malloc(sizeof(double) * (d_max * d_max + d_max));
    if (!drift->pair || !drift->step || !drift->product || !drift->gram || !drift->tangent
        || !drift->vector) {
        sgk_drift_free(drift);
        return sgk_error(SGK_ERR_IO,
                         "out of memory for the drift of %ld evaluation points x %ld training "
                         "points x %d outputs (%.3g GB); set [kernel] drift = no or use fewer "
                         "points",
                         n_samples, n_train, n_outputs,
                         8e-9 * (double)n_samples * (double)n_train * n_outputs);
    }
    return SGK_OK;
}

void sgk_drift_free(sgk_drift *drift)
{
    free(drift->pair);
    free(drift->step);
    free(drift->product);
    free(drift->gram);
    free(drift->tangent);
    free(drift->vector);
    memset(drift, 0, sizeof *drift);
}

/* Residual-weighted sensitivities of the minibatch at layer l (B x d_l): what
 * sgk_mlp_backward left in its work buffers. */
static const double *batch_delta(const sgk_mlp *net, const sgk_mlp_work *work,
                                 const double *residual, int l)
{
    return l == net->n_layers ? residual : work->delta[l];
}

/* step[a][o][i] += sum_j delta_l(a, o, j) u_l(i, j) * (c_l^2 <a_{l-1}(a), a_{l-1}(i)> + beta_l^2):
 * the layer-factor form of J(x_a) J(x_i)^T r_i for layer l. */
static void add_layer_factored(sgk_drift *drift, const sgk_mlp *net, int l,
                               const sgk_factors *eval, const sgk_mlp_work *batch_work,
                               const double *residual, const long *batch, int batch_size,
                               const double *input_gram)
{
    long n = drift->n_samples;
    int n_outputs = drift->n_outputs;
    int d_out = net->dims[l];
    int d_in = net->dims[l - 1];
    double c2 = net->weight_scale[l - 1] * net->weight_scale[l - 1];
    double b2 = net->bias_scale[l - 1] * net->bias_scale[l - 1];
    const double *u = batch_delta(net, batch_work, residual, l);

    /* 1. product[(a, o), i] = <delta_l(a, o, .), u_l(i, .)>. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n * n_outputs), batch_size, d_out,
                1.0, eval->delta[l - 1], d_out, u, d_out, 0.0, drift->product, batch_size);

    /* 2. gram[a, i] = c^2 <a_{l-1}(a), a_{l-1}(i)> + beta^2, from the stored input Gram for
     *    the first layer, whose activations are the inputs. */
    if (l == 1 && input_gram != NULL) {
        for (long a = 0; a < n; a++)
            for (int i = 0; i < batch_size; i++)
                drift->gram[a * batch_size + i] = c2 * input_gram[a * n + batch[i]] + b2;
    } else {
        for (size_t k = 0; k < (size_t)n * batch_size; k++) drift->gram[k] = b2;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, batch_size, d_in, c2,
                    eval->act[l - 1], d_in, batch_work->a[l - 1], d_in, 1.0, drift->gram,
                    batch_size);
    }

    /* 3. Hadamard product into this step's contributions. */
    for (long a = 0; a < n; a++)
        for (int o = 0; o < n_outputs; o++) {
            double *row = drift->step + ((size_t)a * n_outputs + o) * batch_size;
            const double *p = drift->product + ((size_t)a * n_outputs + o) * batch_size;
            const double *g = drift->gram + (size_t)a * batch_size;
            for (int i = 0; i < batch_size; i++) row[i] += p[i] * g[i];
        }
}

/* The same contribution with a diagonal preconditioner P, which breaks the factorization:
 * for each batch point i, v = P .* (J(x_i)^T r_i) restricted to layer l, then the
 * Jacobian-vector product of every evaluation point with v. */
static void add_layer_preconditioned(sgk_drift *drift, const sgk_mlp *net, int l,
                                     const sgk_factors *eval, const sgk_mlp_work *batch_work,
                                     const double *residual, int batch_size,
                                     const double *preconditioner)
{
    long n = drift->n_samples;
    int n_outputs = drift->n_outputs;
    int d_out = net->dims[l];
    int d_in = net->dims[l - 1];
    double c = net->weight_scale[l - 1];
    double beta = net->bias_scale[l - 1];
    const double *p_w = preconditioner + net->w_offset[l - 1];
    const double *p_b = preconditioner + net->b_offset[l - 1];
    const double *u = batch_delta(net, batch_work, residual, l);
    double *v_w = drift->vector;                       /* d_out x d_in */
    double *v_b = drift->vector + (size_t)d_out * d_in; /* d_out */

    for (int i = 0; i < batch_size; i++) {
        const double *u_i = u + (size_t)i * d_out;
        const double *a_i = batch_work->a[l - 1] + (size_t)i * d_in;

        /* 1. v = P .* g_i for this layer: g_i[W][j][k] = c u_i[j] a_i[k], g_i[b][j] = beta u_i[j]. */
        for (int j = 0; j < d_out; j++) {
            for (int k = 0; k < d_in; k++)
                v_w[(size_t)j * d_in + k] = p_w[(size_t)j * d_in + k] * c * u_i[j] * a_i[k];
            v_b[j] = p_b[j] * beta * u_i[j];
        }

        /* 2. tangent[a][j] = c <v_w[j], a_{l-1}(a)> + beta v_b[j]: the change of h_l(x_a). */
        for (long a = 0; a < n; a++)
            for (int j = 0; j < d_out; j++) drift->tangent[a * d_out + j] = beta * v_b[j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, d_out, d_in, c,
                    eval->act[l - 1], d_in, v_w, d_in, 1.0, drift->tangent, d_out);

        /* 3. Through the evaluation points' sensitivities to the outputs. */
        for (long a = 0; a < n; a++)
            for (int o = 0; o < n_outputs; o++) {
                const double *delta = eval->delta[l - 1] + ((size_t)a * n_outputs + o) * d_out;
                const double *t = drift->tangent + (size_t)a * d_out;
                double sum = 0.0;
                for (int j = 0; j < d_out; j++) sum += delta[j] * t[j];
                drift->step[((size_t)a * n_outputs + o) * batch_size + i] += sum;
            }
    }
}

void sgk_drift_add_step(sgk_drift *drift, const sgk_mlp *net, const sgk_factors *eval,
                        const sgk_mlp_work *batch_work, const double *residual,
                        const long *batch, int batch_size, const double *input_gram,
                        const double *preconditioner, double scale)
{
    long n = drift->n_samples;
    int n_outputs = drift->n_outputs;

    memset(drift->step, 0, sizeof(double) * (size_t)n * n_outputs * batch_size);
    for (int l = 1; l <= net->n_layers; l++) {
        if (preconditioner == NULL)
            add_layer_factored(drift, net, l, eval, batch_work, residual, batch, batch_size,
                               input_gram);
        else
            add_layer_preconditioned(drift, net, l, eval, batch_work, residual, batch_size,
                                     preconditioner);
    }

    /* Scatter into the pair accumulator. A training point drawn twice in one minibatch
     * (impossible with sampling without replacement) would simply add twice. */
    for (long a = 0; a < n; a++)
        for (int o = 0; o < n_outputs; o++) {
            const double *row = drift->step + ((size_t)a * n_outputs + o) * batch_size;
            double *pair = drift->pair + (size_t)a * drift->n_train * n_outputs + o;
            for (int i = 0; i < batch_size; i++) pair[batch[i] * n_outputs] += scale * row[i];
        }
}

void sgk_drift_nodes(int count, double *nodes, double *weights)
{
    /* Newton iteration on the Legendre polynomial P_count, from the Chebyshev-like
     * initial guess; accurate to rounding for the small counts used here. */
    if (count == 1) {
        nodes[0] = 0.0;
        weights[0] = 1.0;
        return;
    }
    for (int k = 0; k < count; k++) {
        double x = cos(PI * (k + 0.75) / (count + 0.5));
        double derivative = 1.0;
        for (int iteration = 0; iteration < 100; iteration++) {
            double p0 = 1.0, p1 = x;
            for (int j = 2; j <= count; j++) {
                double p2 = ((2.0 * j - 1.0) * x * p1 - (j - 1.0) * p0) / j;
                p0 = p1;
                p1 = p2;
            }
            derivative = count * (x * p1 - p0) / (x * x - 1.0);
            double dx = p1 / derivative;
            x -= dx;
            if (fabs(dx) < 1e-16) break;
        }
        /* Map [-1, 1] to [0, 1]; the weights 2 / ((1 - x^2) P'(x)^2) halve. */
        nodes[count - 1 - k] = 0.5 * (1.0 + x);
        weights[count - 1 - k] = 1.0 / ((1.0 - x * x) * derivative * derivative);
    }
}
