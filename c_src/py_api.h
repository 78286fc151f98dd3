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
/* What Python reports about an image it now holds. */
typedef struct {
    int64_t handle; /* key in mirage._nif's registry, > 0 */
    int32_t format; /* index into mirage.formats.FORMATS */
    uint32_t width;
    uint32_t height;
} mirage_image_info;

/* Where Python writes encoded bytes; owned by the NIF that passed it. */
typedef struct mirage_output mirage_output;
/* cffi-types-end */

/* cffi-c-api-begin */
/* Reserve `size` bytes of the result binary; NULL when out of memory. */
unsigned char *mirage_output_alloc(mirage_output *output, size_t size);
/* Forward a line of Python output to Elixir's Logger (level 0 debug .. 3
 * error). */
void mirage_log(int level, const char *message, size_t size);
/* cffi-c-api-end */

/*
 * Each mirage_py_* returning int answers 0 on success, or 1 + the index of the
 * failure's reason in mirage.errors.REASONS. mirage_py_start answers 1 once the
 * callbacks are installed (cffi makes it 0 if the Python side failed to
 * import).
 */
/* cffi-embedding-api-begin */
int mirage_py_start(void);
int mirage_py_from_bytes(const unsigned char *data, size_t size,
                         uint64_t max_pixels, mirage_image_info *info);
int mirage_py_resize(int64_t handle, uint32_t width, uint32_t height,
                     uint64_t max_pixels, mirage_image_info *info,
                     mirage_output *output);
void mirage_py_release(const int64_t *handles, size_t count);
int64_t mirage_py_live_handles(void);
/* cffi-embedding-api-end */

#endif
