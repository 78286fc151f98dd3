/*
 * NIFs over images. Every one that enters Python runs on a dirty scheduler;
 * Mirage.Transport.NIF picks the kind per operation: reading a header is short
 * but may wait for the GIL (dirty I/O, whose many threads may block), decoding,
 * resampling and encoding are CPU work for the dirty CPU schedulers.
 */
#include "image_nif.h"

#include <stdatomic.h>

#include "py_api.h"
#include "python.h"
#include "release.h"

/* The resource: a handle into mirage._nif's registry plus what the header said,
 * cached so Elixir can ask without entering Python. The handle becomes 0 once
 * released (by Mirage.release/1 or the destructor, whichever comes first);
 * atomic because a release may race a call reading it on a dirty scheduler. */
typedef struct {
    _Atomic int64_t handle;
    int32_t format;
    uint32_t width;
    uint32_t height;
} mirage_image;

struct mirage_output {
    ErlNifBinary binary;
    int allocated;
};

unsigned char *mirage_output_alloc(mirage_output *output, size_t size) {
    if (output->allocated) {
        enif_release_binary(&output->binary);
        output->allocated = 0;
    }
    if (!enif_alloc_binary(size, &output->binary)) {
        return NULL;
    }
    output->allocated = 1;
    return output->binary.data;
}

/* Take the handle out of the resource; only the first caller gets it. */
static int64_t take_handle(mirage_image *image) {
    return atomic_exchange(&image->handle, 0);
}

static void image_dtor(ErlNifEnv *env, void *object) {
    (void)env;
    /* Never Python here: this may run on a normal scheduler. */
    int64_t handle = take_handle(object);
    if (handle > 0) {
        mirage_release_enqueue(handle);
    }
}

ErlNifResourceType *mirage_open_image_type(ErlNifEnv *env) {
    return enif_open_resource_type(env, NULL, "mirage_image", image_dtor,
                                   ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER,
                                   NULL);
}

static ERL_NIF_TERM error_term(ErlNifEnv *env, const mirage_priv *priv,
                               int code) {
    int index = code - 1;
    if (index < 0 || index >= MIRAGE_REASON_COUNT) {
        index = MIRAGE_CATCH_ALL_REASON;
    }
    return enif_make_tuple2(env, priv->atom_error, priv->reasons[index]);
}

/* {Ref, Format, Width, Height} for an image Python now holds; the handle is
 * released again if it cannot be wrapped. */
static int image_terms(ErlNifEnv *env, const mirage_priv *priv,
                       const mirage_image_info *info, ERL_NIF_TERM terms[4]) {
    if (info->handle <= 0 || info->format < 0 ||
        info->format >= MIRAGE_FORMAT_COUNT) {
        if (info->handle > 0) {
            mirage_release_enqueue(info->handle);
        }
        return 0;
    }
    mirage_image *image = enif_alloc_resource(priv->image_type, sizeof *image);
    if (!image) {
        mirage_release_enqueue(info->handle);
        return 0;
    }
    atomic_init(&image->handle, info->handle);
    image->format = info->format;
    image->width = info->width;
    image->height = info->height;
    terms[0] = enif_make_resource(env, image);
    enif_release_resource(image); /* the term now owns it */
    terms[1] = priv->formats[info->format];
    terms[2] = enif_make_uint(env, info->width);
    terms[3] = enif_make_uint(env, info->height);
    return 1;
}

/* The longest operation name (an atom from Mirage's own code). */
#define OP_SIZE 32

static void discard(mirage_output *output) {
    if (output->allocated) {
        enif_release_binary(&output->binary);
        output->allocated = 0;
    }
}

/* call_io/3 and call_cpu/3: run(Op, Source, ArgsETF) on a dirty scheduler of
 * the kind the operation needs (the Elixir side picks which). */
ERL_NIF_TERM nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    const mirage_priv *priv = enif_priv_data(env);
    char op[OP_SIZE];
    ErlNifBinary args, source;
    mirage_image *held;
    int64_t handle = 0;
    const unsigned char *data = NULL;
    size_t size = 0;

    if (argc != 3 ||
        !enif_get_atom(env, argv[0], op, sizeof op, ERL_NIF_LATIN1) ||
        !enif_inspect_binary(env, argv[2], &args)) {
        return enif_make_badarg(env);
    }
    if (enif_get_resource(env, argv[1], priv->image_type, (void **)&held)) {
        handle = atomic_load(&held->handle);
        if (handle <= 0) {
            return priv->atom_released;
        }
    } else if (enif_inspect_binary(env, argv[1], &source)) {
        /* Never NULL, even for <<>>: NULL tells Python there is no source. */
        data = source.size ? source.data : (const unsigned char *)"";
        size = source.size;
    } else if (!enif_is_identical(argv[1], priv->atom_nil)) {
        return enif_make_badarg(env);
    }

    mirage_image_info info = {0};
    mirage_output bytes = {0}, term = {0};
    mirage_python_attach(env);
    int code = mirage_py_call(op, handle, data, size, args.data, args.size,
                              &info, &bytes, &term);
    mirage_python_detach();

    ERL_NIF_TERM result = priv->atom_nil;
    if (code == 0 && term.allocated &&
        !enif_binary_to_term(env, term.binary.data, term.binary.size, &result,
                             ERL_NIF_BIN2TERM_SAFE)) {
        code = -1; /* SAFE: Python may only name atoms that already exist */
    }
    discard(&term);
    if (code != 0) {
        discard(&bytes);
        if (info.handle > 0) {
            mirage_release_enqueue(info.handle);
        }
        if (code == MIRAGE_CODE_RELEASED) {
            return priv->atom_released;
        }
        if (code == MIRAGE_CODE_TIMEOUT) {
            return enif_make_tuple2(env, priv->atom_error,
                                    enif_make_atom(env, "timeout"));
        }
        return error_term(env, priv, code);
    }

    ERL_NIF_TERM encoded = priv->atom_nil;
    if (bytes.allocated) {
        encoded = enif_make_binary(env, &bytes.binary); /* the term owns it */
    }
    ERL_NIF_TERM image = priv->atom_nil;
    if (info.handle > 0) {
        ERL_NIF_TERM parts[4];
        if (!image_terms(env, priv, &info, parts)) {
            return error_term(env, priv, -1);
        }
        image = enif_make_tuple_from_array(env, parts, 4);
    }
    return enif_make_tuple4(env, priv->atom_ok, encoded, image, result);
}

ERL_NIF_TERM nif_release(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    const mirage_priv *priv = enif_priv_data(env);
    mirage_image *image;

    if (argc != 1 ||
        !enif_get_resource(env, argv[0], priv->image_type, (void **)&image)) {
        return enif_make_badarg(env);
    }
    /* Only queues: the reaper drops the Python object off-scheduler. */
    int64_t handle = take_handle(image);
    if (handle > 0) {
        mirage_release_enqueue(handle);
    }
    return priv->atom_ok;
}

ERL_NIF_TERM nif_live_handles(ErlNifEnv *env, int argc,
                              const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    mirage_python_attach(env);
    int64_t live = mirage_py_live_handles();
    mirage_python_detach();
    return enif_make_int64(env, live);
}

ERL_NIF_TERM nif_abandoned_calls(ErlNifEnv *env, int argc,
                                 const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    return enif_make_long(env, mirage_python_abandoned());
}

static ERL_NIF_TERM atom_list(ErlNifEnv *env, const ERL_NIF_TERM *atoms,
                              unsigned count) {
    return enif_make_list_from_array(env, atoms, count);
}

ERL_NIF_TERM nif_atom_tables(ErlNifEnv *env, int argc,
                             const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    const mirage_priv *priv = enif_priv_data(env);
    ERL_NIF_TERM keys[] = {enif_make_atom(env, "reasons"),
                           enif_make_atom(env, "formats")};
    ERL_NIF_TERM values[] = {
        atom_list(env, priv->reasons, MIRAGE_REASON_COUNT),
        atom_list(env, priv->formats, MIRAGE_FORMAT_COUNT)};
    ERL_NIF_TERM map;
    if (!enif_make_map_from_arrays(env, keys, values, 2, &map)) {
        return enif_make_badarg(env);
    }
    return map;
}

ERL_NIF_TERM nif_loaded(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    return enif_make_atom(env, "true");
}
