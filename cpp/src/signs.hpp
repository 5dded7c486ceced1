// Sign decisions (internal): the zero tolerance applied to a layer's values at vertices,
// and their signs. A value |z_j| <= rtol * (||W_j||_2 * s + |b_j|), s bounding the norm of
// the layer's input at the vertex, is exactly zero (the vertex lies on neuron j's zero
// set); every other value has the sign it has in float64.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "bits.hpp"
#include "index.hpp"
#include "lrcore/affine.hpp"
#include "simd.hpp"

namespace lrcore::detail {

// Sets neuron values within the zero tolerance to exactly zero: |z_j| <= rtol *
// (||W_j|| s + |b_j|), s bounding the norm of the layer's input at the vertex. Rows hold
// `width` values, of which the first `neurons` are neurons (the rest are linear units).
inline void snap_zeros(double* z, Index n, Index width, Index neurons, const double* scale,
                       const AffineMap& map, double rtol) {
    const std::vector<double>& row_norms = map.row_norms();
    const std::vector<double>& abs_bias = map.abs_bias();
    for (Index v = 0; v < n; ++v) {
        double* row = z + v * width;
        const double s = scale[v];
        for (Index j = 0; j < neurons; ++j) {
            if (std::abs(row[j]) <= rtol * (row_norms[sz(j)] * s + abs_bias[sz(j)])) row[j] = 0.0;
        }
    }
}

// ||(1 - tau) a + tau b||_2 from ||a|| = na, ||b|| = nb and <a, b> = dot (a sum of `width`
// products), rounded up: the norm of an affine vector function between two points (the
// input of a layer inside a cell), which the interpolation na + tau (nb - na) can
// overestimate by far (a path from x to -x passes the origin).
inline double norm_between(double na, double nb, double dot, double tau, Index width) {
    const double u = 1.0 - tau;
    const double square = u * u * na * na + 2.0 * u * tau * dot + tau * tau * nb * nb;
    // Rounding of the sum and of the dot product, added back.
    const double error = static_cast<double>(width + 8) * std::numeric_limits<double>::epsilon() *
                         (u * na + tau * nb) * (u * na + tau * nb);
    return std::min(std::sqrt(std::max(square, 0.0) + error), u * na + tau * nb);
}

#if defined(LRCORE_AVX2_DISPATCH)
// snap_and_sign's loop over the n (<= 64) values of one mask word, four at a time (the
// same operations as its SSE2 loop); returns how many values it did.
__attribute__((target("avx2"))) inline Index snap_and_sign_avx2(double* z, Index n,
                                                                const double* norms,
                                                                const double* bias, double rtol,
                                                                double scale, Word& pos,
                                                                Word& neg) {
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d r = _mm256_set1_pd(rtol);
    const __m256d sc = _mm256_set1_pd(scale);
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        __m256d x = _mm256_loadu_pd(z + k);
        const __m256d tol =
            _mm256_mul_pd(r, _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(norms + k), sc),
                                           _mm256_loadu_pd(bias + k)));
        const __m256d small = _mm256_cmp_pd(_mm256_andnot_pd(sign_bit, x), tol, _CMP_LE_OQ);
        x = _mm256_andnot_pd(small, x);
        _mm256_storeu_pd(z + k, x);
        pos |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_GT_OQ))) << k;
        neg |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_LT_OQ))) << k;
    }
    return k;
}
#endif

// snap_zeros for one row of `neurons` values with input norm `scale`, and their signs as
// bit masks: bit j of positive (negative) is set where the snapped value is > 0 (< 0).
// The masks hold words_for(neurons) words, written whole.
inline void snap_and_sign(double* row, Index neurons, double scale, const AffineMap& map,
                          double rtol, Word* positive, Word* negative) {
    const double* row_norms = map.row_norms().data();
    const double* abs_bias = map.abs_bias().data();
    for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
        const Index n = std::min(kWordBits, neurons - j0);
        double* z = row + j0;
        const double* norms = row_norms + j0;
        const double* bias = abs_bias + j0;
        Word pos = 0, neg = 0;
        Index k = 0;
#if defined(LRCORE_AVX2_DISPATCH)
        if (cpu_has_avx2()) k = snap_and_sign_avx2(z, n, norms, bias, rtol, scale, pos, neg);
#endif
#if defined(__SSE2__)
        // Two values at a time: the comparisons' sign bits give two mask bits at once.
        const __m128d sign_bit = _mm_set1_pd(-0.0);
        const __m128d zero = _mm_setzero_pd();
        const __m128d r = _mm_set1_pd(rtol);
        const __m128d sc = _mm_set1_pd(scale);
        for (; k + 2 <= n; k += 2) {
            __m128d x = _mm_loadu_pd(z + k);
            const __m128d tol = _mm_mul_pd(
                r, _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(norms + k), sc), _mm_loadu_pd(bias + k)));
            const __m128d small = _mm_cmple_pd(_mm_andnot_pd(sign_bit, x), tol);
            x = _mm_andnot_pd(small, x);
            _mm_storeu_pd(z + k, x);
            pos |= static_cast<Word>(_mm_movemask_pd(_mm_cmpgt_pd(x, zero))) << k;
            neg |= static_cast<Word>(_mm_movemask_pd(_mm_cmplt_pd(x, zero))) << k;
        }
#endif
        for (; k < n; ++k) {
            if (std::abs(z[k]) <= rtol * (norms[k] * scale + bias[k])) z[k] = 0.0;
            pos |= static_cast<Word>(z[k] > 0.0) << k;
            neg |= static_cast<Word>(z[k] < 0.0) << k;
        }
        positive[j0 / kWordBits] = pos;
        negative[j0 / kWordBits] = neg;
    }
}

// The sign of a (snapped) value: 1, 0 or -1.
inline int sign_of(double value) { return (value > 0.0) - (value < 0.0); }

}  // namespace lrcore::detail
