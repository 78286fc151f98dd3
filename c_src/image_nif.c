/*
 * NIFs over images. Each one that enters Python runs on a dirty scheduler:
 * from_bytes only parses a header, so it is short but may wait for the GIL
 * (dirty I/O, whose many threads may block); resize decodes, resamples and
 * encodes, which is CPU work for one of the dirty CPU schedulers.
 */
#include "image_nif.h"

#include "py_api.h"
#include "python.h"
#include "release.h"

/* The resource: a handle into mirage._nif's registry plus what the header said,
 * cached so Elixir can ask without entering Python. */
typedef struct {
    int64_t handle;
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

static void image_dtor(ErlNifEnv *env, void *object) {
    (void)env;
    const mirage_image *image = object;
    /* Never Python here: this may run on a normal scheduler. */
    if (image->handle > 0) {
        mirage_release_enqueue(image->handle);
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
    image->handle = info->handle;
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

ERL_NIF_TERM nif_from_bytes(ErlNifEnv *env, int argc,
                            const ERL_NIF_TERM argv[]) {
    const mirage_priv *priv = enif_priv_data(env);
    ErlNifBinary bytes;
    ErlNifUInt64 max_pixels;
    mirage_image_info info = {0};
    ERL_NIF_TERM image[4];

    if (argc != 2 || !enif_inspect_binary(env, argv[0], &bytes) ||
        !enif_get_uint64(env, argv[1], &max_pixels)) {
        return enif_make_badarg(env);
    }
    mirage_python_enter(env);
    int code = mirage_py_from_bytes(bytes.data, bytes.size, max_pixels, &info);
    mirage_python_leave();
    if (code != 0) {
        return error_term(env, priv, code);
    }
    if (!image_terms(env, priv, &info, image)) {
        return error_term(env, priv, 0);
    }
    return enif_make_tuple5(env, priv->atom_ok, image[0], image[1], image[2],
                            image[3]);
}

ERL_NIF_TERM nif_resize(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    const mirage_priv *priv = enif_priv_data(env);
    mirage_image *source;
    unsigned int width, height;
    ErlNifUInt64 max_pixels;
    mirage_image_info info = {0};
    mirage_output output = {0};
    ERL_NIF_TERM image[4];

    if (argc != 4 ||
        !enif_get_resource(env, argv[0], priv->image_type, (void **)&source) ||
        !enif_get_uint(env, argv[1], &width) || width == 0 ||
        !enif_get_uint(env, argv[2], &height) || height == 0 ||
        !enif_get_uint64(env, argv[3], &max_pixels)) {
        return enif_make_badarg(env);
    }
    mirage_python_enter(env);
    int code = mirage_py_resize(source->handle, width, height, max_pixels,
                                &info, &output);
    mirage_python_leave();
    if (code == 0 && !output.allocated) {
        code = -1; /* success without bytes would be a bug on the Python side */
    }
    if (code != 0) {
        if (output.allocated) {
            enif_release_binary(&output.binary);
        }
        if (code == -1 && info.handle > 0) {
            mirage_release_enqueue(info.handle);
        }
        return error_term(env, priv, code);
    }
    ERL_NIF_TERM bytes = enif_make_binary(env, &output.binary);
    if (!image_terms(env, priv, &info, image)) {
        return error_term(env, priv, 0);
    }
    return enif_make_tuple6(env, priv->atom_ok, bytes, image[0], image[1],
                            image[2], image[3]);
}

ERL_NIF_TERM nif_live_handles(ErlNifEnv *env, int argc,
                              const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    mirage_python_enter(env);
    int64_t live = mirage_py_live_handles();
    mirage_python_leave();
    return enif_make_int64(env, live);
}

static ERL_NIF_TERM atom_list(ErlNifEnv *env, const ERL_NIF_TERM *atoms,
                              unsigned count) {
    return enif_make_list_from_array(env, atoms, count);
}

ERL_NIF_TERM nif_reasons(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    const mirage_priv *priv = enif_priv_data(env);
    return atom_list(env, priv->reasons, MIRAGE_REASON_COUNT);
}

ERL_NIF_TERM nif_formats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    const mirage_priv *priv = enif_priv_data(env);
    return atom_list(env, priv->formats, MIRAGE_FORMAT_COUNT);
}
