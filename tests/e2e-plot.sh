#!/bin/sh
# End-to-end: sgk-plot draws every figure whose variables a real teacher run stored, and
# every figure of a file that contains all of them. Each PNG must be valid. Figures whose
# variables are missing must be skipped with a message naming them, and unusable input
# must give the documented exit status. The figures of the generative tasks are drawn
# from written denoise and gan files, and must be skipped without a message for files
# that have none of their variables.
set -u

: "${MPIEXEC:=mpirun}"
: "${top_builddir:=.}"
: "${PYTHON_NC:=}"
program="$top_builddir/src/sgk-ensemble"
plot="$top_builddir/tools/sgk-plot"

if [ -z "$PYTHON_NC" ]; then
    echo "e2e-plot: PYTHON_NC is empty (configure found no python3 with numpy and netCDF4); skipped"
    exit 77
fi
if ! "$PYTHON_NC" -c 'import matplotlib' >/dev/null 2>&1; then
    echo "e2e-plot: $PYTHON_NC cannot import matplotlib (Debian package python3-matplotlib); skipped"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sgk-e2e-plot.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Figures and the variables each needs, as doc/sgk-plot.md lists them.
figures="eigenvalues captured-energy kernel-evolution domingos memory-residual probe-kernel"
required_variables() {
    case $1 in
        eigenvalues) echo "eigenvalues" ;;
        captured-energy) echo "captured_energy" ;;
        kernel-evolution) echo "checkpoint_time ntk_distance ntk_alignment ntk_effective_rank" ;;
        domingos) echo "f_mean kernel_machine split" ;;
        memory-residual) echo "memory_residual split" ;;
        probe-kernel) echo "probe_kernel" ;;
    esac
}

# Figures of the generative tasks, which a file without their variables skips silently.
generative_figures="level-traces level-spectra locality gan-field"

# check_no_generative DIR STEM STDERR: no figure of the generative tasks in DIR, and no
# message about one in STDERR.
check_no_generative() {
    for figure in $generative_figures; do
        if [ -e "$1/$2-$figure.png" ]; then
            fail "$1/$2-$figure.png was written for a file without its variables"
        elif grep -q -- "$2-$figure.png" "$3"; then
            fail "a file without the $figure variables gave a message: $(cat "$3")"
        else
            echo "ok: $figure skipped silently for $2"
        fi
    done
}

# big_endian_u32 FILE OFFSET: the unsigned 32-bit big-endian integer at OFFSET.
big_endian_u32() {
    od -An -tu1 -j"$2" -N4 "$1" | awk '{ print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }'
}

# check_png FILE: a PNG signature, then an IHDR chunk with width and height above 100 px.
check_png() {
    if [ ! -s "$1" ]; then
        fail "$1 is missing or empty"
        return
    fi
    signature=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
    chunk=$(od -An -c -j12 -N4 "$1" | tr -d ' \n')
    if [ "$signature" != "89504e470d0a1a0a" ]; then
        fail "$1 does not start with the PNG signature (got $signature)"
    elif [ "$chunk" != "IHDR" ]; then
        fail "$1 has no IHDR chunk first (got '$chunk')"
    else
        width=$(big_endian_u32 "$1" 16)
        height=$(big_endian_u32 "$1" 20)
        if [ "$width" -le 100 ] || [ "$height" -le 100 ]; then
            fail "$1 is only ${width}x${height} px"
        else
            echo "ok: $1 is a ${width}x${height} PNG"
        fi
    fi
}

variables_in() {
    "$PYTHON_NC" -c 'import sys, netCDF4
with netCDF4.Dataset(sys.argv[1]) as d:
    print(" ".join(d.variables))' "$1"
}

# check_figures NC DIR STDERR: every figure whose variables NC contains is a valid PNG in
# DIR; every other figure is absent, and its skip message in STDERR names each of its
# missing variables.
check_figures() {
    nc=$1
    dir=$2
    stem=$(basename "$nc" .nc)
    present=" $(variables_in "$nc") "
    for figure in $figures; do
        png="$dir/$stem-$figure.png"
        missing=""
        for variable in $(required_variables "$figure"); do
            case $present in
                *" $variable "*) ;;
                *) missing="$missing $variable" ;;
            esac
        done
        if [ -z "$missing" ]; then
            check_png "$png"
        elif [ -e "$png" ]; then
            fail "$png was written although $nc lacks$missing"
        else
            for variable in $missing; do
                if grep -q "skipped $stem-$figure.png: .*'$variable'" "$3"; then
                    echo "ok: $figure skipped, its message names the missing '$variable'"
                else
                    fail "no skip message for $figure naming '$variable' in: $(cat "$3")"
                fi
            done
        fi
    done
}

# check_rms_gap NC STDOUT EXPECTED: the RMS gap that sgk-plot printed for the Domingos
# figure matches EXPECTED to 1e-8 relative. sgk-plot prints it with 10 significant
# digits, a relative rounding error of at most 5e-10.
check_rms_gap() {
    printed=$(sed -n 's/.*(RMS gap \([^ ]*\) over.*/\1/p' "$2")
    if [ -z "$printed" ]; then
        fail "sgk-plot printed no RMS gap for $1"
    elif "$PYTHON_NC" -c 'import sys
printed, expected = float(sys.argv[1]), float(sys.argv[2])
sys.exit(abs(printed - expected) > 1e-8 * abs(expected))' "$printed" "$3"; then
        echo "ok: RMS gap $printed of $1 matches $3"
    else
        fail "RMS gap of $1: sgk-plot printed $printed, expected $3"
    fi
}

# 0. The built script starts with the interpreter that configure found.
shebang=$(head -n 1 "$plot")
if [ "$shebang" != "#!$PYTHON_NC" ]; then
    fail "$plot starts with '$shebang', expected '#!$PYTHON_NC'"
fi

# 1. A small teacher run with test and OOD points, so that the Domingos and memory
# residual figures have points to draw whenever their variables are stored.
teacher="$work/teacher.nc"
if ! $MPIEXEC -n 2 "$program" --quiet \
    --set data.source=teacher --set data.n_train=40 --set data.n_test=20 \
    --set data.ood=noise --set data.n_ood=10 \
    --set model.widths=16,16 --set model.activation=tanh \
    --set train.steps=60 --set train.batch_size=8 --set train.lr=0.05 \
    --set ensemble.replicas=4 --set kernel.checkpoints=4 --set kernel.block_size=8 \
    --set kernel.probe=12 --set "output.file=$teacher"; then
    fail "sgk-ensemble failed on the teacher run"
else
    if "$plot" "$teacher" --out "$work/teacher-plots" >"$work/teacher.out" 2>"$work/teacher.err"; then
        cat "$work/teacher.out" "$work/teacher.err"
        check_figures "$teacher" "$work/teacher-plots" "$work/teacher.err"
        check_no_generative "$work/teacher-plots" teacher "$work/teacher.err"
        if [ -e "$work/teacher-plots/teacher-domingos.png" ]; then
            expected=$("$PYTHON_NC" -c 'import sys, numpy, netCDF4
with netCDF4.Dataset(sys.argv[1]) as d:
    test = d["split"][:] == 1
    gap = d["f_mean"][-1][test] - d["kernel_machine"][:][test]
    print(repr(float(numpy.sqrt(numpy.mean(numpy.square(gap))))))' "$teacher")
            check_rms_gap "$teacher" "$work/teacher.out" "$expected"
        fi
    else
        fail "sgk-plot exited with $? on the teacher run: $(cat "$work/teacher.err")"
    fi
fi

# 2. A file with every variable that sgk-plot reads, in the documented dimensions, with
# 2 outputs. On test points f_mean at the last checkpoint exceeds kernel_machine by
# exactly 0.25, so the RMS gap is 0.25; train and OOD points differ by 5, which would
# show up if the figure took the wrong points.
full="$work/full.nc"
"$PYTHON_NC" - "$full" <<'EOF'
import sys
import numpy
import netCDF4

n_train, n_test, n_ood, outputs, checkpoints, probe = 16, 8, 6, 2, 4, 12
samples = n_train + n_test + n_ood
generator = numpy.random.default_rng(7)
with netCDF4.Dataset(sys.argv[1], "w") as d:
    for name, size in (("sample", samples), ("train", n_train), ("output", outputs),
                       ("checkpoint", checkpoints), ("eig", n_train), ("probe", probe)):
        d.createDimension(name, size)
    d.configuration = "[spectrum]\ntolerance = 1e-3\n"

    def put(name, dims, values, units="1"):
        variable = d.createVariable(name, "f8" if units else "i4", dims)
        variable[...] = values
        if units:
            variable.units = units

    split = numpy.array([0] * n_train + [1] * n_test + [2] * n_ood)
    put("split", ("sample",), split, units=None)
    put("checkpoint_time", ("checkpoint",), numpy.linspace(0.0, 3.0, checkpoints),
        units="diffusion time (sum of learning rates)")
    kernel_machine = generator.normal(size=(samples, outputs))
    f_mean = generator.normal(size=(checkpoints, samples, outputs))
    f_mean[-1] = kernel_machine + numpy.where(split == 1, 0.25, 5.0)[:, None]
    put("kernel_machine", ("sample", "output"), kernel_machine)
    put("f_mean", ("checkpoint", "sample", "output"), f_mean)
    eigenvalues = 2.0 ** -numpy.arange(n_train)
    put("eigenvalues", ("eig",), eigenvalues)
    coefficients = generator.normal(size=(n_train, outputs))
    coefficients /= numpy.linalg.norm(coefficients, axis=0)
    put("captured_energy", ("eig", "output"), numpy.cumsum(coefficients ** 2, axis=0))
    put("ntk_distance", ("checkpoint",), numpy.linspace(0.0, 0.2, checkpoints))
    put("ntk_alignment", ("checkpoint",), numpy.linspace(0.3, 0.6, checkpoints))
    put("ntk_effective_rank", ("checkpoint",), numpy.linspace(4.0, 2.5, checkpoints))
    memory_residual = numpy.concatenate([numpy.zeros(n_train),
                                         generator.uniform(0.0, 0.3, n_test),
                                         generator.uniform(0.6, 1.0, n_ood)])
    put("memory_residual", ("sample",), memory_residual)
    features = generator.normal(size=(checkpoints, probe, 5))
    put("probe_kernel", ("checkpoint", "probe", "probe"),
        numpy.einsum("cpf,cqf->cpq", features, features))
EOF
if "$plot" "$full" --out "$work/full-plots" >"$work/full.out" 2>"$work/full.err"; then
    cat "$work/full.out" "$work/full.err"
    if [ -s "$work/full.err" ]; then
        fail "sgk-plot skipped figures of a file with every variable: $(cat "$work/full.err")"
    fi
    for figure in $figures; do
        check_png "$work/full-plots/full-$figure.png"
    done
    check_rms_gap "$full" "$work/full.out" 0.25
    check_no_generative "$work/full-plots" full "$work/full.err"
else
    fail "sgk-plot exited with $? on the file with every variable: $(cat "$work/full.err")"
fi

# 3. Files of the generative tasks with the variables their figures read, in the
# documented dimensions:
#  - denoise.nc: 5 noise levels, the last with fewer eigenvalues (NaN padding), one
#    distance bin without pairs and one level without a locality width;
#  - denoise-many.nc: 12 levels, which get a colour bar in place of a legend, and no
#    locality_width, so that the locality figure is skipped with a message;
#  - gan.nc: a 15 x 15 grid of discriminator values in shuffled order;
#  - gan-scattered.nc: scattered field points, which are no rectangular grid;
#  - gan-3d.nc: 3 outputs, for which the field is not drawn.
"$PYTHON_NC" - "$work" <<'EOF'
import os
import sys
import numpy
import netCDF4

folder = sys.argv[1]
generator = numpy.random.default_rng(11)


def create(name, dimensions):
    d = netCDF4.Dataset(os.path.join(folder, name), "w")
    for dimension, size in dimensions.items():
        d.createDimension(dimension, size)
    return d


def put(d, name, dims, values, units="1"):
    variable = d.createVariable(name, "f8", dims)
    variable[...] = values
    variable.units = units


def write_denoise(name, levels, with_width):
    checkpoints, eigs, bins = 4, 10, 12
    with create(name, {"checkpoint": checkpoints, "level": levels, "eig": eigs,
                       "distance_bin": bins}) as d:
        time = numpy.linspace(0.0, 2.0, checkpoints)
        sigma = 0.02 * 100.0 ** (numpy.arange(levels)[::-1] / (levels - 1))
        put(d, "checkpoint_time", ("checkpoint",), time,
            units="diffusion time (sum of learning rates)")
        put(d, "noise_level", ("level",), sigma, units="input units")
        put(d, "level_time", ("checkpoint", "level"),
            numpy.outer(time, numpy.ones(levels)) / levels)
        # Traces spanning 4 decades over the levels, so the y axis turns logarithmic.
        put(d, "level_trace", ("checkpoint", "level"), numpy.outer(1.0 + time, sigma ** -2.0))
        eigenvalues = numpy.outer(sigma ** -1.0, 2.0 ** -numpy.arange(eigs))
        eigenvalues[-1, eigs // 2:] = numpy.nan
        put(d, "level_eigenvalues", ("level", "eig"), eigenvalues)
        distance = (numpy.arange(bins) + 0.5) * 0.25
        count = generator.integers(1, 50, bins)
        count[7] = 0
        put(d, "locality_distance", ("distance_bin",), distance, units="input units")
        d.createVariable("locality_count", "i8", ("distance_bin",))[:] = count
        # Gaussian profiles of width 0.5 + sigma, which narrow as sigma falls.
        normalized = numpy.exp(-distance[None, :] ** 2 / (2.0 * (0.5 + sigma[:, None]) ** 2))
        normalized[:, 7] = numpy.nan
        put(d, "locality_profile_normalized", ("level", "distance_bin"), normalized)
        put(d, "locality_profile", ("level", "distance_bin"), normalized * sigma[:, None] ** -2.0)
        if with_width:
            width = (0.5 + sigma) * numpy.sqrt(2.0 * numpy.log(2.0))
            width[0] = numpy.nan
            put(d, "locality_width", ("level",), width, units="input units")


def write_gan(name, outputs, grid_points, task=None):
    checkpoints, samples, latent, reals = 3, 20, 2, 50
    with create(name, {"checkpoint": checkpoints, "sample": samples, "feature": latent,
                       "output": outputs, "real": reals,
                       "grid_point": grid_points.shape[0]}) as d:
        if task is not None:
            d.configuration = f"[train]\ntask = {task}\n"
        put(d, "x", ("sample", "feature"), generator.normal(size=(samples, latent)))
        put(d, "f_mean", ("checkpoint", "sample", "output"),
            generator.normal(size=(checkpoints, samples, outputs)))
        put(d, "real_x", ("real", "output"), generator.normal(size=(reals, outputs)))
        # D(x) = -|x - c|^2 / 2 with c = (0.5, ..., 0.5), so the gradient is c - x.
        centre = numpy.full(outputs, 0.5)
        put(d, "disc_grid", ("grid_point", "output"), grid_points)
        put(d, "disc_value", ("grid_point",),
            -0.5 * numpy.sum((grid_points - centre) ** 2, axis=1))
        put(d, "disc_gradient", ("grid_point", "output"), centre - grid_points)


write_denoise("denoise.nc", 5, True)
write_denoise("denoise-many.nc", 12, False)
side = numpy.linspace(-3.0, 3.0, 15)
grid = numpy.array([(x, y) for y in side for x in side])
write_gan("gan.nc", 2, grid[generator.permutation(grid.shape[0])], task="gan")
write_gan("gan-scattered.nc", 2, generator.uniform(-3.0, 3.0, size=(200, 2)))
write_gan("gan-3d.nc", 3, generator.uniform(-3.0, 3.0, size=(30, 3)))
EOF

# plot_generative STEM: run sgk-plot on $work/STEM.nc into $work/STEM-plots, keeping its
# output in $work/STEM.out and $work/STEM.err; status 1 when it fails.
plot_generative() {
    if "$plot" "$work/$1.nc" --out "$work/$1-plots" >"$work/$1.out" 2>"$work/$1.err"; then
        cat "$work/$1.out" "$work/$1.err"
        return 0
    fi
    fail "sgk-plot exited with $? on $1.nc: $(cat "$work/$1.err")"
    return 1
}

if plot_generative denoise; then
    for figure in level-traces level-spectra locality; do
        check_png "$work/denoise-plots/denoise-$figure.png"
    done
    if grep -q "denoise-gan-field.png" "$work/denoise.out" "$work/denoise.err"; then
        fail "the denoise file gave a gan-field figure or message"
    fi
    # Level 0 has no width, and the note counts it.
    if grep -q "denoise-locality.png (1 level(s) without a width" "$work/denoise.out"; then
        echo "ok: the locality note counts the level without a width"
    else
        fail "no note of 1 level without a width in: $(cat "$work/denoise.out")"
    fi
fi
if plot_generative denoise-many; then
    check_png "$work/denoise-many-plots/denoise-many-level-traces.png"
    check_png "$work/denoise-many-plots/denoise-many-level-spectra.png"
    if [ -e "$work/denoise-many-plots/denoise-many-locality.png" ]; then
        fail "denoise-many-locality.png was written without locality_width"
    elif grep -q "skipped denoise-many-locality.png: .*'locality_width'" \
        "$work/denoise-many.err"; then
        echo "ok: locality skipped, its message names the missing 'locality_width'"
    else
        fail "no skip message naming 'locality_width' in: $(cat "$work/denoise-many.err")"
    fi
fi
for stem in gan gan-scattered; do
    if plot_generative "$stem"; then
        check_png "$work/$stem-plots/$stem-gan-field.png"
        if grep -q -e "$stem-level-" -e "$stem-locality" "$work/$stem.out" "$work/$stem.err"; then
            fail "the gan file $stem.nc gave a denoise figure or message"
        fi
    fi
done
# gan.nc names its task in the configuration attribute, so the figures a GAN never has
# data for are skipped in silence. gan-scattered.nc names none and keeps the messages.
if grep -q "skipped gan-domingos.png" "$work/gan.err"; then
    fail "the gan file with task = gan reported the drift figure as skipped"
fi
if grep -q "skipped gan-scattered-domingos.png" "$work/gan-scattered.err"; then
    echo "ok: figures a GAN never has data for are skipped in silence only for task = gan"
else
    fail "the gan file without a task gave no skip message for the drift figure"
fi

# expect_exit STATUS PATTERN ARGS...: sgk-plot ARGS exits with STATUS, writes no PNG
# and prints PATTERN on standard error.
expect_exit() {
    expected=$1
    pattern=$2
    shift 2
    rm -rf "$work/none"
    "$plot" "$@" --out "$work/none" >/dev/null 2>"$work/expect.err"
    status=$?
    if [ "$status" -ne "$expected" ]; then
        fail "sgk-plot $* exited with $status, expected $expected: $(cat "$work/expect.err")"
    elif ! grep -q -- "$pattern" "$work/expect.err"; then
        fail "sgk-plot $*: stderr does not mention '$pattern': $(cat "$work/expect.err")"
    elif [ -n "$(ls "$work/none" 2>/dev/null)" ]; then
        fail "sgk-plot $* wrote files although it failed"
    else
        echo "ok: exit $status for sgk-plot $*"
    fi
}

# 4. Unusable input: no plottable variable, a missing file, a file that is not NetCDF,
# a bad option, a discriminator field of 3-D data.
"$PYTHON_NC" -c 'import sys, netCDF4
with netCDF4.Dataset(sys.argv[1], "w") as d:
    d.createDimension("sample", 3)
    d.createVariable("x", "f8", ("sample",))[:] = [1.0, 2.0, 3.0]' "$work/bare.nc"
echo "not a NetCDF file" > "$work/text.nc"
expect_exit 2 "no figure drawn" "$work/bare.nc"
expect_exit 4 "$work/does-not-exist.nc" "$work/does-not-exist.nc"
expect_exit 4 "$work/text.nc" "$work/text.nc"
expect_exit 1 "unrecognized arguments" "$full" --frobnicate
expect_exit 2 "2-D data only" "$work/gan-3d.nc"

# 5. An interpreter without netCDF4, simulated by a module of that name that raises
# ImportError. The message must name the Debian package.
mkdir "$work/broken-modules"
echo 'raise ImportError("netCDF4 hidden by e2e-plot.sh")' > "$work/broken-modules/netCDF4.py"
PYTHONPATH="$work/broken-modules${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
expect_exit 1 "python3-netcdf4" "$full"

if [ "$failures" -ne 0 ]; then
    echo "e2e-plot: $failures check(s) failed"
    exit 1
fi
echo "e2e-plot: all checks passed"
