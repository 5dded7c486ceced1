// Row kernels of the 1D subdivision (internal): the update of new vertices' values from
// their interval's ends (Subdivider::update_rows) and the filter's count of undecided
// values (Subdivider::certify_values), with AVX2 variants chosen at run time. The update's
// bound (docs/numerics.md §3) allows any rounding of its operations, fused or not; the
// count's AVX2 variant does the scalar code's operations (no fusing), so decisions do not
// depend on the CPU.
#pragma once

#include <algorithm>
#include <cmath>

#include "index.hpp"
#include "interval_signs.hpp"
#include "lrcore/activation.hpp"
#include "lrcore/blas.hpp"
#include "simd.hpp"

namespace lrcore::detail {

namespace row_ops_impl {

inline void axpy_scalar(double c, const double* x, double* y, Index n) {
    for (Index k = 0; k < n; ++k) y[k] += c * x[k];
}
inline void scale_scalar(double c, const double* x, double* y, Index n) {
    for (Index k = 0; k < n; ++k) y[k] = c * x[k];
}
inline void chord_scalar(const double* za, const double* zb, double tau, const double* sum,
                         double* y, Index n) {
    for (Index k = 0; k < n; ++k) y[k] = (za[k] + tau * (zb[k] - za[k])) - (y[k] + tau * sum[k]);
}
// scale_scalar then axpy_scalar on the same sum: row = s sum, then sum += c x.
inline void scale_axpy_scalar(double s, double* sum, double* row, double c, const double* x,
                              Index n) {
    for (Index k = 0; k < n; ++k) {
        row[k] = s * sum[k];
        sum[k] += c * x[k];
    }
}
// axpy_scalar then chord_scalar on the same sum: sum += c x, then the chord.
inline void axpy_chord_scalar(double c, const double* x, double* sum, const double* za,
                              const double* zb, double tau, double* y, Index n) {
    for (Index k = 0; k < n; ++k) {
        sum[k] += c * x[k];
        y[k] = (za[k] + tau * (zb[k] - za[k])) - (y[k] + tau * sum[k]);
    }
}
inline Index undecided_scalar(const double* z, const double* norms, const double* bias, double a,
                              double b, Index n) {
    Index count = 0;
    for (Index j = 0; j < n; ++j) count += !(std::abs(z[j]) > norms[j] * a + bias[j] * b);
    return count;
}

inline void norms3_scalar(const double* a, const double* b, Index n, double& na, double& nb,
                          double& nd) {
    for (Index k = 0; k < n; ++k) {
        na += a[k] * a[k];
        nb += b[k] * b[k];
        nd += (b[k] - a[k]) * (b[k] - a[k]);
    }
}

#if defined(LRCORE_AVX2_DISPATCH)
inline bool has_avx2_fma() {
    static const bool has = cpu_has_avx2() && __builtin_cpu_supports("fma") != 0;
    return has;
}
__attribute__((target("avx2,fma"))) inline void axpy_avx2(double c, const double* x, double* y,
                                                          Index n) {
    const __m256d cv = _mm256_set1_pd(c);
    Index k = 0;
    for (; k + 4 <= n; k += 4)
        _mm256_storeu_pd(y + k,
                         _mm256_fmadd_pd(cv, _mm256_loadu_pd(x + k), _mm256_loadu_pd(y + k)));
    for (; k < n; ++k) y[k] = std::fma(c, x[k], y[k]);
}
__attribute__((target("avx2,fma"))) inline void scale_avx2(double c, const double* x, double* y,
                                                           Index n) {
    const __m256d cv = _mm256_set1_pd(c);
    Index k = 0;
    for (; k + 4 <= n; k += 4) _mm256_storeu_pd(y + k, _mm256_mul_pd(cv, _mm256_loadu_pd(x + k)));
    for (; k < n; ++k) y[k] = c * x[k];
}
__attribute__((target("avx2,fma"))) inline void chord_avx2(const double* za, const double* zb,
                                                           double tau, const double* sum, double* y,
                                                           Index n) {
    const __m256d t = _mm256_set1_pd(tau);
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256d a = _mm256_loadu_pd(za + k);
        const __m256d chord = _mm256_fmadd_pd(t, _mm256_sub_pd(_mm256_loadu_pd(zb + k), a), a);
        const __m256d corr = _mm256_fmadd_pd(t, _mm256_loadu_pd(sum + k), _mm256_loadu_pd(y + k));
        _mm256_storeu_pd(y + k, _mm256_sub_pd(chord, corr));
    }
    for (; k < n; ++k) y[k] = std::fma(tau, zb[k] - za[k], za[k]) - std::fma(tau, sum[k], y[k]);
}
// scale_avx2 then axpy_avx2 on the same sum, in one pass (the same operations).
__attribute__((target("avx2,fma"))) inline void scale_axpy_avx2(double s, double* sum, double* row,
                                                                double c, const double* x,
                                                                Index n) {
    const __m256d sv = _mm256_set1_pd(s), cv = _mm256_set1_pd(c);
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256d old = _mm256_loadu_pd(sum + k);
        _mm256_storeu_pd(row + k, _mm256_mul_pd(sv, old));
        _mm256_storeu_pd(sum + k, _mm256_fmadd_pd(cv, _mm256_loadu_pd(x + k), old));
    }
    for (; k < n; ++k) {
        row[k] = s * sum[k];
        sum[k] = std::fma(c, x[k], sum[k]);
    }
}
// axpy_avx2 then chord_avx2 on the same sum, in one pass (the same operations).
__attribute__((target("avx2,fma"))) inline void axpy_chord_avx2(double c, const double* x,
                                                                double* sum, const double* za,
                                                                const double* zb, double tau,
                                                                double* y, Index n) {
    const __m256d cv = _mm256_set1_pd(c), t = _mm256_set1_pd(tau);
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256d s4 = _mm256_fmadd_pd(cv, _mm256_loadu_pd(x + k), _mm256_loadu_pd(sum + k));
        _mm256_storeu_pd(sum + k, s4);
        const __m256d a = _mm256_loadu_pd(za + k);
        const __m256d chord = _mm256_fmadd_pd(t, _mm256_sub_pd(_mm256_loadu_pd(zb + k), a), a);
        const __m256d corr = _mm256_fmadd_pd(t, s4, _mm256_loadu_pd(y + k));
        _mm256_storeu_pd(y + k, _mm256_sub_pd(chord, corr));
    }
    for (; k < n; ++k) {
        sum[k] = std::fma(c, x[k], sum[k]);
        y[k] = std::fma(tau, zb[k] - za[k], za[k]) - std::fma(tau, sum[k], y[k]);
    }
}
// How many of z[0..n) the filter leaves undecided (undecided_scalar's operations, unfused:
// decisions do not depend on the CPU), with the sign words of the same values
// (sign_words), in one pass.
__attribute__((target("avx2"))) inline Index undecided_signs_avx2(const double* z,
                                                                  const double* norms,
                                                                  const double* bias, double a,
                                                                  double b, Index n, Word* words) {
    const __m256d av = _mm256_set1_pd(a), bv = _mm256_set1_pd(b);
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    Index count = 0;
    Index j = 0;
    for (Index c = 0; j + 4 <= n; ++c) {
        Word p = 0, m = 0, e = 0;  // the chunk's sign words
        const Index end = std::min(n, (c + 1) * kWordBits);
        for (; j + 4 <= end; j += 4) {
            const __m256d eps = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(norms + j), av),
                                              _mm256_mul_pd(_mm256_loadu_pd(bias + j), bv));
            const __m256d zj = _mm256_loadu_pd(z + j);
            const __m256d mag = _mm256_and_pd(zj, abs_mask);
            // Not (|z| > eps), NaN included: the ordered greater-than is false for NaN.
            const int decided = _mm256_movemask_pd(_mm256_cmp_pd(mag, eps, _CMP_GT_OQ));
            count += 4 - __builtin_popcount(static_cast<unsigned>(decided));
            sign_bits4_avx2(zj, j % kWordBits, p, m, e);
        }
        words[kSignWords * c] = p;
        words[kSignWords * c + 1] = m;
        words[kSignWords * c + 2] = e;
    }
    sign_words_scalar(z, j, n, words);
    return count + undecided_scalar(z + j, norms + j, bias + j, a, b, n - j);
}
// Activation::apply_row for ReLU, four values at a time: the same values and the same
// sum of squares bit for bit. Its SSE2 code keeps lanes j % 4 = 0, 1 in one accumulator
// and 2, 3 in another, adds them lane by lane and then the two lanes, and so does this
// (multiplies and adds unfused, as there).
__attribute__((target("avx2"))) inline double relu_row_avx2(const double* z, double* h, Index width,
                                                            Index neurons) {
    const __m256d zero = _mm256_setzero_pd();
    __m256d sum4 = zero;
    Index j = 0;
    for (; j + 4 <= neurons; j += 4) {
        const __m256d x = _mm256_loadu_pd(z + j);
        const __m256d v = _mm256_and_pd(_mm256_cmp_pd(x, zero, _CMP_GT_OQ), x);  // NaN: 0
        _mm256_storeu_pd(h + j, v);
        sum4 = _mm256_add_pd(sum4, _mm256_mul_pd(v, v));
    }
    double parts[2];
    _mm_storeu_pd(parts, _mm_add_pd(_mm256_castpd256_pd128(sum4), _mm256_extractf128_pd(sum4, 1)));
    return Activation{}.apply_row_from(z, h, j, width, neurons, parts[0] + parts[1]);
}
__attribute__((target("avx2,fma"))) inline void norms3_avx2(const double* a, const double* b,
                                                            Index n, double& na, double& nb,
                                                            double& nd) {
    __m256d sa = _mm256_setzero_pd(), sb = sa, sd = sa;
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256d x = _mm256_loadu_pd(a + k), y = _mm256_loadu_pd(b + k);
        const __m256d d = _mm256_sub_pd(y, x);
        sa = _mm256_fmadd_pd(x, x, sa);
        sb = _mm256_fmadd_pd(y, y, sb);
        sd = _mm256_fmadd_pd(d, d, sd);
    }
    double parts[4];
    _mm256_storeu_pd(parts, sa);
    na = (parts[0] + parts[1]) + (parts[2] + parts[3]);
    _mm256_storeu_pd(parts, sb);
    nb = (parts[0] + parts[1]) + (parts[2] + parts[3]);
    _mm256_storeu_pd(parts, sd);
    nd = (parts[0] + parts[1]) + (parts[2] + parts[3]);
    norms3_scalar(a + k, b + k, n - k, na, nb, nd);
}
#endif

}  // namespace row_ops_impl

// The squared l2 norms of a, b and b - a (n values each), summed in some order: a bound
// takes gamma_{n+1} of relative error for it.
inline void row_norms3(const double* a, const double* b, Index n, double& na, double& nb,
                       double& nd) {
    na = nb = nd = 0.0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma()) return row_ops_impl::norms3_avx2(a, b, n, na, nb, nd);
#endif
    row_ops_impl::norms3_scalar(a, b, n, na, nb, nd);
}

// y += c x.
inline void row_axpy(double c, const double* x, double* y, Index n) {
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma()) return row_ops_impl::axpy_avx2(c, x, y, n);
#endif
    row_ops_impl::axpy_scalar(c, x, y, n);
}
// y = c x.
inline void row_scale(double c, const double* x, double* y, Index n) {
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma()) return row_ops_impl::scale_avx2(c, x, y, n);
#endif
    row_ops_impl::scale_scalar(c, x, y, n);
}
// y = (za + tau (zb - za)) - (y + tau sum).
inline void row_chord(const double* za, const double* zb, double tau, const double* sum, double* y,
                      Index n) {
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma()) return row_ops_impl::chord_avx2(za, zb, tau, sum, y, n);
#endif
    row_ops_impl::chord_scalar(za, zb, tau, sum, y, n);
}
// row_scale(s, sum, row, n) then row_axpy(c, x, sum, n), in one pass.
inline void row_scale_axpy(double s, double* sum, double* row, double c, const double* x, Index n) {
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma()) return row_ops_impl::scale_axpy_avx2(s, sum, row, c, x, n);
#endif
    row_ops_impl::scale_axpy_scalar(s, sum, row, c, x, n);
}
// row_axpy(c, x, sum, n) then row_chord(za, zb, tau, sum, y, n), in one pass.
inline void row_axpy_chord(double c, const double* x, double* sum, const double* za,
                           const double* zb, double tau, double* y, Index n) {
#if defined(LRCORE_AVX2_DISPATCH)
    if (row_ops_impl::has_avx2_fma())
        return row_ops_impl::axpy_chord_avx2(c, x, sum, za, zb, tau, y, n);
#endif
    row_ops_impl::axpy_chord_scalar(c, x, sum, za, zb, tau, y, n);
}
// act.apply_row(z, h, width, neurons): the same values and norm, bit for bit.
inline double activate_values(const Activation& act, const double* z, double* h, Index width,
                              Index neurons) {
#if defined(LRCORE_AVX2_DISPATCH) && defined(__SSE2__)
    if (act.kind == ActivationKind::relu && cpu_has_avx2())
        return row_ops_impl::relu_row_avx2(z, h, width, neurons);
#endif
    return act.apply_row(z, h, width, neurons);
}
// How many of z[0..n) the filter leaves undecided, !(|z_j| > norms_j a + bias_j b), and
// the sign words of z[0..n) (sign_words) into `words`, in one pass. max_norm, max_bias:
// at least every norms_j, bias_j (all >= 0). With a, b >= 0, bound = max_norm a +
// max_bias b is at least every eps_j as float64 computes it (rounding is monotone), so
// where every |z_j| > bound no value is undecided and eps_j is not needed.
inline Index count_undecided_signs(const double* z, const double* norms, const double* bias,
                                   double a, double b, double max_norm, double max_bias, Index n,
                                   Word* words) {
    std::fill_n(words, kSignWords * ((n + kWordBits - 1) / kWordBits), Word{0});
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) {
        if (a >= 0.0 && b >= 0.0 &&
            sign_words_outside_avx2(z, n, max_norm * a + max_bias * b, words))
            return 0;
        std::fill_n(words, kSignWords * ((n + kWordBits - 1) / kWordBits), Word{0});
        return row_ops_impl::undecided_signs_avx2(z, norms, bias, a, b, n, words);
    }
#endif
    sign_words_scalar(z, 0, n, words);
    return row_ops_impl::undecided_scalar(z, norms, bias, a, b, n);
}

}  // namespace lrcore::detail
