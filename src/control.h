/* Run control shared by the ranks while they train (private to libsgk): stop requests
 * from signals, periodic snapshots and progress, agreed in rounds of non-blocking
 * reductions so that ranks with different amounts of work never wait on each other
 * between rounds. */
#ifndef SGK_CONTROL_H
#define SGK_CONTROL_H

#include <mpi.h>

typedef enum {
    SGK_ACTION_CONTINUE,        /* keep training */
    SGK_ACTION_SNAPSHOT,        /* write a snapshot, then keep training */
    SGK_ACTION_STOP,            /* write a snapshot, then leave (a signal arrived) */
    SGK_ACTION_ABORT,           /* leave without a snapshot (a replica diverged, stop policy) */
    SGK_ACTION_FINISHED         /* every rank has trained all its replicas */
} sgk_action;

typedef struct {
    MPI_Comm comm;
    int rank;
    MPI_Request request;
    int posted;                 /* a round is in flight */
    long send[5];               /* this rank's contribution to the round in flight */
    long total[5];              /* sums of the last completed round */
    long steps_total;           /* optimizer steps of the whole ensemble */
    double snapshot_seconds;    /* period of snapshots, 0 for none */
    double last_snapshot;       /* sgk_seconds() of the last snapshot or the start */
    double last_report;         /* sgk_seconds() of the last progress line */
    double start;               /* sgk_seconds() at the start of training */
    int live;                   /* rank 0 writes a live progress line (stdout is a terminal) */
    int report;                 /* print progress at all */
} sgk_control;

/* Install handlers that turn SIGTERM and SIGUSR1 into a stop request. */
void sgk_control_install_signals(void);

/* Nonzero once SIGTERM or SIGUSR1 reached this process. */
int sgk_control_signal_seen(void);

/* Set up the rounds. Collective only in that every rank must call it before polling. */
void sgk_control_init(sgk_control *control, MPI_Comm comm, long steps_total,
                      double snapshot_minutes, int report);

/* Collective in rounds. Called by a training rank at the top of every step with its
 * replica and step counts; returns the action of a round that completed since the
 * last call, or SGK_ACTION_CONTINUE. `diverged_stop` asks every rank to abort. */
sgk_action sgk_control_poll(sgk_control *control, long steps_done, int finished,
                            int diverged_stop);

/* Collective. Called by a rank that has no step left: polls until a round ends the
 * training (finished, stop or abort) or asks for a snapshot. */
sgk_action sgk_control_wait(sgk_control *control, long steps_done, int diverged_stop);

/* Note that a snapshot was written (restarts the period). */
void sgk_control_snapshot_done(sgk_control *control);

/* End the live progress line. */
void sgk_control_finish(sgk_control *control);

#endif
