// The dense and sparse affine maps: construction (with the row norms the zero tolerance
// uses) and application to a batch of points.
#include "lrcore/affine.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lrcore {

namespace {
std::size_t to_size(Index value) { return static_cast<std::size_t>(value); }
}  // namespace

DenseAffine::DenseAffine(Index out_dim, Index in_dim, std::vector<double> weight,
                         std::vector<double> bias)
    : out_(out_dim), in_(in_dim), weight_(std::move(weight)), bias_(std::move(bias)) {
    if (out_ <= 0 || in_ <= 0)
        throw std::invalid_argument("DenseAffine: dimensions must be positive");
    if (weight_.size() != to_size(out_ * in_) || bias_.size() != to_size(out_))
        throw std::invalid_argument("DenseAffine: weight/bias sizes do not match dimensions");
    row_norms_.resize(to_size(out_));
    abs_bias_.resize(to_size(out_));
    for (Index j = 0; j < out_; ++j) {
        double sum = 0.0;
        for (Index k = 0; k < in_; ++k) {
            const double w = weight_[to_size(j * in_ + k)];
            sum += w * w;
        }
        row_norms_[to_size(j)] = std::sqrt(sum);
        abs_bias_[to_size(j)] = std::abs(bias_[to_size(j)]);
    }
}

void DenseAffine::apply(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    for (Index i = 0; i < n; ++i) std::copy(bias_.begin(), bias_.end(), y + i * ldy);
    gemm_nt(n, out_, in_, x, ldx, weight_.data(), in_, 1.0, y, ldy);
}

AffineRow DenseAffine::row(Index r, std::vector<double>& /*scratch_values*/,
                           std::vector<Index>& /*scratch_cols*/) const {
    return {weight_.data() + r * in_, nullptr, in_, bias_[to_size(r)]};
}

SparseAffine::SparseAffine(Index out_dim, Index in_dim, std::vector<Index> indptr,
                           std::vector<Index> indices, std::vector<double> values,
                           std::vector<double> bias)
    : out_(out_dim),
      in_(in_dim),
      indptr_(std::move(indptr)),
      indices_(std::move(indices)),
      values_(std::move(values)),
      bias_(std::move(bias)) {
    if (out_ <= 0 || in_ <= 0)
        throw std::invalid_argument("SparseAffine: dimensions must be positive");
    if (indptr_.size() != to_size(out_ + 1) || indptr_.front() != 0 ||
        indices_.size() != values_.size() || indptr_.back() != static_cast<Index>(values_.size()) ||
        bias_.size() != to_size(out_))
        throw std::invalid_argument("SparseAffine: inconsistent CSR arrays");
    for (Index r = 0; r < out_; ++r) {
        if (indptr_[to_size(r)] > indptr_[to_size(r + 1)])
            throw std::invalid_argument("SparseAffine: indptr must be non-decreasing");
    }
    for (const Index k : indices_) {
        if (k < 0 || k >= in_)
            throw std::invalid_argument("SparseAffine: column index out of range");
    }
    row_norms_.resize(to_size(out_));
    abs_bias_.resize(to_size(out_));
    for (Index r = 0; r < out_; ++r) {
        double sum = 0.0;
        for (Index e = indptr_[to_size(r)]; e < indptr_[to_size(r + 1)]; ++e)
            sum += values_[to_size(e)] * values_[to_size(e)];
        row_norms_[to_size(r)] = std::sqrt(sum);
        abs_bias_[to_size(r)] = std::abs(bias_[to_size(r)]);
    }
}

void SparseAffine::apply(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    // Point by point: the point's row stays in cache while every output row reads it.
    for (Index i = 0; i < n; ++i) {
        const double* xi = x + i * ldx;
        double* yi = y + i * ldy;
        for (Index r = 0; r < out_; ++r) {
            double sum = bias_[to_size(r)];
            for (Index e = indptr_[to_size(r)]; e < indptr_[to_size(r + 1)]; ++e)
                sum += values_[to_size(e)] * xi[indices_[to_size(e)]];
            yi[r] = sum;
        }
    }
}

AffineRow SparseAffine::row(Index r, std::vector<double>& /*scratch_values*/,
                            std::vector<Index>& /*scratch_cols*/) const {
    const Index begin = indptr_[to_size(r)];
    return {values_.data() + begin, indices_.data() + begin, indptr_[to_size(r + 1)] - begin,
            bias_[to_size(r)]};
}

}  // namespace lrcore
