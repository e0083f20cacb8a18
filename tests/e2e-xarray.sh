#!/bin/sh
# End-to-end: the output of a small teacher run at 2 ranks opens in xarray, and every
# contract variable is there with the dimension names of doc/output-format.md, a
# long_name, and units unless it is a flag or index variable. ncdump -h must list the
# same variables with the same dimensions. A second run with [output] compression = 4
# must store sgk and eigenvectors deflated, with values identical to the first run.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
: "${PYTHON_NC:=}"
program="$top_builddir/src/sgk-ensemble"

if [ -z "$PYTHON_NC" ]; then
    echo "e2e-xarray: PYTHON_NC is empty (configure found no python3 with numpy and netCDF4); skipped"
    exit 77
fi
if ! "$PYTHON_NC" -c 'import xarray' >/dev/null 2>&1; then
    echo "e2e-xarray: $PYTHON_NC cannot import xarray (Debian package python3-xarray); skipped"
    exit 77
fi
if ! command -v ncdump >/dev/null 2>&1; then
    echo "e2e-xarray: ncdump not found (Debian package netcdf-bin); skipped"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-xarray.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Every contract variable and its dimensions, one per line.
contract="x sample,feature
y sample,output
split sample
checkpoint_step checkpoint
checkpoint_time checkpoint
loss_train replica,checkpoint
loss_test replica,checkpoint
f_mean checkpoint,sample,output
f_var checkpoint,sample,output
sgk sample,sample
drift sample,output
remainder sample,output
kernel_machine sample,output
eigenvalues eig
eigenvectors train,eig
target_coeff eig,output
memory_residual sample
retrieval_index sample,rank_k
retrieval_weight sample,rank_k
ntk_trace checkpoint
ntk_alignment checkpoint
ntk_distance checkpoint
ntk_effective_rank checkpoint
probe_kernel checkpoint,probe,probe"

# Test points, ood noise points, a probe set and eigenvectors, so that every
# contract variable is written. Block size 8 spreads the 37 x 37 kernel over both
# ranks in several blocks.
run() {
    $MPIEXEC -n 2 "$program" --quiet \
        --set data.source=teacher --set data.n_train=24 --set data.n_test=8 \
        --set data.ood=noise --set data.n_ood=5 \
        --set model.widths=8 --set train.steps=30 --set train.batch_size=8 \
        --set train.lr=0.05 --set ensemble.replicas=4 --set kernel.checkpoints=3 \
        --set kernel.block_size=8 --set kernel.probe=10 --set spectrum.eigenvectors=yes \
        "$@"
}

echo "e2e-xarray: teacher run at 2 ranks"
if ! run --set "output.file=$work/plain.nc"; then
    echo "FAIL: the uncompressed run failed"
    exit 1
fi
echo "e2e-xarray: the same run with output.compression=4"
if ! run --set "output.file=$work/compressed.nc" --set output.compression=4; then
    echo "FAIL: the compressed run failed"
    exit 1
fi

# 1. xarray: presence, dimension names, long_name and units.
if ! printf '%s\n' "$contract" | "$PYTHON_NC" -c '
import sys
import xarray

# Flag and index variables carry no units, as CF recommends for them.
without_units = {"split", "retrieval_index"}
failures = 0
with xarray.open_dataset(sys.argv[1]) as ds:
    for line in sys.stdin:
        name, dims = line.split()
        expected = tuple(dims.split(","))
        if name not in ds.variables:
            print("FAIL: %s is missing" % name)
            failures += 1
            continue
        var = ds.variables[name]
        if var.dims != expected:
            print("FAIL: %s has dimensions %s, expected %s" % (name, var.dims, expected))
            failures += 1
        if not var.attrs.get("long_name"):
            print("FAIL: %s has no long_name attribute" % name)
            failures += 1
        if name in without_units and "units" in var.attrs:
            print("FAIL: %s is a flag or index variable but has units %r"
                  % (name, var.attrs["units"]))
            failures += 1
        if name not in without_units and not var.attrs.get("units"):
            print("FAIL: %s has no units attribute" % name)
            failures += 1
sys.exit(1 if failures else 0)
' "$work/plain.nc"; then
    fail "xarray found contract variables missing or malformed (listed above)"
fi

# 2. ncdump -h: each variable declared with the same dimensions, e.g.
#    "double sgk(sample, sample) ;".
header=$(ncdump -h "$work/plain.nc") || fail "ncdump -h $work/plain.nc failed"
while read -r name dims; do
    declaration="$name($(echo "$dims" | sed 's/,/, /g'))"
    if ! printf '%s\n' "$header" | grep -q "^[[:space:]]*[a-z0-9]* $declaration ;"; then
        fail "ncdump -h does not list $declaration"
    fi
done <<EOF
$contract
EOF

# 3. Compression: deflate level 4 with shuffle on sgk and eigenvectors, none on the
#    small variables, and values identical to the uncompressed file.
if ! "$PYTHON_NC" -c '
import sys
import numpy
import xarray

failures = 0
with xarray.open_dataset(sys.argv[1]) as plain, xarray.open_dataset(sys.argv[2]) as packed:
    for name in ("sgk", "eigenvectors"):
        encoding = packed[name].encoding
        if not (encoding.get("zlib") and encoding.get("complevel") == 4 and encoding.get("shuffle")):
            print("FAIL: %s in the compressed file is not deflated at level 4 with shuffle: %r"
                  % (name, encoding))
            failures += 1
        if plain[name].encoding.get("zlib"):
            print("FAIL: %s in the uncompressed file is deflated" % name)
            failures += 1
        # Deflate is lossless and both runs are the same computation at the same
        # rank count, so the values must agree bit for bit.
        if not numpy.array_equal(plain[name].values, packed[name].values):
            print("FAIL: %s differs between the compressed and uncompressed files" % name)
            failures += 1
    if packed["x"].encoding.get("zlib"):
        print("FAIL: x is deflated but only sgk and eigenvectors should be")
        failures += 1
sys.exit(1 if failures else 0)
' "$work/plain.nc" "$work/compressed.nc"; then
    fail "compressed output differs from the uncompressed output (listed above)"
fi

if [ "$failures" -ne 0 ]; then
    echo "e2e-xarray: $failures check(s) failed"
    exit 1
fi
echo "e2e-xarray: every contract variable reads in xarray and ncdump; compressed sgk matches"
