#!/bin/sh
# End-to-end: a denoise run on two moons writes the per-level variables. Runs at 1, 2 and
# 3 ranks agree to 1e-12 relative, because the ranks only change the order of sums over
# replicas and the process grid (a few ulps). A run stopped by a signal and resumed with
# --restart is bitwise identical to an uninterrupted one: the noise levels and noise draws
# of a step come from a stream positioned by the step.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
compare="$top_builddir/tests/sgk-nccompare"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-denoise.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
# shellcheck source=tests/e2e-resume.sh.inc
. "${top_srcdir:-.}/tests/e2e-resume.sh.inc"

# Adam, so that the optimizer state must survive the restart too.
set -- --quiet --set data.source=moons --set data.n_train=60 --set data.n_test=20 \
    --set model.widths=16,16 --set model.activation=tanh --set train.task=denoise \
    --set train.optimizer=adam --set train.lr=0.003 --set train.batch_size=12 \
    --set denoise.levels=4 --set denoise.sigma_min=0.05 --set denoise.sigma_max=1 \
    --set denoise.locality_bins=8 --set ensemble.replicas=5 --set kernel.checkpoints=4 \
    --set kernel.block_size=8 --set kernel.probe=12
variables="sgk level_sgk level_time level_trace level_eigenvalues locality_profile
locality_profile_normalized locality_width eigenvalues f_mean f_var loss_train loss_test"

# 1. Rank counts.
for n in 1 2 3; do
    $MPIEXEC -n "$n" "$program" "$@" --set train.steps=120 \
        --set "output.file=$work/np$n.nc" >"$work/np$n.log" 2>&1 \
        || { fail "run at $n ranks exited with $?"; cat "$work/np$n.log"; }
done
# Compression makes the writes of sgk and level_sgk collective and padded.
$MPIEXEC -n 3 "$program" "$@" --set train.steps=120 --set output.compression=1 \
    --set "output.file=$work/np3z.nc" >"$work/np3z.log" 2>&1 \
    || { fail "compressed run at 3 ranks exited with $?"; cat "$work/np3z.log"; }
for n in 2 3 3z; do
    # shellcheck disable=SC2086 # the variable list is meant to split
    "$compare" "$work/np1.nc" "$work/np$n.nc" --rtol 1e-12 $variables >"$work/compare$n.log" \
        || { fail "run np$n differs from 1 rank"; cat "$work/compare$n.log"; }
done

# 2. Variables and dimensions of the denoise task.
if [ -r "$work/np2.nc" ]; then
    ncdump -h "$work/np2.nc" >"$work/header.txt"
    for pattern in "level = 4 ;" "distance_bin = 8 ;" "output = 2 ;" "feature = 2 ;" \
        "double level_sgk(level, sample, sample)" "double noise_level(level)" \
        "double level_trace(checkpoint, level)" "double level_eigenvalues(level, eig)" \
        "double locality_profile_normalized(level, distance_bin)" "double y(sample, output)"; do
        grep -qF "$pattern" "$work/header.txt" || fail "the header lacks '$pattern'"
    done
    for absent in "double drift(" "double real_x("; do
        grep -qF "$absent" "$work/header.txt" && fail "the header has '$absent'"
    done
fi

# 3. Restart: SIGUSR1 to one rank after the second snapshot, then --restart.
check_resume "$variables" "$@" --set train.steps=30000

if [ "$failures" -ne 0 ]; then
    echo "e2e-denoise: $failures check(s) failed"
    exit 1
fi
echo "e2e-denoise: rank counts agree, level variables written, restart bitwise identical"
