#include "lrcore/network.hpp"

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

Network::Network(std::vector<std::shared_ptr<const AffineMap>> layers,
                 std::vector<Activation> activations, std::vector<Index> linear_units)
    : layers_(std::move(layers)), activations_(std::move(activations)) {
    if (layers_.empty()) throw std::invalid_argument("Network: needs at least one layer");
    if (activations_.size() + 1 != layers_.size())
        throw std::invalid_argument("Network: needs one activation per hidden layer");
    for (std::size_t l = 0; l + 1 < layers_.size(); ++l) {
        if (layers_[l]->out_dim() != layers_[l + 1]->in_dim())
            throw std::invalid_argument("Network: layer " + std::to_string(l + 1) +
                                        " input size does not match layer " + std::to_string(l) +
                                        " output size");
    }
    if (linear_units.empty()) linear_units.assign(activations_.size(), 0);
    if (linear_units.size() != activations_.size())
        throw std::invalid_argument("Network: needs one linear unit count per hidden layer");
    neuron_offsets_.push_back(0);
    for (std::size_t l = 0; l < activations_.size(); ++l) {
        const Index width = layers_[l]->out_dim();
        if (linear_units[l] < 0 || linear_units[l] > width)
            throw std::invalid_argument(
                "Network: hidden layer " + std::to_string(l) + " has " + std::to_string(width) +
                " units, so " + std::to_string(linear_units[l]) + " linear units are out of range");
        neuron_offsets_.push_back(neuron_offsets_.back() + width - linear_units[l]);
    }
}

Index Network::max_width() const {
    Index width = input_dim();
    for (const auto& layer : layers_) width = std::max(width, layer->out_dim());
    return width;
}

void Network::forward(const double* x, Index n, double* out,
                      const std::vector<double*>* pre_activations) const {
    std::vector<double> current(x, x + n * input_dim());
    std::vector<double> next;
    for (Index l = 0; l < num_layers(); ++l) {
        const AffineMap& map = layer(l);
        const bool last = l + 1 == num_layers();
        double* target = out;
        if (!last) {
            next.resize(to_size(n * map.out_dim()));
            target = next.data();
        }
        map.apply(current.data(), n, map.in_dim(), target, map.out_dim());
        if (last) break;
        if (pre_activations != nullptr)
            std::copy(next.begin(), next.end(), (*pre_activations)[to_size(l)]);
        const Activation act = activation(l);
        const Index width = map.out_dim();
        for (Index i = 0; i < n; ++i) {
            double* row = next.data() + i * width;
            act.apply_row(row, row, width, neurons(l));
        }
        current.swap(next);
    }
}

}  // namespace lrcore
