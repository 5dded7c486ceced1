#include "lrcore/network.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lrcore {

namespace {
std::size_t to_size(Index value) { return static_cast<std::size_t>(value); }
}  // namespace

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
            act.apply_row(row, row, width, hidden_size(l));
        }
        current.swap(next);
    }
}

std::vector<double> Network::norm_bounds(int num_threads, const InterruptPoll& poll) const {
    std::vector<double> bounds(layers_.size(), -1.0);
    // The largest layers last in the list: take them first so the threads finish together.
    parallel_for(
        num_layers(), num_threads,
        [&](Index task, Index, const StopFlag& stop) {
            stop.throw_if_requested();
            const Index l = num_layers() - 1 - task;
            bounds[to_size(l)] = layer(l).norm_bound();
        },
        poll, /*share_at_once=*/true);
    return bounds;
}

}  // namespace lrcore
