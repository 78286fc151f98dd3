/*
 * Dropping Python references off the schedulers. A resource destructor runs on
 * whatever scheduler collected the term and must not wait for the GIL, so it
 * only queues the handle; one reaper thread releases queued handles under the
 * GIL.
 */
#ifndef MIRAGE_RELEASE_H
#define MIRAGE_RELEASE_H

#include <stdint.h>

/* Start the reaper once per OS process; 0 on success. Python must be running.
 */
int mirage_release_start(void);
/* Queue a handle for release; never blocks on Python. */
void mirage_release_enqueue(int64_t handle);

#endif
