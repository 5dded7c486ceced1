// The elementwise activations of a network (ReLU, LeakyReLU) and how a row of values is
// activated.
#pragma once

#include <cmath>
#include <cstdint>

#include "lrcore/blas.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lrcore {

enum class ActivationKind : std::uint8_t { relu, leaky_relu };

struct Activation {
    ActivationKind kind = ActivationKind::relu;
    double negative_slope = 0.0;  // used by leaky_relu only

    // Value of the activation; the pattern bit of a neuron is (pre_activation > 0).
    double operator()(double z) const {
        if (z > 0.0) return z;
        return kind == ActivationKind::relu ? 0.0 : negative_slope * z;
    }

    // h = activated z for one row of `width` values whose first `neurons` units are
    // activated and the rest pass through unchanged (linear units); returns ||h||_2.
    // Branch-free (the signs of a layer's values are random: a branch on each was
    // mispredicted half the time), two values at a time where SSE2 is there.
    double apply_row(const double* z, double* h, Index width, Index neurons) const {
        const bool relu = kind == ActivationKind::relu;
        double sum = 0.0;
        Index j = 0;
#if defined(__SSE2__)
        const __m128d zero = _mm_setzero_pd();
        const __m128d slope = _mm_set1_pd(negative_slope);
        __m128d sum0 = zero, sum1 = zero;
        for (; j + 4 <= neurons; j += 4) {
            const __m128d x0 = _mm_loadu_pd(z + j);
            const __m128d x1 = _mm_loadu_pd(z + j + 2);
            const __m128d up0 = _mm_cmpgt_pd(x0, zero);  // false for NaN: 0 or slope * NaN
            const __m128d up1 = _mm_cmpgt_pd(x1, zero);
            __m128d v0 = _mm_and_pd(up0, x0);
            __m128d v1 = _mm_and_pd(up1, x1);
            if (!relu) {
                v0 = _mm_or_pd(v0, _mm_andnot_pd(up0, _mm_mul_pd(slope, x0)));
                v1 = _mm_or_pd(v1, _mm_andnot_pd(up1, _mm_mul_pd(slope, x1)));
            }
            _mm_storeu_pd(h + j, v0);
            _mm_storeu_pd(h + j + 2, v1);
            sum0 = _mm_add_pd(sum0, _mm_mul_pd(v0, v0));
            sum1 = _mm_add_pd(sum1, _mm_mul_pd(v1, v1));
        }
        double parts[2];
        _mm_storeu_pd(parts, _mm_add_pd(sum0, sum1));
        sum = parts[0] + parts[1];
#endif
        return apply_row_from(z, h, j, width, neurons, sum);
    }

    // apply_row's scalar end: values j.. of the row, `sum` the squares of those before
    // them; returns ||h||_2. (Vector kernels elsewhere finish their rows with it.)
    double apply_row_from(const double* z, double* h, Index j, Index width, Index neurons,
                          double sum) const {
        for (; j < neurons; ++j) {
            const double value = (*this)(z[j]);
            h[j] = value;
            sum += value * value;
        }
        for (; j < width; ++j) {
            h[j] = z[j];
            sum += z[j] * z[j];
        }
        return std::sqrt(sum);
    }
};

}  // namespace lrcore
