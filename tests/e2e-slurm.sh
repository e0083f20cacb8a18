#!/bin/sh
# End-to-end: the job scripts in jobs/ under a real SLURM. The test starts a
# single-node cluster with tools/slurm-local in a temporary folder. It submits tiny runs
# of jobs/single-64.sbatch (srun launcher, 2 ranks), jobs/sweep-array.sbatch (mpirun
# launcher, a 2-task array) and jobs/strong-scaling.sh (1 and 2 ranks). Every job must
# complete with exit status 0 and write the NetCDF file its script promises, with the
# rank count and the swept values inside. When the program has --restart, the test also
# runs jobs/restart-chain.sbatch (mpirun launcher, 2 ranks). USR1 to the batch shell, as
# Slurm sends it before the time limit, must end the first link with a snapshot, and a
# second link must finish the run from it. The cluster is stopped on every exit.
#
# Skips (exit status 77) without root, without the SLURM and MUNGE commands (Debian
# packages slurm-wlm slurmctld slurmd slurm-client munge) or ncdump, or when the
# cluster does not start. Reads MPIEXEC, top_builddir and top_srcdir from the test
# environment; the jobs inherit it through sbatch --export=ALL.
set -eu

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
: "${top_srcdir:=.}"
name=e2e-slurm
program="$top_builddir/src/sgk-ensemble"
jobs_dir="$top_srcdir/jobs"
teacher="$top_srcdir/doc/examples/teacher.ini"
# Seconds to wait for all jobs. They end after about 20 s on a 2-core machine, most of
# it the restart chain and SLURM's scheduling interval.
timeout=90

skip() {
    echo "$name: skipped: $*"
    exit 77
}

for command in sbatch squeue sinfo scontrol scancel srun slurmctld slurmd munged munge ncdump; do
    command -v "$command" >/dev/null 2>&1 \
        || skip "command '$command' not found (Debian packages slurm-wlm slurmctld slurmd slurm-client munge netcdf-bin)"
done
[ "$(id -u)" -eq 0 ] || skip "a local SLURM cluster needs root: munged runs as user munge and slurmd starts jobs"
if [ ! -x "$program" ]; then
    echo "$name: $program not found; build it first with make" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-slurm.XXXXXX")
cluster="$work/cluster"
out="$work/out"
started=0
failed=0

# On failure, show the job logs and the daemons' last lines before removing the folder.
cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        for log in "$out"/*.out "$cluster"/log/*.log; do
            [ -r "$log" ] || continue
            echo "---- $log"
            tail -n 30 "$log"
        done
    fi
    if [ "$started" -eq 1 ]; then
        bash "$top_srcdir/tools/slurm-local" stop "$cluster" || echo "$name: stopping the cluster in $cluster failed" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# munged runs as user munge and must reach the cluster folder inside $work.
chmod 0755 "$work"
mkdir -p "$out"
started=1
if ! bash "$top_srcdir/tools/slurm-local" start "$cluster"; then
    skip "the local SLURM cluster did not start (tools/slurm-local start); see its messages above"
fi
SLURM_CONF="$cluster/slurm.conf"
SGK_PROGRAM="$program"
export SLURM_CONF SGK_PROGRAM MPIEXEC

fail() {
    echo "$name: FAIL: $*" >&2
    failed=$((failed + 1))
}

cd "$out"

# The restart chain goes first, so that it runs at once and the signal below reaches it
# while it trains. Its run takes about 4 s on 2 ranks of a 2-core machine, long enough
# to be interrupted 1 s after it starts. The 10-minute limit keeps the script's own
# warning signal (120 s before the limit, or up to 60 s earlier) out of the test.
chain=""
if $MPIEXEC -n 1 "$program" --help 2>/dev/null | grep -q -e '--restart'; then
    chain=$(SGK_LAUNCHER=mpirun sbatch --parsable --export=ALL --ntasks=2 --time=10 \
        "$jobs_dir/restart-chain.sbatch" "$teacher" --set data.n_train=100 \
        --set data.n_test=20 --set model.widths=32,32 --set train.steps=6000 \
        --set train.batch_size=10 --set ensemble.replicas=2 --set kernel.checkpoints=3)
    echo "$name: restart-chain.sbatch is job $chain"
else
    echo "$name: $program has no --restart option; restart-chain.sbatch part skipped"
fi

# Tiny teacher runs: a few seconds of work in all, whatever the launcher.
set -- --quiet --set data.n_train=20 --set data.n_test=10 --set train.steps=10 \
    --set ensemble.replicas=2 --set model.widths=8 --set kernel.checkpoints=2

single=$(SGK_LAUNCHER=srun sbatch --parsable --export=ALL --ntasks=2 --time=2 \
    "$jobs_dir/single-64.sbatch" "$teacher" "$@")
echo "$name: single-64.sbatch is job $single"
sweep=$(SGK_LAUNCHER=mpirun SGK_LEARNING_RATES="0.01 0.05" SGK_BATCH_SIZES=10 \
    sbatch --parsable --export=ALL --array=0-1 --ntasks=1 --time=2 \
    "$jobs_dir/sweep-array.sbatch" "$teacher" "$@")
echo "$name: sweep-array.sbatch is job $sweep"
SGK_RANK_COUNTS="1 2" SGK_SBATCH_OPTIONS="--export=ALL" \
    bash "$jobs_dir/strong-scaling.sh" "$teacher" "$@" >scaling-submit.txt
cat scaling-submit.txt
table_job=$(sed -n 's/.*table job \([0-9]*\).*/\1/p' scaling-submit.txt)
scaling_jobs=$(sed -n 's/.* job \([0-9]*\),.*/\1/p' scaling-submit.txt)

# Send USR1 to the chain's batch shell (--batch: the shell only, as --signal=B:USR1
# does) 1 s after the program has printed its first line.
signalled_chain=0
if [ -n "$chain" ]; then
    for _ in $(seq 1 300); do
        if grep -q -F '[info]' "chain-$chain.out" 2>/dev/null; then
            sleep 1
            scancel --signal=USR1 --batch "$chain"
            signalled_chain=1
            break
        fi
        sleep 0.1
    done
    [ "$signalled_chain" -eq 1 ] || fail "restart-chain.sbatch: job $chain printed no [info] line within 30 s"
fi

# The cluster is private to this test, so an empty queue means every job has ended.
waited=0
while [ -n "$(squeue -h -o %i)" ]; do
    if [ "$waited" -ge "$timeout" ]; then
        squeue
        echo "$name: FAIL: jobs still queued or running after $timeout s" >&2
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
echo "$name: all jobs ended after about $waited s"

# Check that job $1 (every task of an array) completed with exit status 0:0. Without
# accounting, scontrol still reports finished jobs for MinJobAge seconds.
job_ok() {
    states=$(scontrol -o show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\) .*ExitCode=\([0-9:]*\).*/\1 \2/p')
    if [ -z "$states" ]; then
        fail "job $1 not found by scontrol"
        return
    fi
    echo "$states" | while read -r state exit_code; do
        if [ "$state" != COMPLETED ] || [ "$exit_code" != 0:0 ]; then
            echo "$name: FAIL: job $1 ended $state with exit code $exit_code" >&2
            exit 1
        fi
    done || failed=$((failed + 1))
}

for job in $chain $single $sweep $scaling_jobs $table_job; do
    job_ok "$job"
done

# Print the value of global attribute $2 of NetCDF file $1, or nothing.
attribute() {
    ncdump -h "$1" | sed -n "s/^[[:space:]]*:$2 = \\(.*\\) ;\$/\\1/p"
}

file="sgk-$single.nc"
if ! ncdump -h "$file" >/dev/null; then
    fail "single-64.sbatch: $file missing or not a NetCDF file"
elif [ "$(attribute "$file" n_ranks)" != 2 ]; then
    fail "single-64.sbatch: $file says n_ranks = $(attribute "$file" n_ranks), expected 2 (srun --ntasks=2)"
fi
[ -s "sgk-$single.out" ] || fail "single-64.sbatch: log sgk-$single.out missing"

# Task 0 runs the first learning rate, task 1 the second, both with batch size 10.
task=0
for lr in 0.01 0.05; do
    file="sweep-${sweep}_$task-lr$lr-bs10.nc"
    if ! ncdump -h "$file" >/dev/null; then
        fail "sweep-array.sbatch: $file missing or not a NetCDF file"
    else
        configuration=$(attribute "$file" configuration)
        case $configuration in
            *'\nlr = '"$lr"'\n'*) ;;
            *) fail "sweep-array.sbatch: $file was not trained with train.lr = $lr" ;;
        esac
        case $configuration in
            *'\nbatch_size = 10\n'*) ;;
            *) fail "sweep-array.sbatch: $file was not trained with train.batch_size = 10" ;;
        esac
    fi
    [ -s "sweep-${sweep}_$task.out" ] || fail "sweep-array.sbatch: log sweep-${sweep}_$task.out missing"
    task=$((task + 1))
done

# The table has one row per rank count, with a numeric total and speedup 1.00 at 1 rank.
table="scaling-$table_job.txt"
if [ ! -r "$table" ]; then
    fail "strong-scaling.sh: table $table missing"
else
    cat "$table"
    for ranks in 1 2; do
        awk -v ranks="$ranks" '$1 == ranks && $(NF - 2) ~ /^[0-9]+\.[0-9]+$/ { found = 1 }
                               END { exit found ? 0 : 1 }' "$table" \
            || fail "strong-scaling.sh: $table has no complete row for $ranks ranks"
    done
    awk '$1 == 1 && $(NF - 1) == "1.00" { found = 1 } END { exit found ? 0 : 1 }' "$table" \
        || fail "strong-scaling.sh: $table does not give speedup 1.00 at 1 rank"
fi

# The first link ends with a snapshot and submits the second, which restarts from it
# and writes the output.
if [ "$signalled_chain" -eq 1 ]; then
    link2=$(sed -n 's/.*link 2 is job \([0-9]*\).*/\1/p' "chain-$chain.out")
    if [ -z "$link2" ]; then
        fail "restart-chain.sbatch: the first link (job $chain) submitted no second link; see chain-$chain.out"
    else
        job_ok "$link2"
        grep -q -e "--restart chain-$chain.nc.ckpt" "chain-$link2.out" \
            || fail "restart-chain.sbatch: the second link (job $link2) did not run with --restart chain-$chain.nc.ckpt"
        grep -q "chain $chain complete after 2 links" "chain-$link2.out" \
            || fail "restart-chain.sbatch: the second link (job $link2) did not complete the chain"
        ncdump -h "chain-$chain.nc" >/dev/null \
            || fail "restart-chain.sbatch: chain-$chain.nc missing or not a NetCDF file"
        echo "$name: restart chain $chain: link 1 stopped with a snapshot, link 2 (job $link2) finished the run"
    fi
fi

if [ "$failed" -ne 0 ]; then
    echo "$name: $failed checks failed"
    exit 1
fi
echo "$name: all jobs completed and wrote their outputs"
