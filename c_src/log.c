/*
 * mirage_log (py_api.h): Python's stdout, stderr, warnings and logging records
 * arrive here as lines and are sent as {mirage_log, Level, Line} to the process
 * registered as 'Elixir.Mirage.LogForwarder', which passes them to Logger.
 * Without that process (the application not started) lines go to stderr, never
 * stdout.
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

void mirage_log_init(ErlNifEnv *env) {
    atom_forwarder = enif_make_atom(env, "Elixir.Mirage.LogForwarder");
    atom_mirage_log = enif_make_atom(env, "mirage_log");
    atom_levels[0] = enif_make_atom(env, "debug");
    atom_levels[1] = enif_make_atom(env, "info");
    atom_levels[2] = enif_make_atom(env, "warning");
    atom_levels[3] = enif_make_atom(env, "error");
}

void mirage_log(int level, const char *message, size_t size) {
    ErlNifEnv *caller = mirage_python_caller_env();
    ErlNifPid pid;

    if (level < 0 || level > 3) {
        level = 3;
    }
    if (!enif_whereis_pid(caller, atom_forwarder, &pid)) {
        fprintf(stderr, "mirage: %.*s\n", (int)size, message);
        return;
    }
    ErlNifEnv *msg_env = enif_alloc_env();
    ERL_NIF_TERM line;
    unsigned char *bytes = enif_make_new_binary(msg_env, size, &line);
    if (bytes) {
        memcpy(bytes, message, size);
        ERL_NIF_TERM msg = enif_make_tuple3(msg_env, atom_mirage_log,
                                            atom_levels[level], line);
        enif_send(caller, &pid, msg_env, msg);
    }
    enif_free_env(msg_env);
}
