#!/bin/sh
# End-to-end: bad input gives the documented exit status, a message naming the culprit,
# and no output file.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-errors.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# expect STATUS PATTERN ARGS...: run at 2 ranks, check the exit status, that stderr
# contains PATTERN and that no output file appeared.
expect() {
    expected=$1
    pattern=$2
    shift 2
    rm -f "$work/out.nc" "$work/out.nc.incomplete"
    $MPIEXEC -n 2 "$program" --set "output.file=$work/out.nc" "$@" >"$work/stdout" 2>"$work/stderr"
    status=$?
    if [ "$status" -ne "$expected" ]; then
        echo "FAIL: $* exited with $status, expected $expected"; cat "$work/stderr"
        failures=$((failures + 1))
    elif ! grep -q -- "$pattern" "$work/stderr"; then
        echo "FAIL: $*: stderr does not mention '$pattern':"; cat "$work/stderr"
        failures=$((failures + 1))
    elif [ -e "$work/out.nc" ] || [ -e "$work/out.nc.incomplete" ]; then
        echo "FAIL: $* left an output file"
        failures=$((failures + 1))
    else
        echo "ok: exit $status for: $*"
    fi
}

printf '[model]\nwidths = 8\nactivation = sigmoid\n' > "$work/bad-enum.ini"
printf '[data]\nn_train = -3\n' > "$work/negative.ini"
printf '[nosuch]\nkey = 1\n' > "$work/section.ini"
mkdir "$work/empty-folder"
: > "$work/empty-folder/train-images-idx3-ubyte"

expect 1 "activation" "$work/bad-enum.ini"
expect 1 "n_train" "$work/negative.ini"
expect 1 "nosuch" "$work/section.ini"
expect 1 "does-not-exist.ini" "$work/does-not-exist.ini"
expect 1 "train.bogus" --set train.bogus=1
expect 1 "unknown option" --frobnicate
expect 1 "batch_size" --set data.source=teacher --set data.n_train=10 --set train.batch_size=20
expect 2 "$work/empty-folder" --set data.source=idx --set "data.path=$work/empty-folder"
expect 2 "no-such-folder" --set data.source=idx --set "data.path=$work/no-such-folder"

# An existing output file is kept unless --force or [output] overwrite = yes.
printf 'existing\n' > "$work/kept.nc"
rm -f "$work/out.nc"
$MPIEXEC -n 2 "$program" --set "output.file=$work/kept.nc" --set data.source=teacher \
    >"$work/stdout" 2>"$work/stderr"
status=$?
if [ "$status" -ne 1 ] || ! grep -q "exists" "$work/stderr" || [ "$(cat "$work/kept.nc")" != existing ]; then
    echo "FAIL: an existing output file was not protected (exit $status)"; cat "$work/stderr"
    failures=$((failures + 1))
else
    echo "ok: exit 1 for an existing output file"
fi

# Losses that do not fit the targets.
expect 2 "logistic" --set data.source=teacher --set train.loss=logistic
expect 2 "xent" --set data.source=teacher --set train.loss=xent
expect 1 "ood = file" --set data.source=teacher --set data.ood=file --set data.n_ood=3
expect 2 "no-such-weights.nc" --set data.source=teacher --set "model.init_file=$work/no-such-weights.nc"

if [ "$failures" -ne 0 ]; then
    echo "e2e-errors: $failures case(s) failed"
    exit 1
fi
echo "e2e-errors: all cases passed"
