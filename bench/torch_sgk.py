#!/usr/bin/env python3
"""Baseline for `make bench`: the sgk-ensemble job written with PyTorch's functorch.

It does the work that `sgk-ensemble` does with `[kernel] drift = yes` and
`path_nodes = 1`, in float64 as sgk-ensemble does, with explicit per-sample
Jacobians instead of layer factors:

- R replicas of a ReLU MLP (standard parametrization) trained by minibatch SGD on
  the loss |f - y|^2 / 2, minibatches drawn without replacement;
- every step k: the Jacobian J(x_a) at w_k of every evaluation point (vmap of
  jacrev), the per-sample gradients g_i = J(x_i)^T r_i of the minibatch (vmap of
  grad), and the drift pairs D(x_a, x_i) += (lr / B / R) J(x_a) g_i;
- at C checkpoints, step 0 and the last step included: the ensemble-mean output and
  the tangent kernel J J^T of all N points, traced over outputs and weighted by the
  trapezoid weight in diffusion time over R;
- at the end: the eigenvalues of K_train / n.

PyTorch 1.13 (Debian bookworm's python3-torch) has no torch.func. The
transforms then come from the functorch package that ships with it, and from
torch.func where that exists. The script prints its timing and two numbers to compare with
sgk-ensemble's log: the largest eigenvalue of K_train / n and the root mean square
drift on the test points.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch

try:
    from torch.func import grad, jacrev, vmap
    TRANSFORMS = "torch.func"
except ImportError:
    from functorch import grad, jacrev, vmap
    TRANSFORMS = "functorch"


def read_idx(path):
    """Return the array stored in an IDX file, gzip-compressed or plain."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    n_dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(n_dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def find_idx(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    sys.exit(f"torch_sgk.py: {stem}[.gz] not found in {folder}; pass --data FOLDER")


def load_points(folder, prefix, classes, count):
    """Return the first `count` examples of `classes` in a file pair, pixels / 255,
    with target -1 for the first class and +1 for the second (one output)."""
    images = read_idx(find_idx(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
    chosen = np.flatnonzero(np.isin(labels, classes))[:count]
    if len(chosen) < count:
        sys.exit(f"torch_sgk.py: {prefix} has only {len(chosen)} examples of classes {classes}")
    x = images[chosen].reshape(count, -1).astype(np.float64) / 255.0
    y = np.where(labels[chosen] == classes[0], -1.0, 1.0).reshape(count, 1)
    return x, y


def init_params(dims, generator):
    """W_l ~ N(0, gain / d_{l-1}) with gain 2 for ReLU layers and 1 for the last, b_l = 0."""
    params = []
    for l in range(1, len(dims)):
        gain = 1.0 if l == len(dims) - 1 else 2.0
        w = torch.randn(dims[l], dims[l - 1], generator=generator, dtype=torch.float64)
        params += [w * (gain / dims[l - 1]) ** 0.5, torch.zeros(dims[l], dtype=torch.float64)]
    return tuple(params)


def forward(params, x):
    """Outputs of one point (d_0,) or a batch (m, d_0)."""
    h = x
    n_layers = len(params) // 2
    for l in range(n_layers):
        h = h @ params[2 * l].T + params[2 * l + 1]
        if l < n_layers - 1:
            h = torch.relu(h)
    return h


def point_loss(params, x, y):
    """|f(x) - y|^2 / 2, whose gradient is J(x)^T r with r = f - y."""
    return 0.5 * torch.sum((forward(params, x) - y) ** 2)


# Per-sample transforms over the leading (point) axis; parameters are shared.
jacobians = vmap(jacrev(forward), in_dims=(None, 0))
gradients = vmap(grad(point_loss), in_dims=(None, 0, 0))


def flat(blocks, rows):
    """View each parameter block of a per-sample Jacobian as rows x (block size)."""
    return [b.reshape(rows, -1) for b in blocks]


def checkpoint_schedule(steps, count, lr):
    step = [int(round(c * steps / (count - 1))) for c in range(count)]
    time_ = [lr * s for s in step]
    weight = []
    for c in range(count):
        left = time_[c] - time_[c - 1] if c > 0 else 0.0
        right = time_[c + 1] - time_[c] if c < count - 1 else 0.0
        weight.append(0.5 * (left + right))
    return step, weight


class Timers:
    """Wall seconds and counts of the three kinds of work, for the per-unit means that
    extrapolate a shortened run to the full job."""

    def __init__(self):
        self.seconds = {"jacobian": 0.0, "kernel": 0.0, "step": 0.0}
        self.count = {"jacobian": 0, "kernel": 0, "step": 0}
        self._start = 0.0

    def start(self):
        self._start = time.perf_counter()

    def stop(self, kind):
        self.seconds[kind] += time.perf_counter() - self._start
        self.count[kind] += 1

    def mean(self, kind):
        return self.seconds[kind] / max(self.count[kind], 1)


def train_replica(replica, args, x_eval, y_train, dims, sums, timers):
    """Train one replica and add its weighted kernels, drift pairs and outputs to `sums`."""
    generator = torch.Generator().manual_seed(args.seed * 1000003 + replica)
    params = init_params(dims, generator)
    n_eval, n_outputs = x_eval.shape[0], dims[-1]
    rows = n_eval * n_outputs
    step_of, weight = checkpoint_schedule(args.steps, args.checkpoints, args.lr)
    next_checkpoint = 0
    drift_scale = args.lr / args.batch_size / args.replicas

    for step in range(args.steps + 1):
        # 1. Explicit Jacobians of every evaluation point at w_k: (N O) x P, in blocks.
        timers.start()
        jac_eval = flat(jacobians(params, x_eval), rows)
        timers.stop("jacobian")

        # 2. Checkpoint: outputs and the weighted, output-traced tangent kernel.
        if next_checkpoint < args.checkpoints and step_of[next_checkpoint] == step:
            timers.start()
            with torch.no_grad():
                sums["f_mean"][next_checkpoint] += forward(params, x_eval) / args.replicas
            full = sum(block @ block.T for block in jac_eval)
            traced = full.reshape(n_eval, n_outputs, n_eval, n_outputs).diagonal(0, 1, 3).sum(-1)
            sums["kernel"] += (weight[next_checkpoint] / args.replicas) * traced
            next_checkpoint += 1
            timers.stop("kernel")
        if step == args.steps:
            break

        # 3. Minibatch and per-sample gradients g_i = J(x_i)^T r_i at w_k.
        timers.start()
        batch = torch.randperm(args.n_train, generator=generator)[: args.batch_size]
        per_sample = gradients(params, x_eval[batch], y_train[batch])
        g = flat(per_sample, args.batch_size)

        # 4. Drift pairs: D(x_a, x_i)[o] += lr / (B R) <J_o(x_a), g_i>.
        product = sum(j @ gb.T for j, gb in zip(jac_eval, g))
        sums["pair"][:, batch, :] += (
            drift_scale * product.reshape(n_eval, n_outputs, -1).transpose(1, 2))

        # 5. SGD step with the minibatch mean gradient.
        params = tuple(p - args.lr * gp.mean(0) for p, gp in zip(params, per_sample))
        timers.stop("step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX files")
    parser.add_argument("--classes", default="0,1", help="two class labels")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--widths", default="128,128", help="hidden-layer widths")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--checkpoints", type=int, default=11)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--estimate-for", metavar="R,T,C",
                        help="also print the time of a job with R replicas, T steps and C "
                        "checkpoints, from this run's mean time per Jacobian, checkpoint "
                        "kernel and step (each repeats with the same sizes)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    classes = [int(c) for c in args.classes.split(",")]
    x_train, y_train = load_points(args.data, "train", classes, args.n_train)
    x_test, y_test = load_points(args.data, "t10k", classes, args.n_test)
    x_eval = torch.from_numpy(np.vstack([x_train, x_test]))
    y_train = torch.from_numpy(y_train)
    dims = [x_eval.shape[1]] + [int(w) for w in args.widths.split(",")] + [1]
    n_eval, n_outputs = x_eval.shape[0], dims[-1]
    data_seconds = time.perf_counter() - start

    start = time.perf_counter()
    sums = {"kernel": torch.zeros(n_eval, n_eval, dtype=torch.float64),
            "pair": torch.zeros(n_eval, args.n_train, n_outputs, dtype=torch.float64),
            "f_mean": torch.zeros(args.checkpoints, n_eval, n_outputs, dtype=torch.float64)}
    timers = Timers()
    for replica in range(args.replicas):
        train_replica(replica, args, x_eval, y_train, dims, sums, timers)
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    kernel_train = sums["kernel"][: args.n_train, : args.n_train] / args.n_train
    eigenvalues = torch.linalg.eigvalsh(kernel_train)
    spectrum_seconds = time.perf_counter() - start

    drift = -sums["pair"].sum(1)
    n_params = sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))
    print(f"torch {torch.__version__}, transforms from {TRANSFORMS}, "
          f"{torch.get_num_threads()} threads, {n_params} parameters, "
          f"{n_eval} evaluation points")
    print(f"torch_data_seconds = {data_seconds:.3f}")
    print(f"torch_train_kernel_drift_seconds = {train_seconds:.3f}")
    print(f"torch_spectrum_seconds = {spectrum_seconds:.3f}")
    print(f"torch_lambda_1 = {eigenvalues[-1].item():.6g}")
    print(f"torch_test_drift_rms = {drift[args.n_train:].pow(2).mean().sqrt().item():.6g}")
    for kind in ("jacobian", "kernel", "step"):
        print(f"torch_mean_{kind}_seconds = {timers.mean(kind):.4f} ({timers.count[kind]} runs)")
    if args.estimate_for:
        replicas, steps, checkpoints = (int(v) for v in args.estimate_for.split(","))
        estimate = data_seconds + spectrum_seconds + replicas * (
            (steps + 1) * timers.mean("jacobian") + checkpoints * timers.mean("kernel")
            + steps * timers.mean("step"))
        print(f"torch_estimated_seconds = {estimate:.1f} (R = {replicas}, T = {steps}, "
              f"C = {checkpoints}, from the means above)")


if __name__ == "__main__":
    main()
