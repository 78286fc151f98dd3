/*
 * Starting the embedded interpreter. beam.smp dlopens this NIF with RTLD_LOCAL,
 * so libpython's symbols would be invisible to the extension modules Python
 * imports (Pillow, cffi); libpython is re-opened RTLD_GLOBAL before Python
 * starts. The interpreter is configured in isolation from the environment (no
 * PATH or PYTHONHOME guessing) and is never finalized: extension modules cannot
 * be unloaded safely, and this object is linked -z nodelete to match.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python.h"

#include <dlfcn.h>
#include <stdio.h>

#include "log.h"
#include "py_api.h"

typedef enum { NOT_STARTED, RUNNING, BROKEN } python_state;

/* One interpreter per OS process: these outlive any one load of the module. */
static python_state state = NOT_STARTED;
static _Thread_local int thread_attached;
static _Thread_local ErlNifEnv *caller_env;

static void report(const char *what, const char *detail) {
    fprintf(stderr, "mirage: %s: %s\n", what, detail ? detail : "");
}

static int add_to_sys_path(const char *dir) {
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    PyObject *entry = PyUnicode_DecodeFSDefault(dir);
    int ok = sys_path && entry && PyList_Insert(sys_path, 0, entry) == 0;
    Py_XDECREF(entry);
    return ok;
}

static enum mirage_load_error initialize(const mirage_python_config *config) {
    PyConfig py_config;
    PyStatus status;

    if (!dlopen(config->libpython, RTLD_NOW | RTLD_GLOBAL)) {
        report("cannot make libpython global", dlerror());
        return MIRAGE_LOAD_LIBPYTHON;
    }

    PyConfig_InitIsolatedConfig(&py_config);
    py_config.install_signal_handlers = 0; /* signals belong to the VM */
    py_config.parse_argv = 0;
    status = PyConfig_SetBytesString(&py_config, &py_config.executable,
                                     config->executable);
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&py_config);
    }
    PyConfig_Clear(&py_config);
    if (PyStatus_Exception(status)) {
        /* Report, never Py_ExitStatusException: that would exit the VM. */
        report("Python failed to start", status.err_msg);
        return MIRAGE_LOAD_INTERPRETER;
    }

    if (!add_to_sys_path(config->path)) {
        PyErr_Print();
        PyEval_SaveThread();
        return MIRAGE_LOAD_INTERPRETER;
    }
    /* Release the GIL but keep this thread's state, as mirage_python_attach
     * does. */
    PyEval_SaveThread();
    thread_attached = 1;
    return MIRAGE_LOAD_OK;
}

enum mirage_load_error mirage_python_start(ErlNifEnv *env,
                                           const mirage_python_config *config) {
    enum mirage_load_error result = MIRAGE_LOAD_OK;

    if (state == BROKEN) {
        /* A half-started interpreter cannot be started again in this process.
         */
        report("Python failed to start earlier", "restart the VM");
        return MIRAGE_LOAD_INTERPRETER;
    }
    if (state == NOT_STARTED && !Py_IsInitialized()) {
        result = initialize(config);
        if (result != MIRAGE_LOAD_OK) {
            if (result != MIRAGE_LOAD_LIBPYTHON) {
                state = BROKEN;
            }
            return result;
        }
    }
    state = RUNNING;

    /* The first call runs cffi's embedding init code: importing mirage._nif,
     * Pillow and installing the callbacks. A failure prints its traceback. */
    mirage_python_attach(env);
    int started = mirage_py_start();
    mirage_python_detach();
    if (started != 1) {
        report("the Python side of the NIF failed to import",
               "see the traceback above");
        return MIRAGE_LOAD_PYTHON_IMPORT;
    }
    return MIRAGE_LOAD_OK;
}

void mirage_python_attach(ErlNifEnv *env) {
    caller_env = env;
    mirage_codec_log_begin();
    if (!thread_attached) {
        /* Ensure creates this thread's state (and takes the GIL); SaveThread
         * drops the GIL but the state stays registered for later Ensures. */
        (void)PyGILState_Ensure();
        PyEval_SaveThread();
        thread_attached = 1;
    }
}

void mirage_python_detach(void) {
    mirage_codec_log_end();
    caller_env = NULL;
}

ErlNifEnv *mirage_python_caller_env(void) { return caller_env; }

/* Counts the checks that found the caller gone: the first one stops the call,
 * so this is the number of calls abandoned. */
static long abandoned;

int mirage_caller_alive(void) {
    /* Allowed on dirty schedulers, with the env of the NIF running there. */
    if (caller_env == NULL || enif_is_current_process_alive(caller_env)) {
        return 1;
    }
    __atomic_fetch_add(&abandoned, 1, __ATOMIC_RELAXED);
    return 0;
}

long mirage_python_abandoned(void) {
    return __atomic_load_n(&abandoned, __ATOMIC_RELAXED);
}
