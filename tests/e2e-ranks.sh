#!/bin/sh
# End-to-end: the same experiment at 1, 2, 3 and 4 ranks must give the same kernel,
# spectrum and ensemble mean up to rounding, and the stored spectrum must match an
# independent serial eigen-solve of the stored kernel.
#
# Tolerance: the ranks only change the order of the floating-point sums over replicas
# and the process grid of the eigen-solver, so results differ by a few ulps of the
# largest entry; 1e-12 relative leaves a margin of about 10^3 over that.
set -eu

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
compare="$top_builddir/tests/sgk-nccompare"
check_eigen="$top_builddir/tests/sgk-check-eigen"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT

run_at_rank_counts() {
    name=$1
    shift
    for n in 1 2 3 4; do
        echo "e2e-ranks: $name at $n ranks"
        $MPIEXEC -n "$n" "$program" --quiet "$@" --set "output.file=$work/$name-np$n.nc"
    done
    "$check_eigen" "$work/$name-np1.nc" --rtol 1e-10
    for n in 2 3 4; do
        "$compare" "$work/$name-np1.nc" "$work/$name-np$n.nc" --rtol 1e-12 \
            sgk eigenvalues f_mean loss_train drift kernel_machine
    done
}

# Synthetic teacher data: needs no data package. 5 replicas spread unevenly over the
# ranks, block size 8 so that several blocks land on every rank.
run_at_rank_counts teacher \
    --set data.source=teacher --set data.n_train=40 --set data.n_test=20 \
    --set model.widths=16,16 --set model.activation=tanh \
    --set train.steps=60 --set train.batch_size=8 --set train.lr=0.05 \
    --set ensemble.replicas=5 --set kernel.checkpoints=4 --set kernel.block_size=8

fmnist=/usr/share/datasets/fashion-mnist
if [ -r "$fmnist/train-images-idx3-ubyte.gz" ]; then
    run_at_rank_counts fmnist \
        --set data.source=fashion-mnist --set data.path=$fmnist --set data.classes=0,1 \
        --set data.n_train=60 --set data.n_test=30 --set model.widths=32,32 \
        --set train.steps=50 --set train.batch_size=10 --set train.lr=0.01 \
        --set ensemble.replicas=5 --set kernel.checkpoints=3 --set kernel.block_size=16
else
    echo "e2e-ranks: $fmnist not found (Debian package dataset-fashion-mnist); Fashion-MNIST part skipped"
fi
echo "e2e-ranks: all rank counts agree"
