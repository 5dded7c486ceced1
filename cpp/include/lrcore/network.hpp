// A piecewise-linear network: affine maps with elementwise PWL activations between them.
#pragma once

#include <memory>
#include <vector>

#include "lrcore/activation.hpp"
#include "lrcore/affine.hpp"
#include "lrcore/blas.hpp"
#include "lrcore/parallel.hpp"

namespace lrcore {

// f = A_L ∘ σ_{L-1} ∘ A_{L-1} ∘ … ∘ σ_1 ∘ A_1: an activation after every affine map but
// the last. Hidden layer l (0-based) is the output of A_{l+1} before σ_{l+1}.
//
// A hidden layer may end in linear units: its last linear_units[l] outputs pass through σ
// unchanged, have no pattern bit and never cut a cell. They carry values that later layers
// add back (residual connections, concatenation): a graph of affine maps, activations and
// additions becomes a chain whose layers hold every live tensor. Its neurons are its
// first hidden_size(l) = layer_width(l) - linear_units[l] units. (The names are
// Python's: Network.hidden_sizes and Network.layer_widths.)
class Network {
public:
    Network(std::vector<std::shared_ptr<const AffineMap>> layers,
            std::vector<Activation> activations, std::vector<Index> linear_units = {});

    Index input_dim() const { return layers_.front()->in_dim(); }
    Index output_dim() const { return layers_.back()->out_dim(); }
    Index num_hidden_layers() const { return static_cast<Index>(activations_.size()); }
    // Width of hidden layer l: its neurons followed by its linear units.
    Index layer_width(Index l) const { return layers_[static_cast<std::size_t>(l)]->out_dim(); }
    // Neurons (activated units, with a pattern bit) of hidden layer l: its first
    // hidden_size(l) units.
    Index hidden_size(Index l) const {
        return neuron_offsets_[static_cast<std::size_t>(l) + 1] -
               neuron_offsets_[static_cast<std::size_t>(l)];
    }
    Index num_neurons() const { return neuron_offsets_.back(); }
    // Index of neuron (l, 0) in the layer-major concatenation of all neurons (the bit of
    // neuron (l, j) in a pattern is neuron_offset(l) + j).
    Index neuron_offset(Index l) const { return neuron_offsets_[static_cast<std::size_t>(l)]; }
    const AffineMap& layer(Index l) const { return *layers_[static_cast<std::size_t>(l)]; }
    const Activation& activation(Index l) const {
        return activations_[static_cast<std::size_t>(l)];
    }
    Index num_layers() const { return static_cast<Index>(layers_.size()); }

    // Forward pass for n points (rows of x, n × input_dim). If pre_activations is not
    // null, hidden layer l's values are written to pre_activations[l] (n × layer_width(l),
    // linear units included).
    void forward(const double* x, Index n, double* out,
                 const std::vector<double*>* pre_activations = nullptr) const;

    // Each layer's AffineMap::norm_bound() (-1 where it gives none), the layers shared
    // over up to num_threads threads: a convolution's bound through its symbol takes
    // seconds on layers of 512 channels, computed once per layer and cached by the map.
    // Polls for Ctrl-C between layers.
    std::vector<double> norm_bounds(int num_threads, const InterruptPoll& poll) const;

private:
    std::vector<std::shared_ptr<const AffineMap>> layers_;
    std::vector<Activation> activations_;
    std::vector<Index> neuron_offsets_;
};

}  // namespace lrcore
