/* Module lifecycle and the function table; the work lives in the other files.
 */
#include <string.h>

#include "image_nif.h"
#include "log.h"
#include "mirage_nif.h"
#include "python.h"
#include "release.h"

#define PATH_SIZE 4096

#define MIRAGE_AS_STRING(name) #name,
static const char *const reason_names[] = {MIRAGE_REASONS(MIRAGE_AS_STRING)};
static const char *const format_names[] = {MIRAGE_FORMATS(MIRAGE_AS_STRING)};

/* Copy the binary under `key` in the load_info map as a C string. */
static int get_path(ErlNifEnv *env, ERL_NIF_TERM map, const char *key,
                    char out[PATH_SIZE]) {
    ERL_NIF_TERM value;
    ErlNifBinary bin;

    if (!enif_get_map_value(env, map, enif_make_atom(env, key), &value) ||
        !enif_inspect_binary(env, value, &bin) || bin.size == 0 ||
        bin.size >= PATH_SIZE || memchr(bin.data, 0, bin.size)) {
        return 0;
    }
    memcpy(out, bin.data, bin.size);
    out[bin.size] = '\0';
    return 1;
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info) {
    static char libpython[PATH_SIZE], executable[PATH_SIZE], path[PATH_SIZE];

    if (!get_path(env, load_info, "libpython", libpython) ||
        !get_path(env, load_info, "python", executable) ||
        !get_path(env, load_info, "path", path)) {
        return MIRAGE_LOAD_BAD_INFO;
    }
    mirage_log_init(env);
    mirage_python_config config = {libpython, executable, path};
    enum mirage_load_error error = mirage_python_start(env, &config);
    if (error != MIRAGE_LOAD_OK) {
        return error;
    }
    if (mirage_release_start() != 0) {
        return MIRAGE_LOAD_THREAD;
    }

    mirage_priv *priv = enif_alloc(sizeof *priv);
    if (!priv) {
        return MIRAGE_LOAD_RESOURCE;
    }
    priv->image_type = mirage_open_image_type(env);
    if (!priv->image_type) {
        enif_free(priv);
        return MIRAGE_LOAD_RESOURCE;
    }
    priv->atom_ok = enif_make_atom(env, "ok");
    priv->atom_error = enif_make_atom(env, "error");
    priv->atom_nil = enif_make_atom(env, "nil");
    priv->atom_released = enif_make_atom(env, "released");
    for (int i = 0; i < MIRAGE_REASON_COUNT; i++) {
        priv->reasons[i] = enif_make_atom(env, reason_names[i]);
    }
    for (int i = 0; i < MIRAGE_FORMAT_COUNT; i++) {
        priv->formats[i] = enif_make_atom(env, format_names[i]);
    }
    *priv_data = priv;
    return 0;
}

static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data,
                   ERL_NIF_TERM load_info) {
    (void)old_priv_data; /* freed by the old instance's unload */
    return load(env, priv_data, load_info);
}

static void unload(ErlNifEnv *env, void *priv_data) {
    (void)env;
    /* Python and the reaper stay: never finalized, shared by later loads. */
    enif_free(priv_data);
}

static ErlNifFunc nif_funcs[] = {
    {"call_io", 3, nif_call, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"call_cpu", 3, nif_call, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"live_handles", 0, nif_live_handles, ERL_NIF_DIRTY_JOB_IO_BOUND},
    /* Pure C, no Python: fine on a normal scheduler. */
    {"release", 1, nif_release, 0},
    {"atom_tables", 0, nif_atom_tables, 0},
    {"loaded?", 0, nif_loaded, 0},
    {"log_delivered", 0, nif_log_delivered, 0},
    {"abandoned_calls", 0, nif_abandoned_calls, 0},
};

ERL_NIF_INIT(Elixir.Mirage.NIF, nif_funcs, load, NULL, upgrade, unload)
