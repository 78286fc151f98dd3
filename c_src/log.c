/*
 * mirage_log (py_api.h): Python's stdout, stderr, warnings and logging records
 * arrive here as lines and are sent as {mirage_log, Level, Line} to the process
 * registered as 'Elixir.Mirage.LogForwarder', which passes them to Logger.
 * Without that process (the application not started) lines go to stderr, never
 * stdout.
 *
 * Delivery is bounded: at most MIRAGE_LOG_IN_FLIGHT lines wait in the
 * forwarder's mailbox. The forwarder acknowledges each line it has logged
 * (log_delivered/0); lines beyond the bound are counted and dropped, and the
 * forwarder reports the count once it has caught up. A slow Logger then costs
 * lines, not memory.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "py_api.h"
#include "python.h"

/* Atoms are global to the VM, so these stay valid across module reloads. */
static ERL_NIF_TERM atom_forwarder;
static ERL_NIF_TERM atom_mirage_log;
static ERL_NIF_TERM atom_levels[4];

/* Guards the counters and the forwarder they count for; never held while
 * sending. Made once: shared by every load of the library. */
static ErlNifMutex *lock;
static ErlNifPid forwarder;
static int forwarder_known;
static long in_flight; /* sent to `forwarder`, not yet acknowledged */
static long dropped;   /* not sent since the last report */

void mirage_log_init(ErlNifEnv *env) {
    atom_forwarder = enif_make_atom(env, "Elixir.Mirage.LogForwarder");
    atom_mirage_log = enif_make_atom(env, "mirage_log");
    atom_levels[0] = enif_make_atom(env, "debug");
    atom_levels[1] = enif_make_atom(env, "info");
    atom_levels[2] = enif_make_atom(env, "warning");
    atom_levels[3] = enif_make_atom(env, "error");
    if (!lock) {
        lock = enif_mutex_create("mirage_log");
    }
}

/* Reserve a place in the forwarder's mailbox; 0 when it is full. */
static int admit(const ErlNifPid *pid) {
    enif_mutex_lock(lock);
    if (!forwarder_known || enif_compare_pids(pid, &forwarder) != 0) {
        /* A new forwarder: what its predecessor never acknowledged is gone. */
        forwarder = *pid;
        forwarder_known = 1;
        in_flight = 0;
    }
    int admitted = in_flight < MIRAGE_LOG_IN_FLIGHT;
    if (admitted) {
        in_flight++;
    } else {
        dropped++;
    }
    enif_mutex_unlock(lock);
    return admitted;
}

static void settle(void) {
    enif_mutex_lock(lock);
    if (in_flight > 0) {
        in_flight--;
    }
    enif_mutex_unlock(lock);
}

void mirage_log(int level, const char *message, size_t size) {
    ErlNifEnv *caller = mirage_python_caller_env();
    ErlNifPid pid;

    if (level < 0 || level > 3) {
        level = 3;
    }
    if (!lock || !enif_whereis_pid(caller, atom_forwarder, &pid)) {
        fprintf(stderr, "mirage: %.*s\n", (int)size, message);
        return;
    }
    if (!admit(&pid)) {
        return;
    }
    ErlNifEnv *msg_env = enif_alloc_env();
    ERL_NIF_TERM line;
    unsigned char *bytes = enif_make_new_binary(msg_env, size, &line);
    int sent = 0;
    if (bytes) {
        memcpy(bytes, message, size);
        ERL_NIF_TERM msg = enif_make_tuple3(msg_env, atom_mirage_log,
                                            atom_levels[level], line);
        sent = enif_send(caller, &pid, msg_env, msg);
    }
    if (!sent) {
        settle();
    }
    enif_free_env(msg_env);
}

ERL_NIF_TERM nif_log_delivered(ErlNifEnv *env, int argc,
                               const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    long report = 0;
    enif_mutex_lock(lock);
    if (in_flight > 0) {
        in_flight--;
    }
    /* Report drops once the backlog has drained, so the report is not itself
     * stuck behind (or dropped after) the lines that caused it. */
    if (dropped > 0 && in_flight < MIRAGE_LOG_IN_FLIGHT / 2) {
        report = dropped;
        dropped = 0;
    }
    enif_mutex_unlock(lock);
    return enif_make_long(env, report);
}
