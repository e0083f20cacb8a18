#!/bin/bash
# Strong scaling: submit the same sgk-ensemble run at 1, 2, 4, ..., 64 ranks, then a
# small job that waits for all of them and collects the wall_time_* attributes of their
# outputs into one table.
#
# Run it on the login node, not through sbatch, from the folder that should receive the
# output. The default configuration path is relative to the top of the source tree.
#   jobs/strong-scaling.sh [CONFIG [PROGRAM OPTION]...]
# Each run is jobs/single-64.sbatch with --ntasks set, so it writes sgk-JOBID.nc and
# sgk-JOBID.out. The collecting job writes scaling-JOBID.txt and scaling-JOBID.out.
# To build the table again by hand from finished runs:
#   jobs/strong-scaling.sh --collect TABLE JOBID:RANKS...
#
# The table has one row per run: ranks, job id, every wall_time_<phase> attribute in
# seconds, their sum, the speedup over the run with the fewest ranks (ratio of the
# sums) and the parallel efficiency (speedup x fewest ranks / ranks).
#
# Adapt (lines marked ADAPT): the rank counts, the replica count and the time limits.
# Partition, account, modules and launcher come from single-64.sbatch.
# Environment:
#   SGK_RANK_COUNTS      replaces the rank-count list (space-separated, e.g. "1 2")
#   SGK_SBATCH_OPTIONS   extra sbatch options for every job (space-separated)
#   SGK_PROGRAM, SGK_LAUNCHER, MPIEXEC   passed on to single-64.sbatch (sbatch exports
#                                        the environment by default)
set -euo pipefail

# ADAPT: the rank counts.
rank_counts=(1 2 4 8 16 32 64)
# ADAPT: the replica count, at least the largest rank count. A rank without a replica
# only waits, so the runs would measure idle time. A --set ensemble.replicas=... among
# the program options replaces it.
replicas=64
# ADAPT: the time limit, in minutes, of the run at 64 ranks. A run at n ranks gets
# 64 / n times as much, the time at perfect scaling. That suffices as long as parallel
# efficiency does not grow with the rank count, which cache effects can break.
minutes_at_64=30
# ADAPT: the time limit, in minutes, of the collecting job.
collect_minutes=10

script_name=strong-scaling

# Write TABLE from the outputs sgk-JOBID.nc of JOBID:RANKS pairs, and print it.
collect() {
    local table=$1 pair job ranks file missing=0
    shift
    if ! command -v ncdump >/dev/null 2>&1; then
        echo "$script_name: ncdump not found; install NetCDF's utilities (Debian package netcdf-bin) or load their module" >&2
        exit 1
    fi
    # One line per run, "RANKS JOB NAME=VALUE...", for the awk below.
    local rows="" attributes
    for pair in "$@"; do
        job=${pair%%:*}
        ranks=${pair#*:}
        file=sgk-$job.nc
        if [ ! -r "$file" ]; then
            echo "$script_name: $file not found in $PWD; job $job at $ranks ranks did not finish, see sgk-$job.out" >&2
            rows+="$ranks $job"$'\n'
            missing=$((missing + 1))
            continue
        fi
        attributes=$(ncdump -h "$file" \
            | sed -n 's/^[[:space:]]*:wall_time_\([a-z_]*\) = \([^ ;]*\).*/ \1=\2/p' | tr -d '\n')
        rows+="$ranks $job$attributes"$'\n'
    done
    printf '%s' "$rows" | sort -n | awk '
        # Columns are the phases in the order of the first run that has them.
        {
            ranks[NR] = $1; job[NR] = $2
            for (i = 3; i <= NF; i++) {
                split($i, kv, "=")
                if (!(kv[1] in seen)) { seen[kv[1]] = 1; phase[++n_phases] = kv[1] }
                value[NR, kv[1]] = kv[2] + 0
                total[NR] += kv[2]
                complete[NR] = 1
            }
        }
        END {
            printf "%6s %10s", "ranks", "job"
            for (p = 1; p <= n_phases; p++) printf " %10s", phase[p]
            printf " %10s %8s %10s\n", "total", "speedup", "efficiency"
            for (r = 1; r <= NR; r++) {
                printf "%6d %10s", ranks[r], job[r]
                if (!complete[r]) { print "  (no output)"; continue }
                if (base_total == "") { base_total = total[r]; base_ranks = ranks[r] }
                for (p = 1; p <= n_phases; p++) printf " %10.3f", value[r, phase[p]]
                speedup = total[r] > 0 ? base_total / total[r] : 0
                printf " %10.3f %8.2f %10.2f\n", total[r], speedup, speedup * base_ranks / ranks[r]
            }
            print "# wall-clock seconds per phase, the maximum over ranks (wall_time_* attributes)"
        }' >"$table"
    cat "$table"
    [ "$missing" -eq 0 ]
}

if [ "${1-}" = --collect ]; then
    if [ $# -lt 3 ]; then
        echo "usage: $0 --collect TABLE JOBID:RANKS..." >&2
        exit 1
    fi
    shift
    collect "$@"
    exit
fi

if [ -n "${SGK_RANK_COUNTS-}" ]; then
    read -r -a rank_counts <<<"$SGK_RANK_COUNTS"
fi
extra_sbatch=()
if [ -n "${SGK_SBATCH_OPTIONS-}" ]; then
    read -r -a extra_sbatch <<<"$SGK_SBATCH_OPTIONS"
fi

jobs_dir=$(cd "$(dirname "$0")" && pwd)
self=$jobs_dir/$(basename "$0")
config=${1:-doc/examples/fmnist-binary.ini}
if [ $# -gt 0 ]; then shift; fi
if [ ! -r "$config" ]; then
    echo "$script_name: configuration '$config' not readable from $PWD; pass its path as the first argument" >&2
    exit 1
fi

pairs=()
dependency=afterany
for ranks in "${rank_counts[@]}"; do
    case $ranks in
        '' | *[!0-9]* | 0)
            echo "$script_name: invalid rank count '$ranks': expected a positive integer" >&2
            exit 1
            ;;
    esac
    minutes=$(((minutes_at_64 * 64 + ranks - 1) / ranks))
    job=$(sbatch --parsable --ntasks="$ranks" --time="$minutes" \
        --job-name="sgk-scaling-np$ranks" ${extra_sbatch[@]+"${extra_sbatch[@]}"} \
        "$jobs_dir/single-64.sbatch" "$config" --set "ensemble.replicas=$replicas" "$@")
    job=${job%%;*}
    echo "$script_name: --ntasks=$ranks: job $job, time limit $minutes min"
    pairs+=("$job:$ranks")
    dependency+=":$job"
done

# afterany: the table is written even when some runs fail, with "(no output)" in their
# rows. The table name expands in the job, where SLURM_JOB_ID is the collecting job's id.
collect_command="bash $(printf '%q' "$self") --collect scaling-\$SLURM_JOB_ID.txt ${pairs[*]}"
collect_job=$(sbatch --parsable --ntasks=1 --time="$collect_minutes" \
    --job-name=sgk-scaling-table --output=scaling-%j.out --dependency="$dependency" \
    ${extra_sbatch[@]+"${extra_sbatch[@]}"} --wrap="$collect_command")
collect_job=${collect_job%%;*}
echo "$script_name: table job $collect_job writes scaling-$collect_job.txt when all runs have ended"
