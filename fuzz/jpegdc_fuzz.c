/* Mutation fuzzing of c_src/jpeg/dcscale.c, built with ASan and UBSan:
 *
 *   jpegdc_fuzz ITERATIONS SEED_FILE...
 *
 * Each iteration takes a seed JPEG, mutates it (bytes set, bits flipped, spans
 * copied or deleted, the end cut off; more often inside the entropy-coded data,
 * where the speculative threads must cope with anything) and decodes it with
 * 1, 2, 3 and 4 threads. A sanitizer report stops the run; so does any
 * difference between the thread counts, in the answer or in the pixels, since
 * the split of the work must never change the result. The mutations come from a
 * seeded generator (JPEGDC_FUZZ_SEED, default fixed), so a failure repeats
 * with the same arguments and seed; the input is written to jpegdc-crash.jpg.
 * (gcc has no libFuzzer, hence a plain loop rather than coverage guidance.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../c_src/jpeg/dcscale.c"

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = n > 0 ? malloc((size_t)n) : NULL;
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return data;
}

/* Where the entropy-coded data starts (after the first SOS), or 2. */
static size_t scan_start(const uint8_t *d, size_t len) {
    for (size_t i = 2; i + 4 < len; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xDA)
            return i + 2 + (size_t)be16(d + i + 2);
    return 2;
}

static size_t mutate(uint8_t *d, size_t len, size_t cap) {
    size_t from = scan_start(d, len);
    int edits = 1 + (int)below(4);
    for (int e = 0; e < edits && len > 0; e++) {
        /* Mostly in the scan, sometimes in the headers. */
        size_t at =
            below(4) ? from + below(len > from ? len - from : 1) : below(from);
        if (at >= len)
            at = len - 1;
        switch (below(6)) {
        case 0:
            d[at] = (uint8_t)next();
            break;
        case 1:
            d[at] ^= (uint8_t)(1u << below(8));
            break;
        case 2: {
            static const uint8_t special[] = {0xFF, 0x00, 0xD0, 0xD9, 0xC4};
            d[at] = special[below(sizeof(special))];
            break;
        }
        case 3: { /* delete a span */
            size_t n = 1 + below(64);
            if (at + n > len)
                n = len - at;
            memmove(d + at, d + at + n, len - at - n);
            len -= n;
            break;
        }
        case 4: { /* copy a span over another place */
            size_t n = 1 + below(256), src = below(len);
            if (src + n > len)
                n = len - src;
            if (at + n > len)
                n = len - at;
            memmove(d + at, d + src, n);
            break;
        }
        default: /* cut the end off */
            len = at + 1;
            break;
        }
    }
    (void)cap;
    return len;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ITERATIONS SEED_FILE...\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[1]);
    const char *chosen = getenv("JPEGDC_FUZZ_SEED");
    if (chosen && atoll(chosen) != 0)
        state = (uint64_t)atoll(chosen);
    int seeds = argc - 2;
    uint8_t **seed = calloc((size_t)seeds, sizeof(*seed));
    size_t *seed_len = calloc((size_t)seeds, sizeof(*seed_len));
    for (int i = 0; i < seeds; i++)
        if (!(seed[i] = read_file(argv[2 + i], &seed_len[i]))) {
            fprintf(stderr, "cannot read %s\n", argv[2 + i]);
            return 2;
        }
    long decoded = 0;
    int failed = 0;
    for (long it = 0; it < iterations; it++) {
        int s = (int)below((size_t)seeds);
        size_t len = seed_len[s];
        uint8_t *d = malloc(len);
        memcpy(d, seed[s], len);
        if (it % 8)
            len = mutate(d, len, seed_len[s]);
        /* An exact-size copy, so a read past the end is a sanitizer report. */
        uint8_t *input = malloc(len ? len : 1);
        memcpy(input, d, len);
        free(d);
        int w, h, c;
        if (mirage_jdc_probe(input, len, &w, &h, &c) == MIRAGE_JDC_OK) {
            size_t n = (size_t)w * h * c;
            uint8_t *first = malloc(n), *other = malloc(n);
            int expected = mirage_jdc_decode(input, len, 1, first, n);
            for (int t = 2; t <= 4; t++) {
                memset(other, 0xA5, n);
                int got = mirage_jdc_decode(input, len, t, other, n);
                if (got != expected ||
                    (got == MIRAGE_JDC_OK && memcmp(first, other, n) != 0)) {
                    FILE *f = fopen("jpegdc-crash.jpg", "wb");
                    if (f) {
                        fwrite(input, 1, len, f);
                        fclose(f);
                    }
                    fprintf(stderr,
                            "iteration %ld (seed %s): %d threads answer %d, "
                            "1 thread %d%s\n",
                            it, argv[2 + s], t, got, expected,
                            got == expected ? " with other pixels" : "");
                    failed = 1;
                    break;
                }
            }
            decoded += expected == MIRAGE_JDC_OK;
            free(first);
            free(other);
        }
        free(input);
        if (failed)
            break;
    }
    if (!failed)
        printf("%ld iterations, %ld decoded\n", iterations, decoded);
    for (int i = 0; i < seeds; i++)
        free(seed[i]);
    free(seed);
    free(seed_len);
    return failed;
}
