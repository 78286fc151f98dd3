/* The reaper: releases queued Python handles on its own thread (see release.h).
 */
#include "release.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "py_api.h"
#include "python.h"

/* Process-wide, like the interpreter: resources from an unloaded module
 * instance may still be collected later, and their handles land here. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int64_t *queue;
static size_t queued;
static size_t capacity;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int start_error;

static void *reaper(void *unused) {
    (void)unused;
    mirage_python_attach(NULL);
    for (;;) {
        pthread_mutex_lock(&lock);
        while (queued == 0) {
            pthread_cond_wait(&wake, &lock);
        }
        int64_t *batch = queue;
        size_t count = queued;
        queue = NULL;
        queued = capacity = 0;
        pthread_mutex_unlock(&lock);

        mirage_py_release(batch, count); /* takes the GIL */
        free(batch);
    }
    return NULL;
}

static void start_once(void) {
    pthread_t thread;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    start_error = pthread_create(&thread, &attr, reaper, NULL);
    pthread_attr_destroy(&attr);
}

int mirage_release_start(void) {
    pthread_once(&once, start_once);
    return start_error;
}

void mirage_release_enqueue(int64_t handle) {
    pthread_mutex_lock(&lock);
    if (queued == capacity) {
        size_t grown = capacity ? capacity * 2 : 64;
        int64_t *bigger = realloc(queue, grown * sizeof *queue);
        if (!bigger) {
            /* Leaking one handle beats blocking or crashing a scheduler. */
            pthread_mutex_unlock(&lock);
            fprintf(stderr, "mirage: out of memory, image handle leaked\n");
            return;
        }
        queue = bigger;
        capacity = grown;
    }
    queue[queued++] = handle;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}
