/* JPEG decoding at 1/8 scale from the DC coefficients alone, for
 * mirage/jpegdc.py (loaded with cffi's dlopen by any transport's Python).
 *
 * At 1/8 scale each 8x8 block becomes one pixel: its DC coefficient (4:2:0
 * chroma, at half the luma's resolution, gives 2x2: the means of its quarters,
 * from the DC and a few sums of AC terms). libjpeg still fills every block's
 * 64 coefficients and runs its reduced inverse DCTs; here the other AC
 * coefficients are only skipped (their Huffman code and magnitude bits), and
 * the end of data, scan layout and 1/8 pixels match libjpeg's.
 * The entropy-coded data is also split between threads:
 * - with restart markers, each thread decodes whole restart intervals;
 * - without them, a thread that starts at an arbitrary byte soon falls into
 *   step with the true stream (Huffman codes resynchronise), and records where
 *   each of its MCUs starts. The thread before it, decoding from a known state,
 *   goes on past its share until it reaches an MCU start that thread recorded;
 *   from there on the two decodes are the same bits, except for the DC
 *   predictors, which differ by a constant per component that is added back.
 *   If the two never meet, the earlier thread decodes everything itself, so
 *   the result never depends on a guess.
 *
 * Only the plain case is taken: baseline or extended 8-bit Huffman, one
 * interleaved scan of one (grey) or three (YCbCr) components, sampling factors
 * of 1 or 2 with chroma at 1x1. Anything else, and anything irregular in the
 * data (a bad code, a run past the block, data that ends early, a misplaced
 * restart marker), returns MIRAGE_JDC_DECLINE and Python decodes with Pillow,
 * which gives the error and its reason. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIRAGE_JDC_OK 0
#define MIRAGE_JDC_DECLINE 1
#define MIRAGE_JDC_NOMEM 2

int mirage_jdc_probe(const uint8_t *data, size_t len, int *width, int *height,
                     int *channels);
int mirage_jdc_decode(const uint8_t *data, size_t len, int threads,
                      uint8_t *out, size_t out_len);

#define FAST_BITS 10
#define AC_BITS 12
#define END_OF_BLOCK 128
#define HAS_VALUE (1 << 13)
#define MAX_THREADS 8
/* Per MCU: up to 2x2 luma blocks and one of each chroma, each with its DC and,
 * for chroma decoded at 2x2, three sums of AC terms. */
#define MAX_BLOCKS 6
#define MAX_SLOTS (MAX_BLOCKS + 2 * 3)
/* Fixed-point scale of the 2x2 weights. */
#define WEIGHT_BITS 12
/* A speculative thread gives up after this many false starts. */
#define MAX_ATTEMPTS 64

typedef struct {
    uint16_t fast[1 << FAST_BITS]; /* (length << 8) | symbol; 0: longer code */
    int32_t maxcode[18];           /* largest code of each length, -1: none */
    int32_t delta[17];             /* vals index = code + delta[length] */
    uint8_t vals[256];
    /* AC tables only: for a code of up to AC_BITS bits, the bits to skip (the
     * code and the magnitude after it) | how far it moves in the block << 5
     * (an end of block moving by END_OF_BLOCK) | HAS_VALUE if it is a
     * coefficient rather than a run of zeros; 0: a longer code. */
    uint16_t skip[1 << AC_BITS];
    int present;
} huffman;

typedef struct {
    int id, h, v, tq, td, ta;
    int bw, bh; /* blocks per row / column in the MCU grid */
    /* As libjpeg scales a component at 1/8 of the image: each block gives
     * one pixel, or 2x2 when the component has half the luma's resolution
     * both ways (4:2:0 chroma), and the plane is then repeated up to the
     * luma's size by fx, fy. */
    int two, fx, fy;
    int out_w, out_h; /* plane pixels that hold image data */
    int first;        /* index of its first block within an MCU */
} component;

typedef struct {
    int width, height, ncomp, hmax, vmax;
    int mcus_x, mcus_y, blocks; /* blocks per MCU */
    int slots;                  /* values stored per MCU */
    long total;                 /* MCUs in the image */
    int restart;                /* MCUs per restart interval, 0: none */
    component comp[3];
    int block_comp[MAX_BLOCKS]; /* component of each block of an MCU */
    int block_x[MAX_BLOCKS], block_y[MAX_BLOCKS];
    int block_slot[MAX_BLOCKS]; /* where each block's values are stored */
    int slot_comp[MAX_SLOTS];   /* the component of a DC slot, else -1 */
    uint16_t quant[4][64];      /* in zigzag order */
    int quant_present[4];
    /* For 2x2 blocks: which sum a coefficient (zigzag order) adds to (0:
     * none, 1: across, 2: down, 3: both) and its weight times its quantum. */
    uint8_t kind[64];
    int32_t weight[4][64];
    huffman dc[4], ac[4];
    const uint8_t *scan, *end; /* entropy-coded data */
} jpeg;

/* ---- header ---------------------------------------------------------- */

static int be16(const uint8_t *p) { return (p[0] << 8) | p[1]; }

static int build_huffman(huffman *t, const uint8_t *counts, const uint8_t *vals,
                         int nvals, int ac) {
    int code = 0, k = 0;
    memset(t, 0, sizeof(*t));
    memcpy(t->vals, vals, (size_t)nvals);
    for (int length = 1; length <= 16; length++) {
        int n = counts[length - 1];
        t->delta[length] = k - code;
        for (int i = 0; i < n; i++, k++, code++) {
            if (code > (1 << length) - 2)
                return 0; /* more codes than the length allows (libjpeg) */
            if (length <= FAST_BITS) {
                int shift = FAST_BITS - length;
                for (int j = 0; j < (1 << shift); j++)
                    t->fast[(code << shift) | j] =
                        (uint16_t)((length << 8) | vals[k]);
            }
            if (ac && length <= AC_BITS) {
                int run = vals[k] >> 4, size = vals[k] & 15,
                    shift = AC_BITS - length;
                int move = size ? run + 1 : run == 15 ? 16 : END_OF_BLOCK;
                for (int j = 0; j < (1 << shift); j++)
                    t->skip[(code << shift) | j] =
                        (uint16_t)((length + size) | (move << 5) |
                                   (size ? HAS_VALUE : 0));
            }
            if (!ac && vals[k] > 15)
                return 0; /* as libjpeg: no DC difference over 15 bits */
        }
        t->maxcode[length] = n ? code - 1 : -1;
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff; /* sentinel: no code is longer */
    t->present = 1;
    return 1;
}

static int parse_dht(jpeg *j, const uint8_t *p, int n) {
    while (n > 0) {
        if (n < 17)
            return 0;
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        for (int i = 0; i < 16; i++)
            total += p[1 + i];
        if (tc > 1 || th > 3 || total > 256 || n < 17 + total)
            return 0;
        huffman *t = tc ? &j->ac[th] : &j->dc[th];
        if (!build_huffman(t, p + 1, p + 17, total, tc))
            return 0;
        p += 17 + total;
        n -= 17 + total;
    }
    return 1;
}

static int parse_dqt(jpeg *j, const uint8_t *p, int n) {
    while (n > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15, size = pq ? 129 : 65;
        if (pq > 1 || tq > 3 || n < size)
            return 0;
        for (int k = 0; k < 64; k++)
            j->quant[tq][k] = (uint16_t)(pq ? be16(p + 1 + 2 * k) : p[1 + k]);
        j->quant_present[tq] = 1;
        p += size;
        n -= size;
    }
    return 1;
}

static int parse_sof(jpeg *j, const uint8_t *p, int n) {
    if (n < 6 || p[0] != 8)
        return 0;
    j->height = be16(p + 1);
    j->width = be16(p + 3);
    j->ncomp = p[5];
    if (j->width == 0 || j->height == 0 || (j->ncomp != 1 && j->ncomp != 3) ||
        n < 6 + 3 * j->ncomp)
        return 0;
    j->hmax = j->vmax = 1;
    for (int i = 0; i < j->ncomp; i++) {
        component *c = &j->comp[i];
        c->id = p[6 + 3 * i];
        c->h = p[7 + 3 * i] >> 4;
        c->v = p[7 + 3 * i] & 15;
        c->tq = p[8 + 3 * i];
        if (c->h < 1 || c->h > 2 || c->v < 1 || c->v > 2 || c->tq > 3)
            return 0;
        if (i > 0 && (c->h != 1 || c->v != 1))
            return 0; /* chroma must be the subsampled one */
        if (c->h > j->hmax)
            j->hmax = c->h;
        if (c->v > j->vmax)
            j->vmax = c->v;
    }
    for (int i = 0; i < j->ncomp; i++)
        for (int k = 0; k < i; k++)
            if (j->comp[i].id == j->comp[k].id)
                return 0;
    return 1;
}

static int parse_sos(jpeg *j, const uint8_t *p, int n) {
    if (n < 1 || p[0] != j->ncomp || n < 4 + 2 * j->ncomp)
        return 0;
    /* The scan's order of components is the MCU's order of blocks. */
    component ordered[3];
    for (int i = 0; i < j->ncomp; i++) {
        int id = p[1 + 2 * i], found = -1;
        for (int k = 0; k < j->ncomp; k++)
            if (j->comp[k].id == id)
                found = k;
        if (found < 0)
            return 0;
        for (int k = 0; k < i; k++)
            if (ordered[k].id == id)
                return 0;
        ordered[i] = j->comp[found];
        ordered[i].td = p[2 + 2 * i] >> 4;
        ordered[i].ta = p[2 + 2 * i] & 15;
        if (ordered[i].td > 3 || ordered[i].ta > 3 ||
            !j->dc[ordered[i].td].present || !j->ac[ordered[i].ta].present ||
            !j->quant_present[ordered[i].tq])
            return 0;
    }
    const uint8_t *s = p + 1 + 2 * j->ncomp;
    if (s[0] != 0 || s[1] != 63 || s[2] != 0)
        return 0; /* a progressive or successive-approximation scan */
    memcpy(j->comp, ordered, sizeof(ordered));
    return 1;
}

/* The 2x2 result of a block is the mean of each quarter of its 8x8 inverse
 * DCT. A basis function of odd frequency u has the mean w[u] (relative to the
 * DC's) over the first half of its 8 samples and -w[u] over the second; one
 * of even frequency other than 0 has mean 0 over both. So a quarter is the DC
 * plus or minus the sums, across and down, of the coefficients of odd
 * frequency in the first row and column, plus or minus the sum over both odd
 * frequencies. */
static void weights(jpeg *j) {
    static const double pi = 3.14159265358979323846;
    double w[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    uint8_t natural[64];
    int k = 0;
    for (int u = 1; u < 8; u += 2) {
        double sum = 0;
        for (int x = 0; x < 4; x++)
            sum += cos((2 * x + 1) * u * pi / 16);
        w[u] = sqrt(2.0) * sum / 4;
    }
    /* Zigzag order: the anti-diagonals, alternately up and down. */
    for (int d = 0; d < 15; d++)
        for (int i = 0; i < 8; i++) {
            int row = d & 1 ? i : d - i, col = d - row;
            if (row < 0 || row > 7 || col < 0 || col > 7)
                continue;
            natural[k++] = (uint8_t)(row * 8 + col);
        }
    for (k = 0; k < 64; k++) {
        int row = natural[k] >> 3, col = natural[k] & 7;
        int across = row == 0 && (col & 1), down = col == 0 && (row & 1);
        int both = (row & 1) && (col & 1);
        j->kind[k] = (uint8_t)(across ? 1 : down ? 2 : both ? 3 : 0);
        double wk = j->kind[k] ? w[row] * w[col] : 0;
        for (int t = 0; t < 4; t++)
            j->weight[t][k] =
                (int32_t)lround(wk * (1 << WEIGHT_BITS)) * j->quant[t][k];
    }
}

/* The layout of MCUs and blocks, from the frame header. */
static void lay_out(jpeg *j) {
    if (j->ncomp == 1) {
        /* A single component's scan is not interleaved: one block per MCU. */
        component *c = &j->comp[0];
        c->h = c->v = 1;
        j->hmax = j->vmax = 1;
    }
    j->mcus_x = (j->width + 8 * j->hmax - 1) / (8 * j->hmax);
    j->mcus_y = (j->height + 8 * j->vmax - 1) / (8 * j->vmax);
    j->total = (long)j->mcus_x * j->mcus_y;
    j->blocks = j->slots = 0;
    for (int i = 0; i < j->ncomp; i++) {
        component *c = &j->comp[i];
        c->bw = j->mcus_x * c->h;
        c->bh = j->mcus_y * c->v;
        c->two = j->hmax == 2 * c->h && j->vmax == 2 * c->v;
        long scale = c->two ? 2 : 1;
        c->fx = j->hmax / (c->h * (int)scale);
        c->fy = j->vmax / (c->v * (int)scale);
        c->out_w = (int)(((long)j->width * c->h * scale + 8L * j->hmax - 1) /
                         (8L * j->hmax));
        c->out_h = (int)(((long)j->height * c->v * scale + 8L * j->vmax - 1) /
                         (8L * j->vmax));
        c->first = j->blocks;
        for (int y = 0; y < c->v; y++)
            for (int x = 0; x < c->h; x++) {
                j->block_comp[j->blocks] = i;
                j->block_x[j->blocks] = x;
                j->block_y[j->blocks] = y;
                j->block_slot[j->blocks] = j->slots;
                j->slot_comp[j->slots++] = i;
                for (int extra = 0; c->two && extra < 3; extra++)
                    j->slot_comp[j->slots++] = -1;
                j->blocks++;
            }
    }
    weights(j);
}

static int parse(jpeg *j, const uint8_t *data, size_t len) {
    int sof = 0, adobe = -1, jfif = 0;
    memset(j, 0, sizeof(*j));
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8)
        return 0;
    size_t i = 2;
    for (;;) {
        if (i + 4 > len || data[i] != 0xFF)
            return 0;
        while (i + 4 <= len && data[i + 1] == 0xFF)
            i++; /* fill bytes */
        if (i + 4 > len)
            return 0;
        int marker = data[i + 1], n = be16(data + i + 2) - 2;
        const uint8_t *p = data + i + 4;
        if (n < 0 || (size_t)n > len - i - 4)
            return 0;
        if (marker == 0xC0 || marker == 0xC1) {
            if (sof++ || !parse_sof(j, p, n))
                return 0;
        } else if ((marker >= 0xC2 && marker <= 0xCF && marker != 0xC4 &&
                    marker != 0xC8 && marker != 0xCC) ||
                   marker == 0xD8 || marker == 0xD9 ||
                   (marker >= 0xD0 && marker <= 0xD7)) {
            return 0; /* progressive, lossless, arithmetic; stray markers */
        } else if (marker == 0xC4) {
            if (!parse_dht(j, p, n))
                return 0;
        } else if (marker == 0xDB) {
            if (!parse_dqt(j, p, n))
                return 0;
        } else if (marker == 0xDD) {
            if (n < 2)
                return 0;
            j->restart = be16(p);
        } else if (marker == 0xE0 && n >= 5 && memcmp(p, "JFIF\0", 5) == 0) {
            jfif = 1;
        } else if (marker == 0xEE && n >= 12 && memcmp(p, "Adobe", 5) == 0) {
            adobe = p[11];
        } else if (marker == 0xDA) {
            if (!sof || !parse_sos(j, p, n))
                return 0;
            j->scan = p + n;
            j->end = data + len;
            break;
        }
        i += 4 + (size_t)n;
    }
    if (j->ncomp == 3) {
        /* What libjpeg takes for RGB (or YCCK) rather than YCbCr. */
        if (adobe == 0 || adobe > 1)
            return 0;
        if (!jfif && adobe < 0 && j->comp[0].id == 'R' &&
            j->comp[1].id == 'G' && j->comp[2].id == 'B')
            return 0;
    }
    lay_out(j);
    return 1;
}

/* ---- entropy decoding ------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
    uint64_t acc; /* bits, most significant first */
    int bits;
    uint64_t logical; /* bytes loaded, stuffing removed, fill included */
    int fill;         /* zero bytes loaded after the data ended */
} reader;

static void reader_start(reader *r, const uint8_t *p, const uint8_t *end,
                         uint64_t logical) {
    r->p = p;
    r->end = end;
    r->acc = 0;
    r->bits = 0;
    r->logical = logical;
    r->fill = 0;
}

/* Whether any byte of v is 0xFF. */
static inline int has_ff(uint64_t v) {
    uint64_t x = ~v;
    return ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) != 0;
}

static inline __attribute__((always_inline)) void refill(reader *r) {
    if (r->bits <= 56 && r->end - r->p >= 8) {
        /* The common case: whole bytes at once, none of them 0xFF. */
        uint64_t v;
        memcpy(&v, r->p, 8);
        v = __builtin_bswap64(v);
        int n = (64 - r->bits) >> 3;
        uint64_t top = n == 8 ? v : v >> (64 - 8 * n);
        if (!has_ff(top)) {
            r->acc |= top << (64 - r->bits - 8 * n);
            r->p += n;
            r->bits += 8 * n;
            r->logical += (uint64_t)n;
            return;
        }
    }
    while (r->bits <= 56) {
        unsigned b;
        if (r->p < r->end && r->p[0] != 0xFF) {
            b = *r->p++;
        } else if (r->p + 1 < r->end && r->p[1] == 0x00) {
            b = 0xFF; /* a stuffed 0xFF */
            r->p += 2;
        } else {
            b = 0; /* a marker or the end: zeros, as libjpeg feeds */
            r->fill++;
        }
        r->acc |= (uint64_t)b << (56 - r->bits);
        r->bits += 8;
        r->logical++;
    }
}

/* Whether bits that were not data have been consumed. */
static inline int overrun(const reader *r) { return r->fill * 8 > r->bits; }

/* The position of the next unread bit in the stream without stuffing. */
static inline uint64_t position(const reader *r) {
    return r->logical * 8 - (uint64_t)r->bits;
}

static inline void skip(reader *r, int n) {
    r->acc <<= n;
    r->bits -= n;
}

/* One Huffman symbol, or -1 for a code the table does not have. The reader
 * holds at least 16 bits. */
static inline int symbol(reader *r, const huffman *t) {
    unsigned e = t->fast[r->acc >> (64 - FAST_BITS)];
    if (e) {
        skip(r, (int)(e >> 8));
        return (int)(e & 0xFF);
    }
    int length = FAST_BITS + 1;
    int32_t code = (int32_t)(r->acc >> (64 - length));
    while (code > t->maxcode[length]) {
        length++;
        code = (int32_t)(r->acc >> (64 - length));
    }
    if (length > 16)
        return -1;
    skip(r, length);
    return t->vals[code + t->delta[length]];
}

static inline int extend(uint32_t v, int s) {
    return v < (1u << (s - 1)) ? (int)v - (1 << s) + 1 : (int)v;
}

/* The three sums of a 2x2 block's AC terms (see weights()), in 1/16 of a
 * sample, to the slots after its DC. Returns 0 as decode_mcu does. */
static inline __attribute__((always_inline)) int
decode_quarters(const jpeg *j, reader *r, const component *c, int16_t *sums) {
    const huffman *ac = &j->ac[c->ta];
    const int32_t *weight = j->weight[c->tq];
    int64_t sum[4] = {0, 0, 0, 0};
    int k = 1;
    while (k < 64) {
        if (r->bits < 32)
            refill(r);
        /* Skipped, as in decode_mcu, unless it lands where a sum needs it. */
        unsigned e = ac->skip[r->acc >> (64 - AC_BITS)];
        int move = (int)((e >> 5) & 0xFF);
        if (e &&
            (!(e & HAS_VALUE) || (k + move <= 64 && !j->kind[k + move - 1]))) {
            skip(r, (int)(e & 31));
            k += move;
            continue;
        }
        int rs = symbol(r, ac);
        if (rs < 0)
            return 0;
        int run = rs >> 4, size = rs & 15;
        if (size) {
            k += run;
            if (k > 63)
                return 0;
            uint32_t v = (uint32_t)(r->acc >> (64 - size));
            skip(r, size);
            sum[j->kind[k]] += (int64_t)extend(v, size) * weight[k];
            k++;
        } else if (run == 15) {
            k += 16;
        } else {
            break;
        }
    }
    if (k > 64 && k < END_OF_BLOCK)
        return 0;
    for (int i = 0; i < 3; i++) {
        /* sum / 8 in 1/16 units: sum * 2, rounded, from the weights' scale */
        int64_t v = (sum[i + 1] * 2 + (1 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS;
        sums[i] = (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
    }
    return 1;
}

/* One MCU: each block's DC predictor after it, and for 2x2 blocks their AC
 * sums, go to its slots. Returns 0 on a code the tables lack or a run past
 * the end of a block. */
static inline __attribute__((always_inline)) int
decode_blocks(const jpeg *j, reader *r, int *pred, int16_t *slots) {
    for (int b = 0; b < j->blocks; b++) {
        const component *c = &j->comp[j->block_comp[b]];
        const huffman *ac = &j->ac[c->ta];
        int16_t *slot = slots + j->block_slot[b];
        refill(r);
        int s = symbol(r, &j->dc[c->td]);
        if (s < 0)
            return 0;
        if (s) {
            uint32_t v = (uint32_t)(r->acc >> (64 - s));
            skip(r, s);
            /* Kept to 16 bits, as libjpeg stores it: no overflow however
             * many differences a crafted file adds up. */
            pred[j->block_comp[b]] =
                (int16_t)(pred[j->block_comp[b]] + extend(v, s));
        }
        slot[0] = (int16_t)pred[j->block_comp[b]];
        if (c->two) {
            if (!decode_quarters(j, r, c, slot + 1))
                return 0;
            continue;
        }
        int k = 1;
        while (k < 64) {
            if (r->bits < 32)
                refill(r);
            unsigned e = ac->skip[r->acc >> (64 - AC_BITS)];
            if (e) {
                skip(r, (int)(e & 31));
                k += (int)((e >> 5) & 0xFF);
                continue;
            }
            int rs = symbol(r, ac);
            if (rs < 0)
                return 0;
            int run = rs >> 4, size = rs & 15;
            skip(r, size);
            k += size ? run + 1 : run == 15 ? 16 : END_OF_BLOCK;
        }
        if (k > 64 && k < END_OF_BLOCK)
            return 0; /* a run past the end of the block */
    }
    return 1;
}

/* The reader is copied in and out so that its state can live in registers
 * while the MCU is decoded (through a pointer the compiler must assume that
 * every store to the slots may change it). */
static int decode_mcu(const jpeg *j, reader *r, int *pred, int16_t *slots) {
    reader local = *r;
    int ok = decode_blocks(j, &local, pred, slots);
    *r = local;
    return ok;
}

/* ---- work split ------------------------------------------------------ */

/* The stream position (stuffing removed) of raw byte `to`, counting from
 * `from`; neither is the second byte of a stuffed pair. Exact up to the scan's
 * first marker, where every reader stops; past it only larger, so a position
 * there never equals one a reader records inside the data. */
static uint64_t logical_bytes(const uint8_t *from, const uint8_t *to) {
    uint64_t stuffed = 0;
    const uint8_t *p = from;
    while (p + 1 < to) {
        p = memchr(p, 0xFF, (size_t)(to - 1 - p));
        if (!p)
            break;
        stuffed += p[1] == 0x00;
        p += 2;
    }
    return (uint64_t)(to - from) - stuffed;
}

/* Off the second byte of a stuffed pair or a marker, if p is on one. */
static const uint8_t *aligned(const jpeg *j, const uint8_t *p) {
    return p > j->scan && p < j->end && p[-1] == 0xFF ? p + 1 : p;
}

typedef struct {
    const jpeg *j;
    const uint8_t *start, *stop; /* the raw bytes of this share */
    /* Without restarts: MCUs k = 0..count-1 as decoded from where the share
     * fell in step, with the stream position each starts at, and the state
     * after the last of them (predictors relative to that start). */
    int16_t *dc;
    uint64_t *starts;
    long count;
    reader end;
    int end_pred[3];
    /* With restarts: intervals first..last, into the shared output. */
    long first, last;
    int16_t *out;
    int ok;
} share;

static void *decode_share(void *arg) {
    share *t = arg;
    const jpeg *j = t->j;
    const uint8_t *from = t->start;
    uint64_t logical = logical_bytes(j->scan, from);
    for (int attempt = 0; attempt < MAX_ATTEMPTS && from < t->stop; attempt++) {
        reader r;
        int pred[3] = {0, 0, 0};
        reader_start(&r, from, j->end, logical);
        t->count = 0;
        for (;;) {
            reader before = r;
            int before_pred[3] = {pred[0], pred[1], pred[2]};
            int done = t->count >= j->total || r.p - r.bits / 8 >= t->stop;
            if (done || !decode_mcu(j, &r, pred, t->dc + t->count * j->slots) ||
                overrun(&r)) {
                t->end = before;
                memcpy(t->end_pred, before_pred, sizeof(before_pred));
                break;
            }
            t->starts[t->count++] = position(&before);
        }
        if (t->count > 0)
            return NULL;
        /* Out of step from the first MCU: try a byte later. */
        const uint8_t *later = aligned(j, from + 1);
        logical += logical_bytes(from, later);
        from = later;
    }
    return NULL;
}

static int start_threads(pthread_t *ids, share *shares, int n,
                         void *(*fn)(void *)) {
    pthread_attr_t attr;
    int started = 1;
    if (pthread_attr_init(&attr) != 0)
        return 1;
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 1; i < n; i++) {
        if (pthread_create(&ids[i], &attr, fn, &shares[i]) != 0)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    return started;
}

/* The slot of a component's last DC in an MCU. */
static int last_dc(const jpeg *j, int c) {
    return j->block_slot[j->comp[c].first + j->comp[c].h * j->comp[c].v - 1];
}

/* The first marker from p on, or NULL. From where a reader stopped, that is
 * the marker after the data it decoded: the rest of its bits pad up to the
 * marker, which it stopped at or has yet to reach. There is none inside a
 * scan's data (a reader stops at any), so from anywhere before its end it is
 * the same marker. */
static const uint8_t *next_marker(const jpeg *j, const uint8_t *p) {
    while (p + 1 < j->end) {
        p = memchr(p, 0xFF, (size_t)(j->end - 1 - p));
        if (!p)
            return NULL;
        if (p[1] != 0x00)
            return p;
        p += 2;
    }
    return NULL;
}

/* Without restart markers: shares decoded speculatively, then joined up from
 * the first, which alone starts in a known state. */
static int decode_stream(const jpeg *j, int threads, int16_t *dc) {
    share shares[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    size_t len = (size_t)(j->end - j->scan);
    int started = 1, joined = 1, result = MIRAGE_JDC_NOMEM;
    memset(shares, 0, sizeof(shares));
    for (int i = 0; i < threads; i++) {
        shares[i].j = j;
        shares[i].start =
            aligned(j, j->scan + len * (size_t)i / (size_t)threads);
        shares[i].stop = j->scan + len * (size_t)(i + 1) / (size_t)threads;
    }
    for (int i = 1; i < threads; i++) {
        shares[i].dc = malloc((size_t)j->total * j->slots * sizeof(int16_t));
        shares[i].starts = malloc((size_t)j->total * sizeof(uint64_t));
        if (!shares[i].dc || !shares[i].starts)
            goto done;
    }
    started = start_threads(ids, shares, threads, decode_share);
    result = MIRAGE_JDC_DECLINE;
    int pred[3] = {0, 0, 0};
    int next = 1; /* the share whose MCU starts are looked for */
    long k = 0;   /* the first of them not behind us */
    const uint8_t *search = j->scan; /* where the end marker is looked for */
    reader r;
    reader_start(&r, j->scan, j->end, 0);
    for (long m = 0; m < j->total;) {
        uint64_t at = position(&r);
        while (next < started && r.p >= shares[next].start) {
            if (joined <= next) {
                /* The share's records are read only once it has finished. */
                pthread_join(ids[next], NULL);
                joined = next + 1;
            }
            while (k < shares[next].count && shares[next].starts[k] < at)
                k++;
            if (k < shares[next].count)
                break;
            next++; /* all of that share is behind: look in the next one */
            k = 0;
        }
        if (next < started && k < shares[next].count &&
            shares[next].starts[k] == at) {
            /* In step with share `next` from its MCU k: take its MCUs. */
            share *t = &shares[next];
            int offset[3];
            for (int c = 0; c < j->ncomp; c++)
                offset[c] = pred[c] -
                            (k ? t->dc[(k - 1) * j->slots + last_dc(j, c)] : 0);
            long n = t->count - k;
            if (n > j->total - m)
                n = j->total - m; /* it went on past the image's data */
            const int16_t *from = t->dc + k * j->slots;
            int16_t *to = dc + m * j->slots;
            for (long i = 0; i < n * j->slots; i++) {
                int c = j->slot_comp[i % j->slots];
                to[i] = c < 0 ? from[i] : (int16_t)(from[i] + offset[c]);
            }
            m += n;
            search = t->start;
            if (m == j->total)
                break;
            r = t->end;
            for (int c = 0; c < j->ncomp; c++)
                pred[c] = (int16_t)(t->end_pred[c] + offset[c]);
            next++;
            k = 0;
            continue;
        }
        if (!decode_mcu(j, &r, pred, dc + m * j->slots) || overrun(&r))
            goto done;
        search = r.p;
        m++;
    }
    /* As strict as Pillow: the scan must end at the end of the image. */
    const uint8_t *marker = next_marker(j, search);
    if (marker && marker[1] == 0xD9)
        result = MIRAGE_JDC_OK;
done:
    for (int i = joined; i < started; i++)
        pthread_join(ids[i], NULL);
    for (int i = 1; i < threads; i++) {
        free(shares[i].dc);
        free(shares[i].starts);
    }
    return result;
}

/* With restart markers: each share decodes whole intervals. */
static void *decode_intervals(void *arg) {
    share *t = arg;
    const jpeg *j = t->j;
    long intervals = (j->total + j->restart - 1) / j->restart;
    const uint8_t *p = j->scan;
    long seen = 0;
    /* The share's first interval starts after as many markers. */
    while (seen < t->first) {
        p = memchr(p, 0xFF, (size_t)(j->end - p));
        if (!p || p + 1 >= j->end)
            return NULL;
        if (p[1] >= 0xD0 && p[1] <= 0xD7)
            seen++;
        p += 2;
    }
    for (long n = t->first; n <= t->last; n++) {
        int pred[3] = {0, 0, 0};
        reader r;
        reader_start(&r, p, j->end, 0);
        long m = n * j->restart, end = m + j->restart;
        if (end > j->total)
            end = j->total;
        for (; m < end; m++)
            if (!decode_mcu(j, &r, pred, t->out + m * j->slots) || overrun(&r))
                return NULL;
        p = next_marker(j, r.p);
        if (n + 1 == intervals) {
            if (!p || p[1] != 0xD9)
                return NULL;
            break;
        }
        if (!p || p[1] != 0xD0 + (n & 7))
            return NULL;
        p += 2;
    }
    t->ok = 1;
    return NULL;
}

static int decode_restarts(const jpeg *j, int threads, int16_t *dc) {
    share shares[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    long intervals = (j->total + j->restart - 1) / j->restart;
    if (threads > intervals)
        threads = (int)intervals;
    memset(shares, 0, sizeof(shares));
    for (int i = 0; i < threads; i++) {
        shares[i].j = j;
        shares[i].first = intervals * i / threads;
        shares[i].last = intervals * (i + 1) / threads - 1;
        shares[i].out = dc;
    }
    int started = start_threads(ids, shares, threads, decode_intervals);
    for (int i = started; i < threads; i++)
        decode_intervals(&shares[i]); /* no thread for it: do it here */
    decode_intervals(&shares[0]);
    for (int i = 1; i < started; i++)
        pthread_join(ids[i], NULL);
    for (int i = 0; i < threads; i++)
        if (!shares[i].ok)
            return MIRAGE_JDC_DECLINE;
    return MIRAGE_JDC_OK;
}

/* ---- pixels ------------------------------------------------------------ */

static inline uint8_t clamp(int v) {
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Each block's pixel, the 1x1 inverse DCT, or its 2x2 quarters. */
static void planes(const jpeg *j, const int16_t *dc, uint8_t **plane) {
    for (long m = 0; m < j->total; m++) {
        long mx = m % j->mcus_x, my = m / j->mcus_x;
        const int16_t *mcu = dc + m * j->slots;
        for (int b = 0; b < j->blocks; b++) {
            const component *c = &j->comp[j->block_comp[b]];
            const int16_t *slot = mcu + j->block_slot[b];
            long x = mx * c->h + j->block_x[b], y = my * c->v + j->block_y[b];
            int value = slot[0] * (int)j->quant[c->tq][0];
            uint8_t *out = plane[j->block_comp[b]];
            if (!c->two) {
                out[y * c->bw + x] = clamp(((value + 4) >> 3) + 128);
                continue;
            }
            /* value / 8 in 1/16 units, then each quarter's signs */
            int a = 2 * value, across = slot[1], down = slot[2], both = slot[3];
            long stride = 2L * c->bw;
            uint8_t *at = out + 2 * y * stride + 2 * x;
            at[0] = clamp(((a + across + down + both + 8) >> 4) + 128);
            at[1] = clamp(((a - across + down - both + 8) >> 4) + 128);
            at[stride] = clamp(((a + across - down - both + 8) >> 4) + 128);
            at[stride + 1] = clamp(((a - across - down + both + 8) >> 4) + 128);
        }
    }
}

/* JFIF's YCbCr to RGB in libjpeg's fixed point. */
#define SCALEBITS 16
#define ONE_HALF (1 << (SCALEBITS - 1))
#define FIX(x) ((int)((x) * (1 << SCALEBITS) + 0.5))

static void to_rgb(const uint8_t *y, const uint8_t *cb, const uint8_t *cr,
                   int width, uint8_t *out) {
    for (int x = 0; x < width; x++) {
        int b = cb[x] - 128, r = cr[x] - 128;
        out[3 * x] = clamp(y[x] + ((FIX(1.40200) * r + ONE_HALF) >> SCALEBITS));
        out[3 * x + 1] =
            clamp(y[x] + ((-FIX(0.34414) * b - FIX(0.71414) * r + ONE_HALF) >>
                          SCALEBITS));
        out[3 * x + 2] =
            clamp(y[x] + ((FIX(1.77200) * b + ONE_HALF) >> SCALEBITS));
    }
}

/* A chroma row at the luma's resolution: samples repeated, as libjpeg
 * upsamples at this scale. */
static void chroma_row(const component *c, const uint8_t *plane, int y,
                       int width, uint8_t *row) {
    long stride = (long)c->bw * (c->two ? 2 : 1);
    const uint8_t *from = plane + (long)(y / c->fy) * stride;
    if (c->fx == 1) {
        memcpy(row, from, (size_t)width);
        return;
    }
    for (int x = 0; x < width; x++)
        row[x] = from[x / c->fx];
}

static int pixels(const jpeg *j, const int16_t *dc, uint8_t *out) {
    uint8_t *plane[3] = {NULL, NULL, NULL};
    uint8_t *rows = NULL;
    int result = MIRAGE_JDC_NOMEM;
    for (int c = 0; c < j->ncomp; c++) {
        size_t scale = j->comp[c].two ? 4 : 1;
        if (!(plane[c] = malloc((size_t)j->comp[c].bw * j->comp[c].bh * scale)))
            goto done;
    }
    planes(j, dc, plane);
    const component *luma = &j->comp[0];
    int width = luma->out_w, height = luma->out_h;
    if (j->ncomp == 1) {
        for (int y = 0; y < height; y++)
            memcpy(out + (size_t)y * width, plane[0] + (size_t)y * luma->bw,
                   (size_t)width);
        result = MIRAGE_JDC_OK;
        goto done;
    }
    if (!(rows = malloc(2 * (size_t)width)))
        goto done;
    for (int y = 0; y < height; y++) {
        uint8_t *chroma[2] = {rows, rows + width};
        for (int c = 1; c < 3; c++)
            chroma_row(&j->comp[c], plane[c], y, width, chroma[c - 1]);
        to_rgb(plane[0] + (size_t)y * luma->bw, chroma[0], chroma[1], width,
               out + (size_t)y * width * 3);
    }
    result = MIRAGE_JDC_OK;
done:
    for (int c = 0; c < 3; c++)
        free(plane[c]);
    free(rows);
    return result;
}

/* ---- entry points ------------------------------------------------------ */

int mirage_jdc_probe(const uint8_t *data, size_t len, int *width, int *height,
                     int *channels) {
    jpeg j;
    if (!parse(&j, data, len))
        return MIRAGE_JDC_DECLINE;
    *width = j.comp[0].out_w;
    *height = j.comp[0].out_h;
    *channels = j.ncomp;
    return MIRAGE_JDC_OK;
}

int mirage_jdc_decode(const uint8_t *data, size_t len, int threads,
                      uint8_t *out, size_t out_len) {
    jpeg *j = malloc(sizeof(jpeg));
    int16_t *dc = NULL;
    int result = MIRAGE_JDC_DECLINE;
    if (!j)
        return MIRAGE_JDC_NOMEM;
    if (!parse(j, data, len) ||
        out_len != (size_t)j->comp[0].out_w * j->comp[0].out_h * j->ncomp)
        goto done;
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    result = MIRAGE_JDC_NOMEM;
    if (!(dc = malloc((size_t)j->total * j->slots * sizeof(int16_t))))
        goto done;
    result = j->restart ? decode_restarts(j, threads, dc)
                        : decode_stream(j, threads, dc);
    if (result == MIRAGE_JDC_OK)
        result = pixels(j, dc, out);
done:
    free(dc);
    free(j);
    return result;
}
