#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "sgk/log.h"

/* Entries of a round's reduction (summed over ranks). */
enum {
    ROUND_SIGNALS,      /* ranks that saw SIGTERM or SIGUSR1 */
    ROUND_UNFINISHED,   /* ranks with steps left */
    ROUND_STEPS,        /* optimizer steps done */
    ROUND_SNAPSHOT_DUE, /* rank 0: the snapshot period has passed */
    ROUND_DIVERGED,     /* ranks asking to abort after a divergence */
    ROUND_SIZE
};

/* Interval of the progress log lines when stdout is not a terminal. */
static const double REPORT_INTERVAL_SECONDS = 30.0;

static volatile sig_atomic_t signal_seen = 0;

static void on_signal(int signal_number)
{
    (void)signal_number;
    signal_seen = 1;
}

void sgk_control_install_signals(void)
{
    struct sigaction action;

    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
}

int sgk_control_signal_seen(void)
{
    return signal_seen != 0;
}

void sgk_control_init(sgk_control *control, MPI_Comm comm, long steps_total,
                      double snapshot_minutes, int report)
{
    memset(control, 0, sizeof *control);
    control->comm = comm;
    MPI_Comm_rank(comm, &control->rank);
    control->steps_total = steps_total;
    control->snapshot_seconds = 60.0 * snapshot_minutes;
    control->start = sgk_seconds();
    control->last_snapshot = control->start;
    control->last_report = control->start;
    control->report = report;
    /* Open MPI gives every rank a pseudo-terminal as stdout whether or not mpirun writes to
     * a terminal, so a terminal is only trusted when no launcher sits in between. */
    control->live = report && control->rank == 0 && isatty(STDOUT_FILENO)
                    && getenv("OMPI_COMM_WORLD_SIZE") == NULL && getenv("SLURM_STEP_ID") == NULL
                    && getenv("PMI_RANK") == NULL;
}

static void post_round(sgk_control *control, long steps_done, int finished, int diverged_stop)
{
    double now = sgk_seconds();

    control->send[ROUND_SIGNALS] = signal_seen ? 1 : 0;
    control->send[ROUND_UNFINISHED] = finished ? 0 : 1;
    control->send[ROUND_STEPS] = steps_done;
    control->send[ROUND_SNAPSHOT_DUE] = control->rank == 0 && control->snapshot_seconds > 0.0
                                        && now - control->last_snapshot >= control->snapshot_seconds;
    control->send[ROUND_DIVERGED] = diverged_stop ? 1 : 0;
    MPI_Iallreduce(control->send, control->total, ROUND_SIZE, MPI_LONG, MPI_SUM, control->comm,
                   &control->request);
    control->posted = 1;
}

/* Rank 0: replicas and steps done, steps per second and the estimated time left. */
static void report_progress(sgk_control *control)
{
    double now = sgk_seconds();
    double elapsed = now - control->start;
    long done = control->total[ROUND_STEPS];
    double rate = elapsed > 0.0 ? (double)done / elapsed : 0.0;
    double left = rate > 0.0 ? (double)(control->steps_total - done) / rate : 0.0;

    if (control->rank != 0 || !control->report) return;
    if (control->live) {
        sgk_log_live("[progress] %ld / %ld steps (%.1f%%), %.1f steps/s, ETA %.0f s", done,
                     control->steps_total, 100.0 * done / (double)control->steps_total, rate,
                     left);
    } else if (now - control->last_report >= REPORT_INTERVAL_SECONDS) {
        sgk_log(SGK_LOG_INFO, "progress: %ld of %ld steps (%.1f%%), %.1f steps/s, ETA %.0f s",
                done, control->steps_total, 100.0 * done / (double)control->steps_total, rate,
                left);
        control->last_report = now;
    }
}

/* The action of a completed round. */
static sgk_action round_action(sgk_control *control)
{
    report_progress(control);
    if (control->total[ROUND_DIVERGED] > 0) return SGK_ACTION_ABORT;
    if (control->total[ROUND_SIGNALS] > 0) return SGK_ACTION_STOP;
    if (control->total[ROUND_UNFINISHED] == 0) return SGK_ACTION_FINISHED;
    if (control->total[ROUND_SNAPSHOT_DUE] > 0) return SGK_ACTION_SNAPSHOT;
    return SGK_ACTION_CONTINUE;
}

sgk_action sgk_control_poll(sgk_control *control, long steps_done, int finished,
                            int diverged_stop)
{
    int complete = 0;

    if (!control->posted) {
        post_round(control, steps_done, finished, diverged_stop);
        return SGK_ACTION_CONTINUE;
    }
    MPI_Test(&control->request, &complete, MPI_STATUS_IGNORE);
    if (!complete) return SGK_ACTION_CONTINUE;
    control->posted = 0;

    sgk_action action = round_action(control);
    /* The next round starts only while training goes on, so every rank leaves after
     * the same round. */
    if (action == SGK_ACTION_CONTINUE) post_round(control, steps_done, finished, diverged_stop);
    return action;
}

sgk_action sgk_control_wait(sgk_control *control, long steps_done, int diverged_stop)
{
    /* Sleep between tests: a waiting rank may share its core with a training rank. */
    const struct timespec pause = { 0, 2000000 };

    for (;;) {
        sgk_action action = sgk_control_poll(control, steps_done, 1, diverged_stop);
        if (action != SGK_ACTION_CONTINUE) return action;
        nanosleep(&pause, NULL);
    }
}

void sgk_control_snapshot_done(sgk_control *control)
{
    control->last_snapshot = sgk_seconds();
}

void sgk_control_finish(sgk_control *control)
{
    (void)control;
    sgk_log_live_end();
}
