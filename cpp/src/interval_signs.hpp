// The sign words of an interval's two ends (internal, 1D): for up to 64 neurons at a
// time, which are on over the interval and which change sign inside it. Reads the signs
// that signs.hpp decided (values within the tolerance are exactly 0 by then).
#pragma once

#include "bits.hpp"
#include "index.hpp"
#include "simd.hpp"

namespace lrcore::detail {

// Bits j of `on` and `cross` for the values a = za[j], b = zb[j], j < count <= 64:
// on: a > 0, or a == 0 and b > 0 (the sign at the start, or at the end where the start
// is 0); cross: strictly opposite signs (a > 0 > b or a < 0 < b). NaN is neither.
inline void interval_sign_words_scalar(const double* za, const double* zb, Index begin, Index count,
                                       Word& on, Word& cross) {
    for (Index j = begin; j < count; ++j) {
        const double a = za[j];
        const double b = zb[j];
        const Word bit = Word{1} << j;
        on |= ((a > 0.0) | ((a == 0.0) & (b > 0.0))) ? bit : 0;
        cross |= (((a > 0.0) & (b < 0.0)) | ((a < 0.0) & (b > 0.0))) ? bit : 0;
    }
}

#if defined(LRCORE_AVX2_DISPATCH)
// Four values at a time, the same comparisons (ordered: false for NaN); returns how many
// values it did.
__attribute__((target("avx2"))) inline Index interval_sign_words_avx2(const double* za,
                                                                      const double* zb, Index count,
                                                                      Word& on, Word& cross) {
    const __m256d zero = _mm256_setzero_pd();
    Index j = 0;
    for (; j + 4 <= count; j += 4) {
        const __m256d a = _mm256_loadu_pd(za + j);
        const __m256d b = _mm256_loadu_pd(zb + j);
        const __m256d a_pos = _mm256_cmp_pd(a, zero, _CMP_GT_OQ);
        const __m256d a_neg = _mm256_cmp_pd(a, zero, _CMP_LT_OQ);
        const __m256d a_zero = _mm256_cmp_pd(a, zero, _CMP_EQ_OQ);
        const __m256d b_pos = _mm256_cmp_pd(b, zero, _CMP_GT_OQ);
        const __m256d b_neg = _mm256_cmp_pd(b, zero, _CMP_LT_OQ);
        const __m256d on4 = _mm256_or_pd(a_pos, _mm256_and_pd(a_zero, b_pos));
        const __m256d cross4 =
            _mm256_or_pd(_mm256_and_pd(a_pos, b_neg), _mm256_and_pd(a_neg, b_pos));
        on |= static_cast<Word>(_mm256_movemask_pd(on4)) << j;
        cross |= static_cast<Word>(_mm256_movemask_pd(cross4)) << j;
    }
    return j;
}
#endif

inline void interval_sign_words(const double* za, const double* zb, Index count, Word& on,
                                Word& cross) {
    on = 0;
    cross = 0;
    Index j = 0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) j = interval_sign_words_avx2(za, zb, count, on, cross);
#endif
    interval_sign_words_scalar(za, zb, j, count, on, cross);
}

}  // namespace lrcore::detail
