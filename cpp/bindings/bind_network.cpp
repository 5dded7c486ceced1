#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lrcore/network.hpp"
#include "pybind11.hpp"

namespace lrcore::bindings {

namespace {

Activation parse_activation(const std::string& name, double negative_slope, std::size_t layer) {
    if (name == "relu") return {ActivationKind::relu, 0.0};
    if (name == "leaky_relu") return {ActivationKind::leaky_relu, negative_slope};
    throw std::invalid_argument("activations[" + std::to_string(layer) +
                                "]: expected 'relu' or 'leaky_relu', got '" + name + "'");
}

using IndexArray = py::array_t<Index, py::array::c_style | py::array::forcecast>;

std::shared_ptr<const AffineMap> make_sparse(const py::tuple& csr, std::vector<double> bias,
                                             const std::string& name) {
    if (csr.size() != 5)
        throw std::invalid_argument(name +
                                    ": a sparse layer is (indptr, indices, values, out, in)");
    const auto indptr = csr[0].cast<IndexArray>();
    const auto indices = csr[1].cast<IndexArray>();
    const auto values = csr[2].cast<DoubleArray>();
    const auto out = csr[3].cast<Index>();
    const auto in = csr[4].cast<Index>();
    if (bias.empty()) bias.assign(static_cast<std::size_t>(std::max<Index>(out, 0)), 0.0);
    // Copied whole: SparseAffine checks that the sizes fit together.
    return std::make_shared<SparseAffine>(
        out, in, std::vector<Index>(indptr.data(), indptr.data() + indptr.size()),
        std::vector<Index>(indices.data(), indices.data() + indices.size()),
        std::vector<double>(values.data(), values.data() + values.size()), std::move(bias));
}

std::shared_ptr<const AffineMap> make_dense(const DoubleArray& dense, std::vector<double> bias,
                                            const std::string& name) {
    require_shape(dense, name, 2);
    const py::ssize_t out = dense.shape(0);
    const py::ssize_t in = dense.shape(1);
    if (bias.empty()) bias.assign(static_cast<std::size_t>(out), 0.0);
    return std::make_shared<DenseAffine>(
        out, in, std::vector<double>(dense.data(), dense.data() + out * in), std::move(bias));
}

// A part of a composite layer (no bias of its own): a dense array, a CSR tuple,
// ("conv", weight, geometry) or ("diag", scale).
std::shared_ptr<const AffineMap> make_part(const py::object& spec, const std::string& name) {
    if (!py::isinstance<py::tuple>(spec)) return make_dense(spec.cast<DoubleArray>(), {}, name);
    const auto items = spec.cast<py::tuple>();
    if (items.size() == 0 || !py::isinstance<py::str>(items[0]))
        return make_sparse(items, {}, name);
    const auto kind = items[0].cast<std::string>();
    if (kind == "diag" && items.size() == 2) {
        const auto scale = items[1].cast<DoubleArray>();
        require_shape(scale, name + " (diag scale)", 1);
        std::vector<double> values(scale.data(), scale.data() + scale.size());
        std::vector<double> zeros(values.size(), 0.0);
        return std::make_shared<DiagonalAffine>(std::move(values), std::move(zeros));
    }
    if (kind == "conv" && items.size() == 3) {
        const auto weight = items[1].cast<DoubleArray>();
        require_shape(weight, name + " (conv weight)", 4);
        const auto g = items[2].cast<std::vector<Index>>();
        if (g.size() != 15)
            throw std::invalid_argument(name + ": a convolution's geometry has 15 integers");
        ConvShape shape;
        shape.in_channels = g[0];
        shape.in_height = g[1];
        shape.in_width = g[2];
        shape.out_channels = g[3];
        shape.out_height = g[4];
        shape.out_width = g[5];
        shape.kernel_h = g[6];
        shape.kernel_w = g[7];
        shape.stride_h = g[8];
        shape.stride_w = g[9];
        shape.pad_h = g[10];
        shape.pad_w = g[11];
        shape.dilation_h = g[12];
        shape.dilation_w = g[13];
        shape.groups = g[14];
        return std::make_shared<ConvAffine>(
            shape, std::vector<double>(weight.data(), weight.data() + weight.size()),
            std::vector<double>(static_cast<std::size_t>(std::max<Index>(shape.out_channels, 0)),
                                0.0));
    }
    throw std::invalid_argument(name + ": expected ('diag', scale) or ('conv', weight, geometry)");
}

// One layer's affine map: a dense (out × in) array, a sparse one given as the tuple
// (indptr, indices, values, out_dim, in_dim) of its CSR form, or a composite one
// ("composite", out_dim, in_dim, [(in_offset, out_offset, part), ...]).
std::shared_ptr<const AffineMap> make_layer(const py::object& weight, const DoubleArray& bias,
                                            std::size_t l) {
    const std::string index = "[" + std::to_string(l) + "]";
    std::vector<double> values(bias.data(), bias.data() + bias.size());
    if (py::isinstance<py::tuple>(weight)) {
        const auto items = weight.cast<py::tuple>();
        if (items.size() == 4 && py::isinstance<py::str>(items[0]) &&
            items[0].cast<std::string>() == "composite") {
            require_shape(bias, "biases" + index, 1, items[1].cast<Index>());
            std::vector<CompositeAffine::Part> parts;
            for (const auto& item : items[3].cast<py::list>()) {
                const auto part = item.cast<py::tuple>();
                if (part.size() != 3)
                    throw std::invalid_argument("weights" + index +
                                                ": a part is (in_offset, out_offset, map)");
                parts.push_back({part[0].cast<Index>(), part[1].cast<Index>(),
                                 make_part(part[2], "weights" + index)});
            }
            return std::make_shared<CompositeAffine>(items[1].cast<Index>(), items[2].cast<Index>(),
                                                     std::move(parts), std::move(values));
        }
        return make_sparse(items, std::move(values), "weights" + index);
    }
    const auto dense = weight.cast<DoubleArray>();
    require_shape(dense, "weights" + index, 2);
    require_shape(bias, "biases" + index, 1, dense.shape(0));
    return make_dense(dense, std::move(values), "weights" + index);
}

std::shared_ptr<Network> make_network(const std::vector<py::object>& weights,
                                      const std::vector<DoubleArray>& biases,
                                      const std::vector<std::string>& activations,
                                      const std::vector<double>& negative_slopes,
                                      const std::vector<Index>& linear_units) {
    // The lists are read in step; Network checks the counts of layers, activations and
    // linear units, and their ranges.
    if (biases.size() != weights.size())
        throw std::invalid_argument("biases: expected one bias per layer");
    if (negative_slopes.size() != activations.size())
        throw std::invalid_argument("negative_slopes: expected one per activation");
    std::vector<std::shared_ptr<const AffineMap>> layers;
    for (std::size_t l = 0; l < weights.size(); ++l)
        layers.push_back(make_layer(weights[l], biases[l], l));
    std::vector<Activation> acts;
    for (std::size_t l = 0; l < activations.size(); ++l)
        acts.push_back(parse_activation(activations[l], negative_slopes[l], l));
    return std::make_shared<Network>(std::move(layers), std::move(acts), linear_units);
}

py::array_t<double> forward(const Network& net, const DoubleArray& x) {
    require_shape(x, "x", 2, -1, net.input_dim());
    const Index n = x.shape(0);
    py::array_t<double> out(
        {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(net.output_dim())});
    const double* in = x.data();
    double* target = out.mutable_data();
    {
        // Safe: the arrays are owned by this frame and the network is immutable.
        py::gil_scoped_release release;
        net.forward(in, n, target);
    }
    return out;
}

py::list pre_activations(const Network& net, const DoubleArray& x) {
    require_shape(x, "x", 2, -1, net.input_dim());
    const Index n = x.shape(0);
    std::vector<py::array_t<double>> arrays;
    std::vector<double*> targets;
    for (Index l = 0; l < net.num_hidden_layers(); ++l) {
        arrays.emplace_back(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n),
                                                     static_cast<py::ssize_t>(net.layer_width(l))});
        targets.push_back(arrays.back().mutable_data());
    }
    std::vector<double> out(static_cast<std::size_t>(n * net.output_dim()));
    const double* in = x.data();
    {
        // Safe: the buffers are owned by this frame and the network is immutable.
        py::gil_scoped_release release;
        net.forward(in, n, out.data(), &targets);
    }
    py::list result;
    for (auto& array : arrays) result.append(array);
    return result;
}

// Layer l's affine map (hidden layer l's values; l = num_hidden_layers: the output) at
// the rows of h, its input (the input x for l = 0, else hidden layer l - 1 activated),
// written to out (n × the layer's width, C order) when given, else to a new array.
void check_layer_index(const Network& net, Index l) {
    if (l < 0 || l >= net.num_layers())
        throw std::invalid_argument("layer: expected 0 <= layer < " +
                                    std::to_string(net.num_layers()) + ", got " +
                                    std::to_string(l));
}

// out[rows[i]] += sum of coef[e] W[:, cols[e]] over e in [offsets[i], offsets[i + 1]):
// a few columns of layer l's map per row (AffineMap::add_column; only where
// can_add_columns).
void add_columns(const Network& net, Index l, const IndexArray& rows, const IndexArray& offsets,
                 const IndexArray& cols, const DoubleArray& coef, py::array_t<double> out) {
    check_layer_index(net, l);
    const AffineMap& map = net.layer(l);
    if (!map.can_add_column())
        throw std::invalid_argument("layer: its map cannot add columns (can_add_columns)");
    const Index n = rows.size(), entries = cols.size();
    if (offsets.size() != n + 1 || coef.size() != entries)
        throw std::invalid_argument("offsets, coef: expected rows + 1 offsets, one coef per col");
    if (out.ndim() != 2 || out.shape(1) != map.out_dim() || !(out.flags() & py::array::c_style) ||
        !out.writeable())
        throw std::invalid_argument("out: expected a writeable C-ordered float64 array (rows, " +
                                    std::to_string(map.out_dim()) + ")");
    const Index* r = rows.data();
    const Index* o = offsets.data();
    const Index* c = cols.data();
    for (Index i = 0; i < n; ++i)
        if (r[i] < 0 || r[i] >= out.shape(0) || o[i] < 0 || o[i] > o[i + 1] || o[n] > entries)
            throw std::invalid_argument("rows, offsets: out of range");
    for (Index e = 0; e < entries; ++e)
        if (c[e] < 0 || c[e] >= map.in_dim()) throw std::invalid_argument("cols: out of range");
    const double* w = coef.data();
    double* target = out.mutable_data();
    const Index ld = map.out_dim();
    // Safe: the arrays are held by this frame and the network is immutable.
    py::gil_scoped_release release;
    for (Index i = 0; i < n; ++i)
        for (Index e = o[i]; e < o[i + 1]; ++e) map.add_column(c[e], w[e], target + r[i] * ld);
}

py::array_t<double> apply_layer(const Network& net, Index l, const DoubleArray& h,
                                std::optional<py::array_t<double>> out) {
    check_layer_index(net, l);
    const AffineMap& map = net.layer(l);
    require_shape(h, "h", 2, -1, map.in_dim());
    const Index n = h.shape(0);
    py::array_t<double> target_array;
    if (out.has_value()) {
        target_array = *out;
        if (target_array.ndim() != 2 || target_array.shape(0) != n ||
            target_array.shape(1) != map.out_dim() ||
            !(target_array.flags() & py::array::c_style) || !target_array.writeable())
            throw std::invalid_argument("out: expected a writeable C-ordered float64 array (" +
                                        std::to_string(n) + ", " + std::to_string(map.out_dim()) +
                                        ")");
    } else {
        target_array = py::array_t<double>(
            {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(map.out_dim())});
    }
    const double* in = h.data();
    double* target = target_array.mutable_data();
    {
        // Safe: the arrays are held by this frame and the network is immutable.
        py::gil_scoped_release release;
        map.apply(in, n, map.in_dim(), target, map.out_dim());
    }
    return target_array;
}

// One value per hidden layer: hidden_size (neurons) or layer_width.
std::vector<Index> per_layer(const Network& net, Index (Network::*value)(Index) const) {
    std::vector<Index> values;
    for (Index l = 0; l < net.num_hidden_layers(); ++l) values.push_back((net.*value)(l));
    return values;
}

}  // namespace

void bind_network(py::module_& m) {
    py::class_<Network, std::shared_ptr<Network>>(m, "Network")
        .def(py::init(&make_network), py::arg("weights"), py::arg("biases"), py::arg("activations"),
             py::arg("negative_slopes"), py::arg("linear_units"))
        .def_property_readonly("input_dim", &Network::input_dim)
        .def_property_readonly("output_dim", &Network::output_dim)
        .def_property_readonly("num_neurons", &Network::num_neurons)
        .def_property_readonly(
            "hidden_sizes",
            [](const Network& net) { return per_layer(net, &Network::hidden_size); })
        .def_property_readonly(
            "layer_widths",
            [](const Network& net) { return per_layer(net, &Network::layer_width); })
        .def("forward", &forward, py::arg("x"))
        .def("pre_activations", &pre_activations, py::arg("x"))
        .def("apply_layer", &apply_layer, py::arg("layer"), py::arg("h"),
             py::arg("out") = py::none())
        .def("can_add_columns",
             [](const Network& net, Index l) {
                 check_layer_index(net, l);
                 return net.layer(l).can_add_column();
             })
        .def("add_columns", &add_columns, py::arg("layer"), py::arg("rows"), py::arg("offsets"),
             py::arg("cols"), py::arg("coef"), py::arg("out"))
        .def(
            "norm_bounds",
            [](const Network& net, int num_threads) {
                // Safe without the GIL: the network is immutable (the bounds are cached
                // behind std::call_once).
                return call_interruptible(
                    [&](const InterruptPoll& poll) { return net.norm_bounds(num_threads, poll); });
            },
            py::arg("num_threads") = 0);
}

}  // namespace lrcore::bindings
