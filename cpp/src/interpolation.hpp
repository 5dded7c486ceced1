// Values at a crossing (internal): a row of a layer's values interpolated between two
// vertices, with the zero tolerance and the plane's resolution applied.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "index.hpp"
#include "lrcore/blas.hpp"
#include "simd.hpp"

namespace lrcore::detail {

// The values of a point a fraction tau from row x to row y (`width` values, the first
// `neurons` of them neurons), written to `out`. A neuron's value is set to zero
// - within the zero tolerance: |value| <= rtol * (row_norms[j] * scale + abs_bias[j]);
// - within rounding of zero: |value| <= max(8 eps (|x_j| + |y_j|), near |y_j - x_j|),
//   near being the plane's resolution as a fraction of the segment from x to y.
// Returns the number of neurons zeroed by the second rule only: crossings placed at this
// vertex below float64's resolution (Slice2DResult::merged_crossings).
struct InterpolationRule {
    const double* row_norms;
    const double* abs_bias;
    double rtol, scale, near;
    static constexpr double kRound = 8.0 * std::numeric_limits<double>::epsilon();

    // 0: kept; 1: within the tolerance; 2: within rounding only.
    int classify(double x, double y, double tau, Index j, double& value) const {
        const double d = y - x;
        value = x + tau * d;
        const double size = std::abs(value);
        if (size <= rtol * (row_norms[j] * scale + abs_bias[j])) return 1;
        return size <= std::max(kRound * (std::abs(x) + std::abs(y)), near * std::abs(d)) ? 2 : 0;
    }
};

#if defined(LRCORE_AVX2_DISPATCH)
// interpolate_row's SSE2 loop four values at a time (the same operations, so the same
// results); returns the neurons zeroed by rounding only, and in `done` how many it did.
__attribute__((target("avx2"))) inline Index interpolate_row_avx2(
    const double* __restrict x, const double* __restrict y, double tau, Index neurons,
    const InterpolationRule& rule, double* __restrict out, Index& done) {
    static constexpr Index kBits[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d t = _mm256_set1_pd(tau);
    const __m256d rtol = _mm256_set1_pd(rule.rtol);
    const __m256d scale = _mm256_set1_pd(rule.scale);
    const __m256d round = _mm256_set1_pd(InterpolationRule::kRound);
    const __m256d near = _mm256_set1_pd(rule.near);
    Index merged_crossings = 0;
    Index j = 0;
    for (; j + 4 <= neurons; j += 4) {
        const __m256d xj = _mm256_loadu_pd(x + j);
        const __m256d yj = _mm256_loadu_pd(y + j);
        const __m256d d = _mm256_sub_pd(yj, xj);
        const __m256d value = _mm256_add_pd(xj, _mm256_mul_pd(t, d));
        const __m256d size = _mm256_andnot_pd(sign_bit, value);
        const __m256d tol = _mm256_mul_pd(
            rtol, _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(rule.row_norms + j), scale),
                                _mm256_loadu_pd(rule.abs_bias + j)));
        const __m256d within = _mm256_cmp_pd(size, tol, _CMP_LE_OQ);
        const __m256d rounding = _mm256_mul_pd(
            round, _mm256_add_pd(_mm256_andnot_pd(sign_bit, xj), _mm256_andnot_pd(sign_bit, yj)));
        const __m256d resolution = _mm256_mul_pd(near, _mm256_andnot_pd(sign_bit, d));
        const __m256d unresolved =
            _mm256_cmp_pd(size, _mm256_max_pd(rounding, resolution), _CMP_LE_OQ);
        _mm256_storeu_pd(out + j, _mm256_andnot_pd(_mm256_or_pd(within, unresolved), value));
        merged_crossings += kBits[_mm256_movemask_pd(_mm256_andnot_pd(within, unresolved))];
    }
    done = j;
    return merged_crossings;
}
#endif

inline Index interpolate_row(const double* __restrict x, const double* __restrict y, double tau,
                             Index neurons, Index width, const InterpolationRule& rule,
                             double* __restrict out) {
    Index merged_crossings = 0;
    Index j = 0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) merged_crossings = interpolate_row_avx2(x, y, tau, neurons, rule, out, j);
#endif
#if defined(__SSE2__)
    // Two values at a time, the same operations as the scalar rule (so the same results).
    const __m128d sign_bit = _mm_set1_pd(-0.0);
    const __m128d t = _mm_set1_pd(tau);
    const __m128d rtol = _mm_set1_pd(rule.rtol);
    const __m128d scale = _mm_set1_pd(rule.scale);
    const __m128d round = _mm_set1_pd(InterpolationRule::kRound);
    const __m128d near = _mm_set1_pd(rule.near);
    for (; j + 2 <= neurons; j += 2) {
        const __m128d xj = _mm_loadu_pd(x + j);
        const __m128d yj = _mm_loadu_pd(y + j);
        const __m128d d = _mm_sub_pd(yj, xj);
        const __m128d value = _mm_add_pd(xj, _mm_mul_pd(t, d));
        const __m128d size = _mm_andnot_pd(sign_bit, value);
        const __m128d tol =
            _mm_mul_pd(rtol, _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(rule.row_norms + j), scale),
                                        _mm_loadu_pd(rule.abs_bias + j)));
        const __m128d within = _mm_cmple_pd(size, tol);
        const __m128d rounding =
            _mm_mul_pd(round, _mm_add_pd(_mm_andnot_pd(sign_bit, xj), _mm_andnot_pd(sign_bit, yj)));
        const __m128d resolution = _mm_mul_pd(near, _mm_andnot_pd(sign_bit, d));
        const __m128d unresolved = _mm_cmple_pd(size, _mm_max_pd(rounding, resolution));
        _mm_storeu_pd(out + j, _mm_andnot_pd(_mm_or_pd(within, unresolved), value));
        const int mask = _mm_movemask_pd(_mm_andnot_pd(within, unresolved));
        merged_crossings += (mask & 1) + (mask >> 1);
    }
#endif
    for (; j < neurons; ++j) {
        double value;
        const int kind = rule.classify(x[j], y[j], tau, j, value);
        merged_crossings += kind == 2;
        out[j] = kind == 0 ? value : 0.0;
    }
    for (j = neurons; j < width; ++j) out[j] = x[j] + tau * (y[j] - x[j]);
    return merged_crossings;
}

}  // namespace lrcore::detail
