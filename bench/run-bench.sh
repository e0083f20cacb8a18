#!/bin/sh
# Run the benchmarks of `make bench` and print their figures, the machine they ran on and
# each target with its measured value. doc/benchmarks.md records a run and explains the
# figures. Make sets these variables (they may also be set by hand):
#   top_builddir, top_srcdir   absolute build and source folders;
#   MPIEXEC, MPIEXEC_RUN_FLAGS the launcher and the flags `make run` gives it;
#   PYTHON_NC                  a Python 3 to try first for the PyTorch comparison.
# Optional settings:
#   BENCH_BUDGET_SECONDS  time for the whole run (default 840); the N = 8192 eigen-solve
#                         runs last, and only when its estimate fits in what is left;
#   BENCH_TORCH_FULL=yes  run the full PyTorch job (over 10 minutes on 2 cores) instead
#                         of a short run of the same job, extrapolated to the full size;
#   BENCH_DATA            Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist);
#   BENCH_LARGE=yes       add the run with N = 16384 evaluation points (part 9), which
#                         takes about 6 minutes and 2.7 GiB per rank, outside the budget.
# Work files and the log of each part go to $top_builddir/bench-out/, and a copy of this
# output to bench-out/report.txt. The exit status is 1 when a part failed (a target that
# is not met is reported, not a failure).
# Every part runs with OPENBLAS_NUM_THREADS=1, one BLAS thread per rank, except the
# PyTorch script, which gets 2 threads as the 2 ranks of sgk-ensemble get 2 cores.
set -u

: "${top_builddir:?run this through make bench, or set top_builddir}"
: "${top_srcdir:?run this through make bench, or set top_srcdir}"
MPIEXEC=${MPIEXEC:-mpiexec}
MPIEXEC_RUN_FLAGS=${MPIEXEC_RUN_FLAGS:-}
budget=${BENCH_BUDGET_SECONDS:-840}
data=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
bench=$top_builddir/bench
ensemble=$top_builddir/src/sgk-ensemble
out=$top_builddir/bench-out
results=$out/results.txt
started=$(date +%s)

OPENBLAS_NUM_THREADS=1
export OPENBLAS_NUM_THREADS
# Open MPI refuses to start as root unless both variables are set (containers, CI).
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM

# ---------------------------------------------------------------------------------------
# Helpers.

elapsed() {
    echo $(($(date +%s) - started))
}

seconds_now() {
    date +%s.%N
}

load_average() {
    cut -d' ' -f1-3 /proc/loadavg
}

# mpi_run RANKS PROGRAM [ARGUMENT]...
mpi_run() {
    ranks=$1
    shift
    # shellcheck disable=SC2086 # MPIEXEC_RUN_FLAGS holds several flags
    $MPIEXEC $MPIEXEC_RUN_FLAGS -n "$ranks" "$@"
}

# part NUMBER TITLE: a heading with the time and the load, so that a figure taken under
# other jobs' load shows it.
part() {
    echo
    echo "== $1. $2"
    echo "   started at $(elapsed) s of the run; load average $(load_average)"
}

# record NAME COMMAND...: run, keep the output in NAME.log, print it without the RESULT
# lines (which go to results.txt), and count a failure.
record() {
    name=$1
    shift
    case $1 in
        mpi_run) echo "   \$ $MPIEXEC -n $2 $(shift 2; echo "$*")" ;;
        *) echo "   \$ $*" ;;
    esac
    "$@" > "$out/$name.log" 2>&1
    status=$?
    grep -v '^RESULT ' "$out/$name.log" | sed 's/^/   /'
    grep '^RESULT ' "$out/$name.log" | cut -d' ' -f2- >> "$results"
    if [ "$status" -ne 0 ]; then
        echo "   FAILED with exit status $status (log: $out/$name.log)"
        echo failed >> "$out/failures"
    fi
    return "$status"
}

# result KEY: a value recorded with `record` or `remember`, or empty.
result() {
    sed -n "s/^$1 //p" "$results" | tail -n 1
}

remember() {
    echo "$1 $2" >> "$results"
}

# calc EXPRESSION: floating-point arithmetic.
calc() {
    awk "BEGIN { printf \"%.4g\", $1 }"
}

# verdict VALUE OPERATOR LIMIT: MET or NOT MET, or "not measured" for an empty value.
verdict() {
    if [ -z "$1" ]; then
        echo "not measured"
    elif awk "BEGIN { exit !($1 $2 $3) }"; then
        echo "MET"
    else
        echo "NOT MET"
    fi
}

# wall_times FILE: the wall_time_<phase> attributes as "phase seconds" lines.
wall_times() {
    ncdump -h "$1" | sed -n 's/^[[:space:]]*:wall_time_\([a-z]*\) = \([-+.0-9eE]*\) ;.*/\1 \2/p'
}

# write_config FILE OUTPUT KEY=VALUE...: an INI file from section.key=value pairs (sections
# in the order first named).
write_config() {
    file=$1
    output=$2
    shift 2
    : > "$file"
    for section in data model train ensemble kernel output; do
        echo "[$section]" >> "$file"
        for pair in "$@"; do
            case $pair in
                "$section".*) echo "${pair#"$section".}" | sed 's/=/ = /' >> "$file" ;;
            esac
        done
        if [ "$section" = output ]; then
            echo "file = $output" >> "$file"
            echo "overwrite = yes" >> "$file"
        fi
    done
}

# run_ensemble NAME RANKS CONFIG OUTPUT: run sgk-ensemble quietly, record its external
# wall time and the phase times stored in OUTPUT, the file CONFIG writes.
run_ensemble() {
    name=$1
    ranks=$2
    config=$3
    output=$4
    echo "   \$ $MPIEXEC -n $ranks $ensemble --quiet $config"
    begin=$(seconds_now)
    mpi_run "$ranks" "$ensemble" --quiet "$config" > "$out/$name.log" 2>&1
    status=$?
    end=$(seconds_now)
    if [ "$status" -ne 0 ]; then
        sed 's/^/   /' "$out/$name.log"
        echo "   FAILED with exit status $status (log: $out/$name.log)"
        echo failed >> "$out/failures"
        return "$status"
    fi
    remember "${name}_wall" "$(calc "$end - $begin")"
    total=0
    for line in $(wall_times "$output" | tr ' ' ':'); do
        phase=${line%%:*}
        value=${line#*:}
        remember "${name}_$phase" "$value"
        total=$(calc "$total + $value")
    done
    remember "${name}_phases" "$total"
}

# Shared settings of the sgk-ensemble runs: Fashion-MNIST T-shirt/top against trouser.
common="data.source=fashion-mnist data.path=$data data.classes=0,1 data.seed=1
train.lr=0.005 train.batch_size=32 ensemble.seed=2026"

# ---------------------------------------------------------------------------------------
main() {
    echo "sgk-ensemble benchmarks (make bench)"
    echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "CPU:        $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "cores:      $(nproc) available, $(grep -c '^processor' /proc/cpuinfo) in /proc/cpuinfo"
    echo "memory:     $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:     $(uname -sr)"
    echo "MPI:        $($MPIEXEC --version 2>&1 | head -n 1)"
    echo "program:    $("$ensemble" --version 2>&1 | head -n 1)"
    echo "budget:     $budget s; load average at start $(load_average) (1, 5, 15 min)"
    if awk "BEGIN { exit !($(cut -d' ' -f1 /proc/loadavg) > $(nproc) / 2) }"; then
        echo "NOTE: the load average is above half the core count, so other processes may"
        echo "be using the cores: rates may be low, and the 2-rank figures suffer most."
    fi

    part 1 "dgemm, one rank, OPENBLAS_NUM_THREADS=1 (OpenBLAS build below)"
    record dgemm "$bench/sgk-bench-dgemm" 512 1024 1536 2048

    part 2 "kernel assembly: sgk_tangent_gram against dgemm, one rank"
    record tangent "$bench/sgk-bench-tangent" 784-512-512-1:2048 784-512-512-1:4096 \
        784-256-256-10:2048 784-256-256-10:4096

    part 3 "one kernel block: layer factors against explicit Jacobians, one rank"
    record explicit "$bench/sgk-bench-explicit" 3072 128 512 2048

    part 4 "phase times of one run at 1 and 2 ranks (wall_time_* attributes)"
    # shellcheck disable=SC2086 # $common is a list of settings
    write_config "$out/phases.ini" "$out/phases.nc" $common data.n_train=1000 \
        data.n_test=500 model.widths=256,256 train.steps=200 ensemble.replicas=4 \
        kernel.checkpoints=11
    echo "   configuration: 1000 train + 500 test points, widths 256,256, 4 replicas,"
    echo "   200 steps, 11 checkpoints, drift on ($out/phases.ini)"
    for ranks in 1 2; do
        run_ensemble "phases_np$ranks" "$ranks" "$out/phases.ini" "$out/phases.nc" &&
            mv "$out/phases.nc" "$out/phases_np$ranks.nc"
    done
    printf '   %-9s %10s %10s\n' phase "1 rank s" "2 ranks s"
    for phase in data train kernel drift reduce spectrum output phases wall; do
        printf '   %-9s %10.2f %10.2f\n' "$phase" "$(result "phases_np1_$phase")" \
            "$(result "phases_np2_$phase")"
    done
    t1=$(result phases_np1_phases)
    t2=$(result phases_np2_phases)
    if [ -n "$t1" ] && [ -n "$t2" ]; then
        remember efficiency "$(calc "$t1 / (2 * $t2)")"
        remember efficiency_wall "$(calc "$(result phases_np1_wall) / (2 * $(result phases_np2_wall))")"
        echo "   parallel efficiency T1 / (2 T2): $(result efficiency) from the phase sums,"
        echo "   $(result efficiency_wall) from the wall time of mpiexec (start-up included)"
    fi

    part 5 "eigen-solver sgk_spectrum_eigh (PDSYEVD), 2 ranks, grid 1 x 2"
    record eigen mpi_run 2 "$bench/sgk-bench-eigen" 2048 4096
    echo "   N = 8192 runs at the end, if the budget allows"

    part 6 "peak resident memory per rank, N = 5000, 2 ranks"
    # shellcheck disable=SC2086
    write_config "$out/memory.ini" "$out/memory.nc" $common data.n_train=3000 \
        data.n_test=2000 model.widths=256,256 train.steps=20 ensemble.replicas=2 \
        kernel.checkpoints=3 kernel.drift=no
    echo "   configuration: 3000 train + 2000 test points, widths 256,256, 2 replicas,"
    echo "   20 steps, 3 checkpoints, drift off ($out/memory.ini)"
    rm -f "$out"/maxrss.*
    record memory mpi_run 2 "$bench/sgk-bench-maxrss" "$out/maxrss" "$ensemble" --quiet \
        "$out/memory.ini"
    peak_kib=$(cat "$out"/maxrss.* 2>/dev/null | awk '$2 > m { m = $2 } END { print m + 0 }')
    # The baseline: what a rank keeps resident before any array of the run: MPI, the
    # libraries and the inputs of the N points. A dry run loads the data, prints rank 0's
    # resident memory (in MB of 10^6 bytes) and stops.
    mpi_run 2 "$ensemble" --dry-run "$out/memory.ini" > "$out/memory-baseline.log" 2>&1
    baseline_mb=$(sed -n 's/.*(\([0-9.e+]*\) MB already resident.*/\1/p' \
        "$out/memory-baseline.log")
    if [ "$peak_kib" -gt 0 ]; then
        # Model: 8 N^2 / p bytes of kernel plus the tangent factors of the N points,
        # N sum_l (d_{l-1} + O d_l) doubles, for 784-256-256-1.
        n=5000
        n_train=3000
        per_point=$(((784 + 256 + 256) + (256 + 256 + 1)))
        model=$(calc "8 * $n * $n / 2 + 8 * $n * $per_point")
        peak=$(calc "$peak_kib * 1024")
        remember memory_ratio "$(calc "$peak / $model")"
        echo "   per rank: $(cat "$out"/maxrss.* | awk '{ printf "%.0f MiB  ", $2 / 1024 }')"
        echo "   model 8 N^2 / p + features = $(calc "$model / 1048576") MiB;" \
            "peak / model = $(result memory_ratio)"
        # The model by phase. The assembly needs the kernel and the factors, the spectrum
        # needs the kernel and what PDSYEVD needs for the n training points: the saved
        # lower triangle of K_n (half a local part), the eigenvectors and a workspace of
        # two more local parts, 3.5 x 8 n^2 / p. The larger of the two, plus the baseline.
        if [ -n "$baseline_mb" ]; then
            spectrum=$(calc "8 * $n * $n / 2 + 3.5 * 8 * $n_train * $n_train / 2")
            larger=$(awk "BEGIN { print ($spectrum > $model) ? $spectrum : $model }")
            phase_model=$(calc "$larger + $baseline_mb * 1e6")
            remember memory_ratio_phases "$(calc "$peak / $phase_model")"
            echo "   baseline (dry run, rank 0: MPI, libraries, inputs) =" \
                "$(calc "$baseline_mb * 1e6 / 1048576") MiB"
            echo "   model by phase: baseline + max(assembly $(calc "$model / 1048576")," \
                "spectrum 8 (N^2 + 3.5 n^2) / p = $(calc "$spectrum / 1048576")) MiB ="
            echo "   $(calc "$phase_model / 1048576") MiB; peak / model by phase =" \
                "$(result memory_ratio_phases)"
        fi
    fi

    part 7 "end to end against PyTorch (functorch per-sample Jacobians)"
    # shellcheck disable=SC2086
    write_config "$out/torch-job.ini" "$out/torch-job.nc" $common data.n_train=512 \
        data.n_test=256 model.widths=128,128 train.steps=200 ensemble.replicas=4 \
        kernel.checkpoints=11
    echo "   job: 512 train + 256 test points, widths 128,128, 4 replicas, 200 steps,"
    echo "   batch 32, 11 checkpoints, per-step drift"
    run_ensemble ours 2 "$out/torch-job.ini" "$out/torch-job.nc"
    echo "   sgk-ensemble, 2 ranks: $(result ours_wall) s wall ($(result ours_phases) s in phases)"
    python=""
    for candidate in "${PYTHON_NC:-}" python3 /usr/bin/python3; do
        if [ -n "$candidate" ] && "$candidate" -c 'import torch, numpy' > /dev/null 2>&1; then
            python=$candidate
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "   SKIPPED the PyTorch side: no Python with torch and numpy was found;"
        echo "   tools/install-bench-deps installs python3-torch"
    else
        torch_args="--data $data --threads 2"
        if [ "${BENCH_TORCH_FULL:-no}" = yes ]; then
            torch_args="$torch_args --replicas 4 --steps 200 --checkpoints 11"
        else
            echo "   short run (1 replica, 16 steps, 2 checkpoints), extrapolated to the job"
            torch_args="$torch_args --replicas 1 --steps 16 --checkpoints 2 --estimate-for 4,200,11"
        fi
        begin=$(seconds_now)
        # shellcheck disable=SC2086
        record torch env OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$python" \
            "$top_srcdir/bench/torch_sgk.py" $torch_args
        end=$(seconds_now)
        if [ "${BENCH_TORCH_FULL:-no}" = yes ]; then
            torch_seconds=$(calc "$end - $begin")
            echo "   PyTorch, full job: $torch_seconds s wall"
        else
            torch_seconds=$(sed -n 's/^torch_estimated_seconds = \([0-9.]*\).*/\1/p' \
                "$out/torch.log")
            echo "   PyTorch, full job estimated: $torch_seconds s"
        fi
        if [ -n "$torch_seconds" ] && [ -n "$(result ours_wall)" ]; then
            remember torch_ratio "$(calc "$torch_seconds / $(result ours_wall)")"
            echo "   ratio PyTorch / sgk-ensemble = $(result torch_ratio)"
        fi
    fi

    part 8 "ELPA against PDSYEVD, N = 4096, 2 ranks"
    if [ -x "$bench/sgk-bench-elpa" ]; then
        record elpa mpi_run 2 "$bench/sgk-bench-elpa" 4096
    else
        echo "   SKIPPED: bench/sgk-bench-elpa was not built, because pkg-config found no"
        echo "   ELPA when make ran; tools/install-bench-deps installs libelpa-dev"
    fi

    part 5b "eigen-solver, N = 8192, 2 ranks"
    t4096=$(result eigh_seconds_4096)
    if [ -n "$t4096" ]; then
        # PDSYEVD costs O(N^3), so 8 times the 4096 time. Runs on the 2-core development
        # machine took 8 to 13 times as long, so the estimate allows 16.
        estimate=$(calc "16 * $t4096")
        left=$((budget - $(elapsed)))
        if awk "BEGIN { exit !($estimate < $left) }"; then
            record eigen8192 mpi_run 2 "$bench/sgk-bench-eigen" 8192
        else
            remember eigen_8192_left_out "$estimate"
            echo "   LEFT OUT: estimated $estimate s (16 x the N = 4096 time), but $left s of the"
            echo "   $budget s budget remain. Run it alone with:"
            echo "   $MPIEXEC -n 2 $bench/sgk-bench-eigen 8192"
        fi
    fi

    part 9 "end to end with N = 16384 evaluation points, 2 ranks"
    # shellcheck disable=SC2086
    write_config "$out/large.ini" "$out/large.nc" $common data.n_train=8192 \
        data.n_test=2000 data.ood=classes:2,3,4,5,6,7,8 data.n_ood=6192 \
        model.widths=256,256 train.steps=200 ensemble.replicas=2 kernel.checkpoints=5
    echo "   configuration: 8192 train + 2000 test + 6192 OOD points (classes 2 to 8),"
    echo "   widths 256,256, 2 replicas, 200 steps, 5 checkpoints, drift on ($out/large.ini)"
    if [ "${BENCH_LARGE:-no}" = yes ]; then
        rm -f "$out"/large-maxrss.*
        begin=$(seconds_now)
        record large mpi_run 2 "$bench/sgk-bench-maxrss" "$out/large-maxrss" "$ensemble" \
            --quiet "$out/large.ini"
        end=$(seconds_now)
        if [ -s "$out/large.nc" ]; then
            remember large_wall "$(calc "$end - $begin")"
            wall_times "$out/large.nc" | while read -r phase value; do
                printf '   %-9s %10.2f s\n' "$phase" "$value"
            done
            echo "   wall time of mpiexec: $(result large_wall) s"
            echo "   peak per rank: $(cat "$out"/large-maxrss.* | awk '{ printf "%.0f MiB  ", $2 / 1024 }')"
            # The kernel alone makes the output 2.3 GB.
            rm -f "$out/large.nc"
        fi
    else
        echo "   SKIPPED: BENCH_LARGE=yes runs it (6 minutes and 2.7 GiB per rank on the"
        echo "   machine of doc/benchmarks.md, and a 2.3 GB output file that is then removed)"
    fi

    echo
    echo "== Targets"
    general=$(grep '^tangent_ratio_general_' "$results" | awk 'NR == 1 || $2 < m { m = $2 } END { print m }')
    symmetric=$(grep '^tangent_ratio_symmetric_' "$results" | awk 'NR == 1 || $2 < m { m = $2 } END { print m }')
    speedup=$(result explicit_speedup_512)
    echo "   kernel assembly >= 60% of dgemm: lowest case $(calc "100 * ${general:-0}")% on the" \
        "general path the run takes: $(verdict "$general" '>=' 0.6)" \
        "(symmetric path: $(calc "100 * ${symmetric:-0}")%)"
    echo "   layer factors >= 50x faster than explicit Jacobians at width 512: ${speedup}x:" \
        "$(verdict "$speedup" '>=' 50)"
    echo "   parallel efficiency T1 / (2 T2) >= 0.9: $(result efficiency):" \
        "$(verdict "$(result efficiency)" '>=' 0.9)"
    echo "   peak memory per rank <= 1.5 x model: $(result memory_ratio) x:" \
        "$(verdict "$(result memory_ratio)" '<=' 1.5)" \
        "(against the model by phase with the baseline: $(result memory_ratio_phases) x)"
    echo "   PyTorch / sgk-ensemble >= 20: $(result torch_ratio):" \
        "$(verdict "$(result torch_ratio)" '>=' 20)"
    if [ -n "$(result large_wall)" ]; then
        echo "   end to end with N = 16384 on 2 ranks within 30 minutes: $(result large_wall) s:" \
            "$(verdict "$(result large_wall)" '<=' 1800)"
    else
        echo "   end to end with N = 16384 on 2 ranks within 30 minutes: not measured" \
            "(BENCH_LARGE=yes runs it)"
    fi
    echo "   total time $(elapsed) s (budget $budget s); load average at the end $(load_average)"
    if [ -s "$out/failures" ]; then
        echo "   $(wc -l < "$out/failures") part(s) FAILED; see the logs in $out"
        return 1
    fi
    return 0
}

rm -rf "$out"
mkdir -p "$out" || exit 1
: > "$results"
{ main; echo $? > "$out/status"; } 2>&1 | tee "$out/report.txt"
exit "$(cat "$out/status" 2>/dev/null || echo 1)"
