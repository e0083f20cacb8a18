#!/bin/sh
# End-to-end: replica 0's final weights written with [output] weights_file and read back
# with [model] init_file reproduce its outputs: the second run's outputs at step 0 equal
# the first run's final outputs exactly, since both evaluate the same parameters.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-weights.XXXXXX")
trap 'rm -rf "$work"' EXIT

set -- --quiet --set data.source=teacher --set data.n_train=30 --set data.n_test=10 \
    --set model.widths=12,12 --set model.activation=tanh --set train.steps=40 \
    --set train.batch_size=10 --set kernel.checkpoints=3
$MPIEXEC -n 2 "$program" "$@" --set ensemble.replicas=1 --set "output.file=$work/first.nc" \
    --set "output.weights_file=$work/weights.nc" || { echo "FAIL: first run"; exit 1; }
[ -s "$work/weights.nc" ] || { echo "FAIL: no weights file written"; exit 1; }
$MPIEXEC -n 2 "$program" "$@" --set ensemble.replicas=2 --set "output.file=$work/second.nc" \
    --set "model.init_file=$work/weights.nc" || { echo "FAIL: second run"; exit 1; }

# f_mean(checkpoint, sample, output): last checkpoint of the first run against checkpoint 0
# of the second, printed with ncdump at full precision.
last=$(ncdump -v f_mean -p 17 "$work/first.nc" | sed -n '/^ f_mean =/,/;/p' | tr -d ' ;\n' \
    | sed 's/f_mean=//' | tr ',' '\n' | tail -n 40)
first=$(ncdump -v f_mean -p 17 "$work/second.nc" | sed -n '/^ f_mean =/,/;/p' | tr -d ' ;\n' \
    | sed 's/f_mean=//' | tr ',' '\n' | head -n 40)
if [ -n "$last" ] && [ "$last" = "$first" ]; then
    echo "e2e-weights: the initial-weights file reproduces replica 0's final outputs"
else
    echo "FAIL: outputs differ"
    echo "first run, last checkpoint:"; echo "$last" | head -n 5
    echo "second run, step 0:"; echo "$first" | head -n 5
    exit 1
fi
