/* Initial-weights file: the parameters of one MLP in NetCDF.
 *
 * For layers l = 1..L the file contains W<l> with shape (d_l, d_{l-1}) and b<l> with
 * shape (d_l), for example W1, b1, W2, b2. The values are the raw parameters W_l and
 * b_l of sgk/mlp.h. Under the NTK parametrization the forward pass multiplies them by
 * c_l and beta_l, so the file never contains those scales. Text attributes
 * `activation` and `parametrization` record the network the parameters belong to.
 * doc/weights.md describes the format for tools that write such files. */
#ifndef SGK_WEIGHTS_H
#define SGK_WEIGHTS_H

#include "sgk/mlp.h"
#include "sgk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read the parameters of `net` from the NetCDF file `path` into `w` (net->n_params
 * entries, in the layout of sgk/mlp.h). Variables of any numeric type are converted
 * to double. Serial: call it on one process and broadcast `w` when several need it.
 * Errors: SGK_ERR_IO when the file cannot be opened or read. SGK_ERR_DATA names the
 * variable for a missing W<l> or b<l>, a shape other than the network's (the message
 * gives both shapes), a W<L+1> or b<L+1> beyond the network's L layers, a non-numeric
 * or non-finite value, and `activation` or `parametrization` attributes that differ
 * from `net`. Files without those attributes are accepted. On error `w` may be
 * partly overwritten. */
sgk_status sgk_weights_read(const char *path, const sgk_mlp *net, double *w);

/* Write the parameters `w` of `net` to a new NetCDF-4 file `path`, replacing any
 * file of that name. Dimensions are d0..dL (the layer widths), and variables W<l>
 * and b<l> are double. Serial. Every failure is SGK_ERR_IO naming the path, and a
 * partly written file is removed. */
sgk_status sgk_weights_write(const char *path, const sgk_mlp *net, const double *w);

#ifdef __cplusplus
}
#endif
#endif
