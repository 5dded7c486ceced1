// A piecewise-linear network: affine maps with elementwise PWL activations between them.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

// An affine map y = W x + b applied to a batch of points stored as rows. Dense today;
// convolutions and pooling (sparse affine maps) implement the same interface later.
class AffineMap {
public:
    virtual ~AffineMap() = default;
    virtual Index in_dim() const = 0;
    virtual Index out_dim() const = 0;
    // y[i, :] = W x[i, :] + b for n rows; x has leading dimension ldx, y has ldy.
    virtual void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const = 0;
    // ||W[j, :]||_2 and |b[j]|: the scale of neuron j's pre-activation, used by the
    // zero tolerance.
    virtual const std::vector<double>& row_norms() const = 0;
    virtual const std::vector<double>& abs_bias() const = 0;
};

class DenseAffine final : public AffineMap {
public:
    // weight: row-major (out × in), as torch's nn.Linear stores it.
    DenseAffine(Index out_dim, Index in_dim, std::vector<double> weight, std::vector<double> bias);
    Index in_dim() const override { return in_; }
    Index out_dim() const override { return out_; }
    void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const override;
    const std::vector<double>& row_norms() const override { return row_norms_; }
    const std::vector<double>& abs_bias() const override { return abs_bias_; }
    const std::vector<double>& weight() const { return weight_; }
    const std::vector<double>& bias() const { return bias_; }

private:
    Index out_, in_;
    std::vector<double> weight_, bias_, row_norms_, abs_bias_;
};

// A sparse affine map (convolution, pooling): W in CSR form, memory proportional to its
// non-zeros.
class SparseAffine final : public AffineMap {
public:
    // CSR of the (out × in) matrix: row r's entries are indices/values[indptr[r],
    // indptr[r + 1]).
    SparseAffine(Index out_dim, Index in_dim, std::vector<Index> indptr, std::vector<Index> indices,
                 std::vector<double> values, std::vector<double> bias);
    Index in_dim() const override { return in_; }
    Index out_dim() const override { return out_; }
    void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const override;
    const std::vector<double>& row_norms() const override { return row_norms_; }
    const std::vector<double>& abs_bias() const override { return abs_bias_; }

private:
    Index out_, in_;
    std::vector<Index> indptr_, indices_;
    std::vector<double> values_, bias_, row_norms_, abs_bias_;
};

// f = A_L ∘ σ_{L-1} ∘ A_{L-1} ∘ … ∘ σ_1 ∘ A_1: an activation after every affine map but
// the last. Hidden layer l (0-based) is the output of A_{l+1} before σ_{l+1}.
//
// A hidden layer may end in linear units: its last linear_units[l] outputs pass through σ
// unchanged, have no pattern bit and never cut a cell. They carry values that later layers
// add back (residual connections, concatenation): a graph of affine maps, activations and
// additions becomes a chain whose layers hold every live tensor. Its neurons are the
// first neurons(l) = hidden_size(l) - linear_units[l] units.
class Network {
public:
    Network(std::vector<std::shared_ptr<const AffineMap>> layers,
            std::vector<Activation> activations, std::vector<Index> linear_units = {});

    Index input_dim() const { return layers_.front()->in_dim(); }
    Index output_dim() const { return layers_.back()->out_dim(); }
    Index num_hidden_layers() const { return static_cast<Index>(activations_.size()); }
    // Width of hidden layer l: its neurons followed by its linear units.
    Index hidden_size(Index l) const { return layers_[static_cast<std::size_t>(l)]->out_dim(); }
    // Neurons (activated units) of hidden layer l: its first neurons(l) units.
    Index neurons(Index l) const {
        return neuron_offsets_[static_cast<std::size_t>(l) + 1] -
               neuron_offsets_[static_cast<std::size_t>(l)];
    }
    Index num_neurons() const { return neuron_offsets_.back(); }
    // Index of neuron (l, 0) in the layer-major concatenation of all hidden units.
    Index neuron_offset(Index l) const { return neuron_offsets_[static_cast<std::size_t>(l)]; }
    const AffineMap& layer(Index l) const { return *layers_[static_cast<std::size_t>(l)]; }
    const Activation& activation(Index l) const {
        return activations_[static_cast<std::size_t>(l)];
    }
    Index num_layers() const { return static_cast<Index>(layers_.size()); }
    Index max_width() const;

    // Forward pass for n points (rows of x, n × input_dim). If pre_activations is not
    // null, hidden layer l's values are written to pre_activations[l] (n × hidden_size(l),
    // linear units included).
    void forward(const double* x, Index n, double* out,
                 const std::vector<double*>* pre_activations = nullptr) const;

private:
    std::vector<std::shared_ptr<const AffineMap>> layers_;
    std::vector<Activation> activations_;
    std::vector<Index> neuron_offsets_;
};

}  // namespace lrcore
