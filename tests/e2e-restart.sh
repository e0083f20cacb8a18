#!/bin/sh
# End-to-end: a run stopped by a signal, or killed outright after a periodic snapshot,
# and resumed with --restart gives output identical to an uninterrupted run's, bit for
# bit (sgk-nccompare with --rtol 0). Restarts with another rank count or configuration
# are refused with the configuration exit status.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
program="$top_builddir/src/sgk-ensemble"
compare="$top_builddir/tests/sgk-nccompare"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-restart.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# Long enough to be interrupted several times (a few seconds on 2 ranks), Adam so that
# the optimizer state must survive the restart too, drift with 2 path nodes.
set -- --quiet --set data.source=teacher --set data.n_train=200 --set data.n_test=60 \
    --set model.widths=48,48 --set model.activation=tanh --set train.optimizer=adam \
    --set train.lr=0.002 --set train.steps=800 --set train.batch_size=16 \
    --set ensemble.replicas=3 --set kernel.checkpoints=6 --set kernel.path_nodes=2 \
    --set kernel.block_size=32
variables="sgk eigenvalues f_mean f_var loss_train loss_test drift remainder kernel_machine retrieval_weight"

$MPIEXEC -n 2 "$program" "$@" --set "output.file=$work/reference.nc" || {
    echo "FAIL: the reference run failed"
    exit 1
}

# wait_for_generation FOLDER G: wait until the snapshot manifest reaches generation G.
wait_for_generation() {
    for _ in $(seq 1 600); do
        if [ -r "$1/manifest" ]; then
            generation=$(sed -n 's/^generation = //p' "$1/manifest")
            [ "${generation:-0}" -ge "$2" ] && return 0
        fi
        sleep 0.05
    done
    return 1
}

# shellcheck source=tests/e2e-resume.sh.inc
. "${top_srcdir:-.}/tests/e2e-resume.sh.inc"

# One rank of that run: a signal to it reaches that rank only.
one_rank() {
    rank_pids "$1" | tail -n 1
}

# interrupt NAME HOW GENERATION: start a run with snapshots every 0.1 s, wait for the
# given snapshot generation, stop it (usr1-rank: SIGUSR1 to one rank; term-mpirun:
# SIGTERM to mpirun, which relays it; kill: SIGKILL to every process, no snapshot on
# the way out), resume it, and compare with the reference.
interrupt() {
    name=$1 how=$2 generation=$3
    shift 3
    out="$work/$name.nc"
    $MPIEXEC -n 2 "$program" "$@" --set "output.file=$out" --set output.checkpoint_every=0.002 \
        >"$work/$name.log" 2>&1 &
    launcher=$!
    if ! wait_for_generation "$out.ckpt" "$generation"; then
        echo "FAIL: $name: no snapshot generation $generation appeared"; cat "$work/$name.log"
        failures=$((failures + 1))
        wait "$launcher"
        return
    fi
    case $how in
        usr1-rank) kill -USR1 "$(one_rank "$out")" ;;
        term-mpirun) kill -TERM "$launcher" ;;
        kill)
            # shellcheck disable=SC2046 # one argument per process id
            kill -KILL $(rank_pids "$out") "$launcher"
            # Orphaned ranks would go on writing snapshots next to the restarted run.
            for _ in $(seq 1 100); do
                [ -z "$(rank_pids "$out")" ] && break
                sleep 0.05
            done ;;
    esac
    wait "$launcher"
    status=$?
    # A rank that stops after a snapshot exits with 75; mpirun itself exits with 1 when it
    # was the one terminated, so only the signal to a rank checks the exact status.
    if { [ "$how" = usr1-rank ] && [ "$status" -ne 75 ]; } || [ "$status" -eq 0 ]; then
        echo "FAIL: $name: the stopped run exited with $status"; cat "$work/$name.log"
        failures=$((failures + 1))
        return
    fi
    if [ -e "$out" ]; then
        echo "FAIL: $name: an output file exists after the interruption"
        failures=$((failures + 1))
        return
    fi
    if ! $MPIEXEC -n 2 "$program" --quiet --restart "$out.ckpt" >>"$work/$name.log" 2>&1; then
        echo "FAIL: $name: the restart failed"; cat "$work/$name.log"
        failures=$((failures + 1))
        return
    fi
    # shellcheck disable=SC2086 # the variable list is meant to split
    if "$compare" "$work/reference.nc" "$out" --rtol 0 $variables >"$work/$name.compare"; then
        echo "ok: $name: stopped after snapshot $generation ($how), resumed, bitwise identical"
    else
        echo "FAIL: $name: resumed output differs from the reference"; cat "$work/$name.compare"
        failures=$((failures + 1))
    fi
    [ -e "$out.ckpt" ] && { echo "FAIL: $name: the snapshot folder was not removed"; failures=$((failures + 1)); }
}

interrupt early usr1-rank 1 "$@"
interrupt middle term-mpirun 4 "$@"
interrupt late usr1-rank 6 "$@"
interrupt hard-kill kill 3 "$@"

# Refusals: another rank count, another configuration.
out="$work/refuse.nc"
$MPIEXEC -n 2 "$program" "$@" --set "output.file=$out" >/dev/null 2>&1 &
launcher=$!
sleep 1
kill -USR1 "$launcher"
wait "$launcher"
if [ -r "$out.ckpt/manifest" ]; then
    $MPIEXEC -n 3 "$program" --restart "$out.ckpt" >"$work/refuse.log" 2>&1
    status=$?
    if [ "$status" -eq 1 ] && grep -q "ranks" "$work/refuse.log"; then
        echo "ok: restart at another rank count refused"
    else
        echo "FAIL: restart at 3 ranks of a 2-rank snapshot exited with $status"; cat "$work/refuse.log"
        failures=$((failures + 1))
    fi
    $MPIEXEC -n 2 "$program" --restart "$out.ckpt" --set train.lr=0.5 >"$work/refuse.log" 2>&1
    status=$?
    if [ "$status" -eq 1 ] && grep -q "lr" "$work/refuse.log"; then
        echo "ok: restart with another configuration refused"
    else
        echo "FAIL: restart with --set train.lr=0.5 exited with $status"; cat "$work/refuse.log"
        failures=$((failures + 1))
    fi
else
    echo "FAIL: no snapshot for the refusal cases"
    failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "e2e-restart: $failures case(s) failed"
    exit 1
fi
echo "e2e-restart: all cases passed"
