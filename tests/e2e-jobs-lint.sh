#!/bin/sh
# Checks every job script in jobs/, and tools/slurm-local, with 'bash -n' (syntax) and
# with ShellCheck at its default severity (style and up). Skips (exit status 77) when
# the shellcheck command is missing, which the Debian package shellcheck provides.
# Reads top_srcdir from the test environment.
set -u

: "${top_srcdir:=.}"
name=e2e-jobs-lint

if ! command -v shellcheck >/dev/null 2>&1; then
    echo "$name: skipped: shellcheck not found (Debian package shellcheck)"
    exit 77
fi

checked=0
failed=0
for script in "$top_srcdir"/jobs/*.sbatch "$top_srcdir"/jobs/*.sh "$top_srcdir/tools/slurm-local"; do
    [ -e "$script" ] || continue
    checked=$((checked + 1))
    if ! bash -n "$script"; then
        echo "$name: FAIL: bash -n $script"
        failed=$((failed + 1))
    fi
    # The job scripts are bash scripts whatever their extension.
    if ! shellcheck --shell=bash "$script"; then
        echo "$name: FAIL: shellcheck $script"
        failed=$((failed + 1))
    fi
done

if [ "$checked" -eq 0 ]; then
    echo "$name: FAIL: no job scripts found in $top_srcdir/jobs"
    exit 1
fi
echo "$name: $checked scripts checked, $failed checks failed"
[ "$failed" -eq 0 ]
