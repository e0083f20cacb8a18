#!/bin/sh
# End-to-end: a GAN run on 2-D data writes the GAN variables and leaves out the target
# analyses. Runs at 1, 2 and 3 ranks agree to 1e-12 relative, because the ranks only
# change the order of sums over replicas and the process grid (a few ulps). A run stopped
# by a signal and resumed with --restart is bitwise identical to an uninterrupted one.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
compare="$top_builddir/tests/sgk-nccompare"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-gan.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
# shellcheck source=tests/e2e-resume.sh.inc
. "${top_srcdir:-.}/tests/e2e-resume.sh.inc"

# 2-D teacher inputs as real samples; Adam, so that the optimizer state of both networks
# must survive the restart.
set -- --quiet --set data.source=teacher --set data.n_train=120 --set data.n_test=0 \
    --set data.teacher_inputs=2 --set model.widths=16,16 --set model.activation=tanh \
    --set train.task=gan --set train.optimizer=adam --set train.lr=0.002 \
    --set train.batch_size=16 --set gan.latent_points=40 --set gan.disc_widths=16 \
    --set gan.disc_lr=0.004 --set gan.grid=5 --set ensemble.replicas=5 \
    --set kernel.checkpoints=4 --set kernel.block_size=8
# memory_residual is left out of the rank comparison. Every latent point is a training
# point, so it is 0 up to rounding and its relative deviation means nothing. The restart
# comparison, which is bitwise, includes it.
variables="x sgk eigenvalues f_mean f_var loss_train loss_test real_x disc_grid disc_value disc_gradient"

# 1. Rank counts.
for n in 1 2 3; do
    $MPIEXEC -n "$n" "$program" "$@" --set train.steps=150 \
        --set "output.file=$work/np$n.nc" >"$work/np$n.log" 2>&1 \
        || { fail "run at $n ranks exited with $?"; cat "$work/np$n.log"; }
done
for n in 2 3; do
    # shellcheck disable=SC2086 # the variable list is meant to split
    "$compare" "$work/np1.nc" "$work/np$n.nc" --rtol 1e-12 $variables >"$work/compare$n.log" \
        || { fail "$n ranks differ from 1 rank"; cat "$work/compare$n.log"; }
done

# 2. Variables: the GAN ones and their dimensions are there, the target ones are not.
if [ -r "$work/np2.nc" ]; then
    ncdump -h "$work/np2.nc" >"$work/header.txt"
    for pattern in "real = 120 ;" "grid_point = 25 ;" "double real_x(real, output)" \
        "double disc_grid(grid_point, output)" "double disc_value(grid_point)" \
        "double disc_gradient(grid_point, output)" "double x(sample, feature)" \
        "sample = 40 ;" "feature = 2 ;" "output = 2 ;" "double sgk(sample, sample)" \
        "double memory_residual(sample)" 'loss_test:long_name = "generator loss per replica"' \
        'x:long_name = "latent points"'; do
        grep -qF "$pattern" "$work/header.txt" || fail "the header lacks '$pattern'"
    done
    for absent in "double y(" "target_coeff(" "alignment(" "point_error(" "probe_kernel("; do
        grep -qF "$absent" "$work/header.txt" && fail "the header has '$absent'"
    done
fi

# 3. Restart: SIGUSR1 to one rank after the second snapshot, then --restart.
check_resume "$variables memory_residual" "$@" --set train.steps=4000

if [ "$failures" -ne 0 ]; then
    echo "e2e-gan: $failures check(s) failed"
    exit 1
fi
echo "e2e-gan: rank counts agree, GAN variables written, restart bitwise identical"
