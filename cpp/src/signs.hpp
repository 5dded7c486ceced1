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

// Certified decisions (docs/numerics.md §6) at a layer-start vertex. Value j has a bound
// eps_j on its error; its sign is decided when |z_j| > eps_j. An undecided value is
// counted and takes the zero tolerance's decision (fallback rtol, norms, bias and the
// input norm s): 0 when |z_j| <= rtol (norms[j] s + bias[j]), else its float64 sign. A
// value set to 0 gets the bound |z_j| + eps_j (the error of 0 against z_j*), and its
// square is added to `zeroed` (the row moved by their l2 norm).
// Exact zeros by structure (docs/numerics.md §6): a row with no bias that reads only
// inputs known to be exactly 0 at the vertex's exact point (ReLU units with a certified
// sign <= 0, values proven 0) is exactly 0 there: max pooling's tournaments between two
// ReLU outputs that are both off. `off` holds a bit per input of the row's map.
struct StructuralZero {
    static constexpr Index kMaxTerms = 4096;
    const AffineMap* map = nullptr;
    const Word* off = nullptr;
    mutable std::vector<double> values;
    mutable std::vector<Index> cols;

    bool is_zero(Index j) const {
        const AffineRow row = map->row(j, values, cols);
        if (row.bias != 0.0 || row.count > kMaxTerms) return false;
        for (Index i = 0; i < row.count; ++i) {
            if (row.values[i] == 0.0) continue;
            const Index c = row.cols != nullptr ? row.cols[i] : i;
            if (((off[c / kWordBits] >> (c % kWordBits)) & Word{1}) == 0) return false;
        }
        return true;
    }
};

struct CertifyRow {
    static constexpr double kSafe = 1.0 + 0x1p-20;
    const double* norms;
    const double* bias;
    double a, b;         // eps_j = norms[j] a + bias[j] b (VertexBound), unless given
    double rtol, scale;  // the fallback zero tolerance
    const StructuralZero* structural = nullptr;    // where the layer has rows without bias
    std::vector<Index>* undecided_list = nullptr;  // if set, the undecided values are listed

    // Value k of row z with bound eps: decides it, writes z[k] and e[k], counts (exact
    // zeros by structure in `exact`, bound 0).
    void decide(double* z, double* e, Index k, double eps, Index& undecided, double& zeroed,
                Index& exact) const {
        const double size = std::abs(z[k]);
        if (size > eps) {  // false for NaN
            e[k] = eps;
            return;
        }
        if (size == 0.0 && bias[k] == 0.0 && structural != nullptr && structural->is_zero(k)) {
            z[k] = 0.0;  // (not -0.0)
            e[k] = 0.0;
            ++exact;
            return;
        }
        ++undecided;
        if (undecided_list != nullptr) undecided_list->push_back(k);
        if (size <= rtol * (norms[k] * scale + bias[k])) {
            zeroed += z[k] * z[k];
            z[k] = 0.0;
            e[k] = kSafe * (size + eps);
        } else {
            e[k] = eps;
        }
    }
};

// Certified decisions for one row of `neurons` values whose bounds are given (row e, as
// the domain corners have them), and their sign masks as snap_and_sign's; returns how many
// values were undecided.
inline Index certify_and_sign(double* z, double* e, Index neurons, const CertifyRow& c,
                              Word* positive, Word* negative, double& zeroed, Index& exact) {
    Index undecided = 0;
    for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
        const Index n = std::min(kWordBits, neurons - j0);
        Word pos = 0, neg = 0;
        for (Index k = 0; k < n; ++k) {
            c.decide(z, e, j0 + k, e[j0 + k], undecided, zeroed, exact);
            pos |= static_cast<Word>(z[j0 + k] > 0.0) << k;
            neg |= static_cast<Word>(z[j0 + k] < 0.0) << k;
        }
        positive[j0 / kWordBits] = pos;
        negative[j0 / kWordBits] = neg;
    }
    return undecided;
}

#if defined(LRCORE_AVX2_DISPATCH)
// certify_row's loop over the n (<= 64) neurons of one mask word from j0, four at a time:
// the decided values in vector operations, a group of four with an undecided one by
// CertifyRow::decide; returns how many values it did.
__attribute__((target("avx2"))) inline Index certify_row_avx2(double* z, double* e, Index j0,
                                                              Index n, const CertifyRow& c,
                                                              Word& pos, Word& neg,
                                                              Index& undecided, double& zeroed,
                                                              Index& exact) {
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d va = _mm256_set1_pd(c.a);
    const __m256d vb = _mm256_set1_pd(c.b);
    // Groups of four with an undecided value: redone value by value after the loop.
    Index rare[16];
    Index count = 0;
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        const Index j = j0 + k;
        const __m256d x = _mm256_loadu_pd(z + j);
        const __m256d eps = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(c.norms + j), va),
                                          _mm256_mul_pd(_mm256_loadu_pd(c.bias + j), vb));
        _mm256_storeu_pd(e + j, eps);
        const __m256d decided = _mm256_cmp_pd(_mm256_andnot_pd(sign_bit, x), eps, _CMP_GT_OQ);
        if (_mm256_movemask_pd(decided) != 15) rare[count++] = k;  // rare (n <= 64: <= 16)
        pos |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_GT_OQ))) << k;
        neg |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_LT_OQ))) << k;
    }
    for (Index g = 0; g < count; ++g) {
        for (Index i = rare[g]; i < rare[g] + 4; ++i) {
            c.decide(z, e, j0 + i, e[j0 + i], undecided, zeroed, exact);
            const Word bit = Word{1} << i;
            pos = (pos & ~bit) | (z[j0 + i] > 0.0 ? bit : 0);
            neg = (neg & ~bit) | (z[j0 + i] < 0.0 ? bit : 0);
        }
    }
    return k;
}
#endif

// Certified decisions at a layer-start vertex with the filter's bounds eps_j = norms[j] a
// + bias[j] b, fused with writing them to row e (width values; linear units, j >=
// neurons, only get their bound). Sign masks as snap_and_sign's; returns how many values
// were undecided.
inline Index certify_row(double* z, double* e, Index neurons, Index width, const CertifyRow& c,
                         Word* positive, Word* negative, double& zeroed, Index& exact) {
    Index undecided = 0;
    for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
        const Index n = std::min(kWordBits, neurons - j0);
        Word pos = 0, neg = 0;
        Index k = 0;
#if defined(LRCORE_AVX2_DISPATCH)
        if (cpu_has_avx2())
            k = certify_row_avx2(z, e, j0, n, c, pos, neg, undecided, zeroed, exact);
#endif
        for (; k < n; ++k) {
            const Index j = j0 + k;
            c.decide(z, e, j, c.norms[j] * c.a + c.bias[j] * c.b, undecided, zeroed, exact);
            pos |= static_cast<Word>(z[j] > 0.0) << k;
            neg |= static_cast<Word>(z[j] < 0.0) << k;
        }
        positive[j0 / kWordBits] = pos;
        negative[j0 / kWordBits] = neg;
    }
    for (Index j = neurons; j < width; ++j) e[j] = c.norms[j] * c.a + c.bias[j] * c.b;
    return undecided;
}

// The sign of a (snapped) value: 1, 0 or -1.
inline int sign_of(double value) { return (value > 0.0) - (value < 0.0); }

}  // namespace lrcore::detail
