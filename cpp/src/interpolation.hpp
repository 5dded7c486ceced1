// Values at a crossing (internal): a row of a layer's values interpolated between two
// vertices, with the zero tolerance and the plane's resolution applied.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

namespace lrcore::detail {

// Certified interpolation (docs/numerics.md §6): the values of the exact crossing point a
// fraction tau* from vertex x to vertex y, where |tau - tau*| <= dtau, each with a bound
// on its error. The exact values there are (1 - tau*) x* + tau* y* (the layer is affine
// on the face), and x, y are within ex, ey of x*, y* componentwise, so
//   |out - out*| <= (1 - tau) ex + tau ey + dtau (|y - x| + ex + ey) + 3u (|x| + |y|)
// (the ends' errors, the fraction's, and the rounding of x + tau (y - x) for tau in
// [0, 1]); kSafe covers the O(u^2) terms and the bound's own rounding.
//
// A neuron's value clear of its bound is decided. One within a nonzero bound is
// undecided (counted in `uncertified`) and takes the zero tolerance's decision
// (InterpolationRule with the fallback rtol): 0 within the tolerance, within 8 ulps of
// its ends or within the plane's resolution, else its float64 value. A decided value
// within the plane's resolution (near |y - x|) becomes 0, counted in `merged`. A zero
// value becomes |value| + bound off. Linear units (j >= neurons) are interpolated with
// their bounds, never decided. Neuron `own` (the one crossing here) is exactly 0 at the
// exact point: 0, bound 0, not counted.
struct CertifiedCounts {
    Index merged = 0;
    Index uncertified = 0;
    double error_norm = 0.0;  // l2 norm of the new row's bounds, rounded up
};

struct CertifiedStep {
    static constexpr double kRound3 = 3.0 * 0x1p-53;
    static constexpr double kSafe = 1.0 + 0x1p-20;
    double tau, tau_c, dtau, near;
    InterpolationRule fallback;               // the zero tolerance, for undecided values
    std::vector<Index>* undecided = nullptr;  // if set, the undecided neurons are listed

    // One neuron's value and bound; 0: decided (or exact: a bound of 0, both ends exactly
    // 0 with bound 0, the vertex on a line cut in this layer), 1: undecided, 2: decided
    // but within the plane's resolution. The vector loop does the same operations in the
    // same order, so both give the same results.
    int classify(double x, double y, double ex, double ey, double& value, double& err) const {
        const double d = y - x;
        value = x + tau * d;
        const double ad = std::abs(d);
        err = tau_c * ex + tau * ey;
        err = err + dtau * ((ad + ex) + ey);
        err = err + kRound3 * (std::abs(x) + std::abs(y));
        err = kSafe * err;
        const double size = std::abs(value);
        // A NaN bound (0 * inf from an end's bound that overflowed) decides nothing.
        if (err == 0.0 || size > err) return size <= near * ad && err > 0.0 ? 2 : 0;
        return 1;
    }

    // Neuron j (not the crossing one): writes its value and bound, counts.
    void neuron(const double* x, const double* y, const double* ex, const double* ey, Index j,
                double* out, double* eout, CertifiedCounts& counts) const {
        double value, err;
        const int kind = classify(x[j], y[j], ex[j], ey[j], value, err);
        bool zero = kind == 2;
        if (kind == 1) {
            ++counts.uncertified;
            if (undecided != nullptr) undecided->push_back(j);
            double old;
            zero = fallback.classify(x[j], y[j], tau, j, old) != 0;
        }
        counts.merged += kind == 2;
        out[j] = zero ? 0.0 : value;
        eout[j] = zero ? kSafe * (std::abs(value) + err) : err;
    }
};

#if defined(LRCORE_AVX2_DISPATCH)
// interpolate_row_certified's loop over neurons j < `neurons`, four at a time: the
// decided values in vector operations (CertifiedStep::classify's), a group of four with
// any other value by CertifiedStep::neuron; returns how many values it did.
__attribute__((target("avx2"))) inline Index interpolate_row_certified_avx2(
    const double* __restrict x, const double* __restrict y, const double* __restrict ex,
    const double* __restrict ey, const CertifiedStep& step, Index neurons, Index own,
    double* __restrict out, double* __restrict eout, CertifiedCounts& counts) {
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d t = _mm256_set1_pd(step.tau);
    const __m256d tc = _mm256_set1_pd(step.tau_c);
    const __m256d dt = _mm256_set1_pd(step.dtau);
    const __m256d nr = _mm256_set1_pd(step.near);
    const __m256d r3 = _mm256_set1_pd(CertifiedStep::kRound3);
    const __m256d safe = _mm256_set1_pd(CertifiedStep::kSafe);
    __m256d squares = zero;
    // Groups of four with a value not plainly decided (kept out of the loop, which then
    // holds its constants in registers).
    constexpr Index kRare = 32;
    Index rare[kRare];
    Index count = 0;
    const Index own_group = own - own % 4;
    const int own_bit = 1 << (own % 4);
    Index j = 0;
    for (; j + 4 <= neurons; j += 4) {
        const __m256d xj = _mm256_loadu_pd(x + j);
        const __m256d yj = _mm256_loadu_pd(y + j);
        const __m256d exj = _mm256_loadu_pd(ex + j);
        const __m256d eyj = _mm256_loadu_pd(ey + j);
        const __m256d d = _mm256_sub_pd(yj, xj);
        const __m256d value = _mm256_add_pd(xj, _mm256_mul_pd(t, d));
        const __m256d ad = _mm256_andnot_pd(sign_bit, d);
        // (tc ex + t ey) + dt ((ad + ex) + ey) + r3 (|x| + |y|), times kSafe
        __m256d err = _mm256_add_pd(_mm256_mul_pd(tc, exj), _mm256_mul_pd(t, eyj));
        err = _mm256_add_pd(err, _mm256_mul_pd(dt, _mm256_add_pd(_mm256_add_pd(ad, exj), eyj)));
        err = _mm256_add_pd(err, _mm256_mul_pd(r3, _mm256_add_pd(_mm256_andnot_pd(sign_bit, xj),
                                                                 _mm256_andnot_pd(sign_bit, yj))));
        err = _mm256_mul_pd(safe, err);
        const __m256d size = _mm256_andnot_pd(sign_bit, value);
        const __m256d bounded = _mm256_cmp_pd(err, zero, _CMP_NEQ_UQ);  // NaN too
        // Not plainly decided: a bound != 0 and !(size > max(near |d|, err)) (a NaN err:
        // max_pd returns its second operand, the comparison fails, classify redoes it).
        const __m256d limit = _mm256_max_pd(_mm256_mul_pd(nr, ad), err);
        const __m256d other = _mm256_andnot_pd(_mm256_cmp_pd(size, limit, _CMP_GT_OQ), bounded);
        _mm256_storeu_pd(out + j, value);
        _mm256_storeu_pd(eout + j, err);
        squares = _mm256_add_pd(squares, _mm256_mul_pd(err, err));
        // (The crossing neuron, near 0 by construction, is set apart by the caller.)
        const int mask = _mm256_movemask_pd(other) & (j == own_group ? ~own_bit : 15);
        if (mask != 0) {  // rare: redone below
            rare[count++] = j;
            if (count == kRare) {
                j += 4;
                break;
            }
        }
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, squares);
    counts.error_norm += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);  // squared, for now
    // The groups with a value not plainly decided, value by value (their new bounds'
    // squares added on top of the old ones': still an upper bound).
    for (Index g = 0; g < count; ++g) {
        for (Index k = rare[g]; k < rare[g] + 4; ++k) {
            if (k == own) continue;
            step.neuron(x, y, ex, ey, k, out, eout, counts);
            counts.error_norm += eout[k] * eout[k];
        }
    }
    return j;
}
#endif

inline CertifiedCounts interpolate_row_certified(
    const double* __restrict x, const double* __restrict y, const double* __restrict ex,
    const double* __restrict ey, const CertifiedStep& step, Index neurons, Index width, Index own,
    double* __restrict out, double* __restrict eout) {
    CertifiedCounts counts;
    Index j = 0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2())
        j = interpolate_row_certified_avx2(x, y, ex, ey, step, neurons, own, out, eout, counts);
#endif
    for (; j < neurons; ++j) {
        if (j == own) continue;
        step.neuron(x, y, ex, ey, j, out, eout, counts);
        counts.error_norm += eout[j] * eout[j];
    }
    for (; j < width; ++j) {
        double value, err;
        step.classify(x[j], y[j], ex[j], ey[j], value, err);
        out[j] = value;
        eout[j] = err;
        counts.error_norm += err * err;
    }
    // The crossing neuron is exactly 0 there (error 0), not a decision: the loops left
    // it out. (The l2 norm may count a bound for it: an upper bound all the same.)
    out[own] = 0.0;
    eout[own] = 0.0;
    counts.error_norm = std::sqrt(counts.error_norm) * CertifiedStep::kSafe *
                        (1.0 + static_cast<double>(width + 2) * 0x1p-53);
    return counts;
}

}  // namespace lrcore::detail
