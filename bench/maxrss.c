/* `make bench`, part 6: peak resident memory of each rank of an MPI program.
 *
 * Usage: mpiexec -n P sgk-bench-maxrss OUTPUT_PREFIX PROGRAM [ARGUMENT]...
 * Each rank of the launcher runs this wrapper, which starts PROGRAM as its child with the
 * same environment, so the child joins the MPI job as that rank. When the child exits, the
 * wrapper writes getrusage(RUSAGE_CHILDREN) ru_maxrss, which with one child is that
 * child's peak resident set (in KiB on Linux), to OUTPUT_PREFIX.RANK as "maxrss_kib N".
 * The wrapper itself never calls MPI. Its exit status is the child's, or 4 when the child
 * could not be started or the file could not be written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The rank variables of Open MPI, MPICH and Slurm, in that order. */
static const char *launcher_rank(void)
{
    static const char *const names[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID" };

    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *value = getenv(names[k]);
        if (value != NULL && *value != '\0') return value;
    }
    return "0";
}

int main(int argc, char **argv)
{
    struct rusage usage;
    int status = 0;
    char path[4096];

    if (argc < 3) {
        fprintf(stderr, "usage: sgk-bench-maxrss OUTPUT_PREFIX PROGRAM [ARGUMENT]...\n");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("sgk-bench-maxrss: fork");
        return 4;
    }
    if (child == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "sgk-bench-maxrss: failed to run '%s': %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    if (waitpid(child, &status, 0) < 0 || getrusage(RUSAGE_CHILDREN, &usage) != 0) {
        perror("sgk-bench-maxrss: waitpid");
        return 4;
    }

    snprintf(path, sizeof path, "%s.%s", argv[1], launcher_rank());
    FILE *out = fopen(path, "w");
    int written = out != NULL && fprintf(out, "maxrss_kib %ld\n", usage.ru_maxrss) > 0;
    if (out != NULL && fclose(out) != 0) written = 0;
    if (!written) {
        fprintf(stderr, "sgk-bench-maxrss: failed to write '%s': %s\n", path, strerror(errno));
        return 4;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    fprintf(stderr, "sgk-bench-maxrss: '%s' ended by signal %d\n", argv[2], WTERMSIG(status));
    return 4;
}
