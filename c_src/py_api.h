/*
 * The boundary between the C glue and the embedded Python (mirage/_nif.py).
 *
 * c_src/build.py hands the marked sections to cffi: the types and the C helpers
 * as cdef, the mirage_py_* functions as the embedding API (C calls them, Python
 * implements them with @ffi.def_extern). Keep each section plain declarations.
 */
#ifndef MIRAGE_PY_API_H
#define MIRAGE_PY_API_H

#include <stddef.h>
#include <stdint.h>

/* cffi-types-begin */
/* mirage_py_call's answer when the held image was released meanwhile; Python
 * reads it as lib.MIRAGE_CODE_RELEASED (cffi checks the value when building).
 */
#define MIRAGE_CODE_RELEASED -2
/* ... when the call's `timeout` passed or its caller died: the NIF answers
 * {error, timeout} (lib.MIRAGE_CODE_TIMEOUT). */
#define MIRAGE_CODE_TIMEOUT -3

/* What Python reports about an image it now holds. */
typedef struct {
    int64_t handle; /* key in mirage._nif's registry; 0 for none */
    int32_t format; /* index into mirage.formats.FORMATS */
    uint32_t width;
    uint32_t height;
} mirage_image_info;

/* Where Python writes encoded bytes; owned by the NIF that passed it. */
typedef struct mirage_output mirage_output;
/* cffi-types-end */

/* cffi-c-api-begin */
/* Reserve `size` bytes of an output binary; NULL when out of memory. */
unsigned char *mirage_output_alloc(mirage_output *output, size_t size);
/* Forward a line of Python output to Elixir's Logger (level 0 debug .. 3
 * error). */
void mirage_log(int level, const char *message, size_t size);
/* 1 while the process that called the NIF on this thread is alive (or when no
 * NIF is calling), 0 once it has exited: a call nobody waits for stops early.
 */
int mirage_caller_alive(void);
/* Send libtiff's warnings and errors to mirage_log instead of stderr; 1 when
 * Pillow's libtiff was found (call after importing Pillow). */
int mirage_route_codec_messages(void);
/* cffi-c-api-end */

/*
 * mirage_py_call runs the operation named `op` (see mirage/ops.py) on a source:
 * a held image (`handle` > 0), bytes (`data`), or nothing. `args` is the
 * operation's options map in the External Term Format. Python fills what the
 * operation produced: `bytes` (encoded output), `image` (a newly held image,
 * handle 0 when none), `term` (a result term, in the External Term Format).
 * It answers 0 on success, 1 + the index of the failure's reason in
 * mirage.errors.REASONS, or MIRAGE_CODE_RELEASED when `handle` was released
 * meanwhile (Mirage.release/1 racing the call), or MIRAGE_CODE_TIMEOUT when it
 * stopped at a safe point past its deadline. mirage_py_start answers 1 once
 * the callbacks are installed (cffi makes it 0 if the Python side failed to
 * import).
 */

/* cffi-embedding-api-begin */
int mirage_py_start(void);
int mirage_py_call(const char *op, int64_t handle, const unsigned char *data,
                   size_t size, const unsigned char *args, size_t args_size,
                   mirage_image_info *image, mirage_output *bytes,
                   mirage_output *term);
void mirage_py_release(const int64_t *handles, size_t count);
int64_t mirage_py_live_handles(void);
/* cffi-embedding-api-end */

#endif
