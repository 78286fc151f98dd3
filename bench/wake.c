/*
 * How long this machine takes to wake a thread that has slept a while: the
 * cost a dirty NIF call pays twice (a dirty scheduler is woken for the job, and
 * a normal scheduler when it is done), which a single Python thread never pays.
 *
 * A waker busy-works for GAP microseconds while the other thread sleeps on a
 * condition variable, then signals it; the sleeper records how long after the
 * signal it ran. Prints "wake GAP_US MEDIAN_US P90_US" for each gap.
 * Built and run by bench/run.exs (`make bench`).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SAMPLES 300

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int pending;
static long long signalled_at;
static long long latencies[SAMPLES];

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *sleeper(void *unused) {
    (void)unused;
    for (int i = 0; i < SAMPLES; i++) {
        pthread_mutex_lock(&lock);
        while (!pending) {
            pthread_cond_wait(&cond, &lock);
        }
        latencies[i] = now_ns() - signalled_at;
        pending = 0;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void measure(long gap_us) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, sleeper, NULL) != 0) {
        perror("pthread_create");
        exit(1);
    }
    for (int i = 0; i < SAMPLES; i++) {
        /* Wait until the sleeper is back in its wait, then work for the gap. */
        pthread_mutex_lock(&lock);
        while (pending) {
            pthread_cond_wait(&cond, &lock);
        }
        pthread_mutex_unlock(&lock);
        long long until = now_ns() + gap_us * 1000LL;
        while (now_ns() < until) {
        }
        pthread_mutex_lock(&lock);
        pending = 1;
        signalled_at = now_ns();
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(thread, NULL);
    qsort(latencies, SAMPLES, sizeof latencies[0], by_value);
    printf("wake %ld %.1f %.1f\n", gap_us, latencies[SAMPLES / 2] / 1e3,
           latencies[SAMPLES * 9 / 10] / 1e3);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        measure(strtol(argv[i], NULL, 10));
    }
    return 0;
}
