/*
 * C libraries under Pillow that report through stderr (libtiff: "WEBP
 * compression support is not configured", warnings about odd tags) would write
 * straight to the VM's file descriptor 2. mirage_route_codec_messages
 * (py_api.h) finds the libtiff that Pillow loaded and installs handlers that
 * format each message and send it through mirage_log like Python's own output.
 *
 * The handlers run on the thread that called into libtiff, often with the GIL
 * released, so they never touch Python. What one NIF call may log this way is
 * capped like Python's output: the first lines, then a count.
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_NOLOAD */
#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "py_api.h"

/* libtiff's handler type and setters (tiffio.h), looked up at run time: the
 * library is Pillow's, not one we link against. */
typedef void (*tiff_handler)(const char *module, const char *fmt, va_list ap);
typedef tiff_handler (*tiff_set_handler)(tiff_handler handler);

static _Thread_local int call_lines;
static _Thread_local long call_suppressed;

static void send_line(int level, const char *module, const char *fmt,
                      va_list ap) {
    if (call_lines >= MIRAGE_LOG_CALL_LINES) {
        call_suppressed++;
        return;
    }
    call_lines++;
    char text[512];
    int used = module ? snprintf(text, sizeof text, "%s: ", module) : 0;
    if (used < 0 || (size_t)used >= sizeof text) {
        used = 0;
    }
    vsnprintf(text + used, sizeof text - (size_t)used, fmt, ap);
    mirage_log(level, text, strlen(text));
}

static void tiff_warning(const char *module, const char *fmt, va_list ap) {
    send_line(2, module, fmt, ap);
}

static void tiff_error(const char *module, const char *fmt, va_list ap) {
    send_line(3, module, fmt, ap);
}

void mirage_codec_log_begin(void) {
    call_lines = 0;
    call_suppressed = 0;
}

void mirage_codec_log_end(void) {
    if (call_suppressed > 0) {
        char text[128];
        snprintf(text, sizeof text,
                 "%ld more codec messages from this call suppressed",
                 call_suppressed);
        mirage_log(2, text, strlen(text));
        call_suppressed = 0;
    }
}

static int find_libtiff(struct dl_phdr_info *info, size_t size, void *found) {
    (void)size;
    const char *slash = strrchr(info->dlpi_name, '/');
    const char *base = slash ? slash + 1 : info->dlpi_name;
    if (strncmp(base, "libtiff", 7) == 0 && strncmp(base, "libtiffxx", 9)) {
        /* Already loaded by Pillow: NOLOAD only takes a reference to it. */
        *(void **)found = dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD);
        return *(void **)found != NULL;
    }
    return 0;
}

int mirage_route_codec_messages(void) {
    void *libtiff = NULL;
    dl_iterate_phdr(find_libtiff, &libtiff);
    if (!libtiff) {
        return 0;
    }
    tiff_set_handler set_warning;
    tiff_set_handler set_error;
    /* POSIX: a data pointer from dlsym may be converted to a function one. */
    *(void **)&set_warning = dlsym(libtiff, "TIFFSetWarningHandler");
    *(void **)&set_error = dlsym(libtiff, "TIFFSetErrorHandler");
    if (!set_warning || !set_error) {
        return 0;
    }
    set_warning(tiff_warning);
    set_error(tiff_error);
    return 1; /* the reference stays: libtiff must outlive the handlers */
}
