// The sign words of a layer's values (internal, 1D): per vertex and per 64 neurons, which
// values are positive, negative and zero; per interval, from its two ends' words, which
// neurons are on over the interval and which change sign inside it. Reads the signs that
// signs.hpp decided (values within the tolerance are exactly 0 by then).
#pragma once

#include <algorithm>
#include <cmath>

#include "bits.hpp"
#include "index.hpp"
#include "simd.hpp"

namespace lrcore::detail {

// The words a vertex keeps per 64 neurons: z > 0, z < 0, z == 0 (NaN: none of them).
inline constexpr Index kSignWords = 3;

// Sets the bits of values z[begin..n) in `words` (kSignWords per 64 values, zeroed by the
// caller): words[3c], [3c + 1], [3c + 2] bit j % 64 for z[j] > 0, < 0, == 0, j in chunk c.
inline void sign_words_scalar(const double* z, Index begin, Index n, Word* words) {
    for (Index j = begin; j < n; ++j) {
        Word* w = words + kSignWords * (j / kWordBits);
        const Word bit = Word{1} << (j % kWordBits);
        w[0] |= z[j] > 0.0 ? bit : 0;
        w[1] |= z[j] < 0.0 ? bit : 0;
        w[2] |= z[j] == 0.0 ? bit : 0;
    }
}

#if defined(LRCORE_AVX2_DISPATCH)
// The bits of four values z, shifted to bit `shift` (the same ordered comparisons: false for
// NaN), or-ed into the chunk's words p (> 0), m (< 0), e (== 0).
__attribute__((target("avx2"))) inline void sign_bits4_avx2(__m256d z, Index shift, Word& p,
                                                            Word& m, Word& e) {
    const __m256d zero = _mm256_setzero_pd();
    p |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(z, zero, _CMP_GT_OQ))) << shift;
    m |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(z, zero, _CMP_LT_OQ))) << shift;
    e |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(z, zero, _CMP_EQ_OQ))) << shift;
}

// Four values at a time, chunk by chunk; returns how many values it did (the words of
// the chunk holding the rest are left for sign_words_scalar to complete).
__attribute__((target("avx2"))) inline Index sign_words_avx2(const double* z, Index n,
                                                             Word* words) {
    Index j = 0;
    for (Index c = 0; j + 4 <= n; ++c) {
        Word p = 0, m = 0, e = 0;
        const Index end = std::min(n, (c + 1) * kWordBits);
        for (; j + 4 <= end; j += 4)
            sign_bits4_avx2(_mm256_loadu_pd(z + j), j % kWordBits, p, m, e);
        words[kSignWords * c] = p;
        words[kSignWords * c + 1] = m;
        words[kSignWords * c + 2] = e;
    }
    return j;
}

// Whether every value of z[0..n) has |z_j| > bound (bound >= 0), and then their sign
// words into `words` (zeroed by the caller): such values are neither zero nor NaN, so
// their sign bits alone give them. False: a value is within the bound (or NaN), and
// `words` is left incomplete.
__attribute__((target("avx2"))) inline bool sign_words_outside_avx2(const double* z, Index n,
                                                                    double bound, Word* words) {
    const __m256d limit = _mm256_set1_pd(bound);
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    Index j = 0;
    // All ones in the lanes whose values all had |z| > bound so far.
    __m256d outside4 = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    for (Index c = 0; j + 4 <= n; ++c) {
        Word m = 0;  // sign bits
        const Index begin = j;
        const Index end = std::min(n, (c + 1) * kWordBits);
        for (; j + 8 <= end; j += 8) {
            const __m256d z0 = _mm256_loadu_pd(z + j);
            const __m256d z1 = _mm256_loadu_pd(z + j + 4);
            outside4 = _mm256_and_pd(outside4,
                                     _mm256_cmp_pd(_mm256_and_pd(z0, abs_mask), limit, _CMP_GT_OQ));
            outside4 = _mm256_and_pd(outside4,
                                     _mm256_cmp_pd(_mm256_and_pd(z1, abs_mask), limit, _CMP_GT_OQ));
            m |= static_cast<Word>(_mm256_movemask_pd(z0) | (_mm256_movemask_pd(z1) << 4))
                 << (j % kWordBits);
        }
        for (; j + 4 <= end; j += 4) {
            const __m256d zj = _mm256_loadu_pd(z + j);
            outside4 = _mm256_and_pd(outside4,
                                     _mm256_cmp_pd(_mm256_and_pd(zj, abs_mask), limit, _CMP_GT_OQ));
            m |= static_cast<Word>(_mm256_movemask_pd(zj)) << (j % kWordBits);
        }
        const Index done = j - begin;  // values of the chunk, a multiple of 4
        const Word lanes = done == kWordBits ? ~Word{0} : (Word{1} << done) - 1;
        words[kSignWords * c] = ~m & lanes;
        words[kSignWords * c + 1] = m;
    }
    const int outside = _mm256_movemask_pd(outside4);
    bool all_outside = outside == 0xf;
    for (Index k = j; k < n; ++k) all_outside = all_outside && std::abs(z[k]) > bound;
    sign_words_scalar(z, j, n, words);
    return all_outside;
}
#endif

// The sign words of z[0..n) (kSignWords per 64 values) into `words`.
inline void sign_words(const double* z, Index n, Word* words) {
    std::fill_n(words, kSignWords * ((n + kWordBits - 1) / kWordBits), Word{0});
    Index j = 0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) j = sign_words_avx2(z, n, words);
#endif
    sign_words_scalar(z, j, n, words);
}

// From the sign words of one chunk of 64 neurons at an interval's ends a and b: on
// (a > 0, or a == 0 and b > 0: the sign at the start, or at the end where the start is
// 0) and cross (strictly opposite signs: a > 0 > b or a < 0 < b).
inline void interval_sign_words(const Word* a, const Word* b, Word& on, Word& cross) {
    on = a[0] | (a[2] & b[0]);
    cross = (a[0] & b[1]) | (a[1] & b[0]);
}

}  // namespace lrcore::detail
