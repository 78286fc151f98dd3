/* PNG scanline unfiltering for mirage/pngfast.py, loaded with cffi's dlopen.
 *
 * Pillow unfilters byte by byte with a branch per byte in the Paeth predictor;
 * on photographs that branch mispredicts constantly and unfiltering costs more
 * than inflating. Here the predictor is computed without branches, and 4-byte
 * pixels (RGBA) take one SSE2 step per pixel. Built into its own library (not
 * the NIF) so every transport's Python can use it; without it Mirage decodes
 * with Pillow. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int mirage_png_unfilter(const uint8_t *src, uint8_t *dst, size_t rows,
                        size_t rowbytes, size_t bpp, int above);

static inline int absolute(int v) { return v < 0 ? -v : v; }

/* The Paeth choice (PNG spec 9.4): a if it is nearest, then b, then c. */
static inline int paeth(int a, int b, int c) {
    int pa = absolute(b - c), pb = absolute(a - c),
        pc = absolute(a + b - 2 * c);
    int take_b = -(pb < pa);
    int best = (a & ~take_b) | (b & take_b);
    int nearest = (pa & ~take_b) | (pb & take_b);
    int take_c = -(pc < nearest);
    return (best & ~take_c) | (c & take_c);
}

#if defined(__SSE2__)
/* Paeth over 4-byte pixels in 16-bit lanes: one step per pixel, the only serial
 * dependency being the reconstructed pixel to the left. */
static void paeth4(const uint8_t *in, uint8_t *cur, const uint8_t *prev,
                   size_t rowbytes) {
    const __m128i zero = _mm_setzero_si128();
    const __m128i low = _mm_set1_epi16(0xff);
    __m128i a = zero, c = zero;
    for (size_t i = 0; i + 4 <= rowbytes; i += 4) {
        uint32_t word;
        memcpy(&word, prev + i, 4);
        __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)word), zero);
        memcpy(&word, in + i, 4);
        __m128i x = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)word), zero);
        __m128i dbc = _mm_sub_epi16(b, c), dac = _mm_sub_epi16(a, c);
        __m128i sum = _mm_add_epi16(dbc, dac);
        __m128i pa = _mm_max_epi16(dbc, _mm_sub_epi16(zero, dbc));
        __m128i pb = _mm_max_epi16(dac, _mm_sub_epi16(zero, dac));
        __m128i pc = _mm_max_epi16(sum, _mm_sub_epi16(zero, sum));
        __m128i take_b = _mm_cmplt_epi16(pb, pa);
        __m128i best =
            _mm_or_si128(_mm_andnot_si128(take_b, a), _mm_and_si128(take_b, b));
        __m128i take_c = _mm_cmplt_epi16(pc, _mm_min_epi16(pa, pb));
        best = _mm_or_si128(_mm_andnot_si128(take_c, best),
                            _mm_and_si128(take_c, c));
        a = _mm_and_si128(_mm_add_epi16(x, best), low);
        word = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(a, a));
        memcpy(cur + i, &word, 4);
        c = b;
    }
}
#endif

/* src: `rows` rows of one filter-type byte and `rowbytes` filtered bytes; dst:
 * rows * rowbytes bytes of pixels. bpp: bytes per pixel (1 to 4). above: dst
 * continues an image whose previous row (already unfiltered) lies just before
 * it. Returns 0, or -1 at the first unknown filter type (dst then holds only
 * the rows before it).
 */
int mirage_png_unfilter(const uint8_t *src, uint8_t *dst, size_t rows,
                        size_t rowbytes, size_t bpp, int above) {
    if (bpp < 1 || bpp > 4 || rowbytes < bpp)
        return -1;
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *in = src + y * (rowbytes + 1) + 1;
        uint8_t *cur = dst + y * rowbytes;
        const uint8_t *prev = y > 0 || above ? cur - rowbytes : NULL;
        switch (in[-1]) {
        case 0:
            memcpy(cur, in, rowbytes);
            break;
        case 1:
            memcpy(cur, in, bpp);
            for (size_t i = bpp; i < rowbytes; i++)
                cur[i] = (uint8_t)(in[i] + cur[i - bpp]);
            break;
        case 2:
            if (prev == NULL) {
                memcpy(cur, in, rowbytes);
                break;
            }
            for (size_t i = 0; i < rowbytes; i++)
                cur[i] = (uint8_t)(in[i] + prev[i]);
            break;
        case 3:
            for (size_t i = 0; i < rowbytes; i++) {
                int left = i >= bpp ? cur[i - bpp] : 0;
                int up = prev != NULL ? prev[i] : 0;
                cur[i] = (uint8_t)(in[i] + ((left + up) >> 1));
            }
            break;
        case 4:
            if (prev == NULL) {
                /* Above the first row b = c = 0, so Paeth picks a: the Sub
                 * filter. */
                memcpy(cur, in, bpp);
                for (size_t i = bpp; i < rowbytes; i++)
                    cur[i] = (uint8_t)(in[i] + cur[i - bpp]);
                break;
            }
#if defined(__SSE2__)
            if (bpp == 4) {
                paeth4(in, cur, prev, rowbytes);
                break;
            }
#endif
            for (size_t i = 0; i < rowbytes; i++) {
                int a = i >= bpp ? cur[i - bpp] : 0;
                int c = i >= bpp ? prev[i - bpp] : 0;
                cur[i] = (uint8_t)(in[i] + paeth(a, prev[i], c));
            }
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* The other way, for writing: every row Paeth-filtered (filter type 4). One
 * filter for all rows, not a per-row choice by trial: on photographs Paeth wins
 * nearly every row, and trying all five costs more than deflating. src: rows *
 * rowbytes pixel bytes; dst: rows of one filter-type byte and rowbytes bytes.
 */
void mirage_png_filter_paeth(const uint8_t *src, uint8_t *dst, size_t rows,
                             size_t rowbytes, size_t bpp) {
    for (size_t y = 0; y < rows; y++) {
        const uint8_t *cur = src + y * rowbytes;
        const uint8_t *prev = y > 0 ? cur - rowbytes : NULL;
        uint8_t *out = dst + y * (rowbytes + 1);
        out[0] = 4;
        out++;
        for (size_t i = 0; i < rowbytes; i++) {
            int a = i >= bpp ? cur[i - bpp] : 0;
            int b = prev != NULL ? prev[i] : 0;
            int c = prev != NULL && i >= bpp ? prev[i - bpp] : 0;
            out[i] = (uint8_t)(cur[i] - paeth(a, b, c));
        }
    }
}
