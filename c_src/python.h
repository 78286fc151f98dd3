/* The embedded CPython: started once per OS process, never finalized. */
#ifndef MIRAGE_PYTHON_H
#define MIRAGE_PYTHON_H

#include <erl_nif.h>
#include <stddef.h>

/* Why load failed; the Elixir side (Mirage.NIF) turns these into messages. */
enum mirage_load_error {
    MIRAGE_LOAD_OK = 0,
    MIRAGE_LOAD_BAD_INFO = 1,
    MIRAGE_LOAD_LIBPYTHON = 2,
    MIRAGE_LOAD_INTERPRETER = 3,
    MIRAGE_LOAD_PYTHON_IMPORT = 4,
    MIRAGE_LOAD_THREAD = 5,
    MIRAGE_LOAD_RESOURCE = 6,
};

typedef struct {
    const char *libpython; /* made global before Python starts */
    const char
        *executable;  /* the Python (or virtualenv python) the build used */
    const char *path; /* directory holding the `mirage` package */
} mirage_python_config;

/* Start Python (first load) or check it still answers (reload, upgrade). */
enum mirage_load_error mirage_python_start(ErlNifEnv *env,
                                           const mirage_python_config *config);

/*
 * Bracket every call into Python from a NIF: remembers the caller's env (for
 * log messages sent meanwhile) and gives the thread a lasting Python thread
 * state, so that each call only takes the GIL instead of creating and freeing a
 * state.
 */
void mirage_python_attach(ErlNifEnv *caller_env);
void mirage_python_detach(void);

/* The env of the NIF currently calling Python on this thread, or NULL. */
ErlNifEnv *mirage_python_caller_env(void);

/* How many calls Python has found running for a caller that died (each such
 * call then stops at its next safe point). */
long mirage_python_abandoned(void);

#endif
