// Affine maps y = W x + b applied to batches of points: dense (nn.Linear), sparse (CSR:
// pooling, selections), convolutions applied as convolutions (im2col + GEMM), diagonal
// maps, and sums of such maps over parts of the input (residual layers).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "lrcore/blas.hpp"

namespace lrcore {

// One row of an affine map: W[r, cols[i]] = values[i] for i < count (cols null: the row
// is dense, cols[i] = i), and b[r]. The certified sign decisions' slow path reads rows.
struct AffineRow {
    const double* values = nullptr;
    const Index* cols = nullptr;
    Index count = 0;
    double bias = 0.0;
};

// The columns of a map's W (the 1D subdivision adds columns to update a new vertex's
// values from its interval's ends, docs/design.md): dense, `values` is W transposed (in ×
// out, column j's out values contiguous); else column j's entries are rows/values[begin[j],
// begin[j + 1]). Not available (false) past kMaxDenseEntries entries (32 MB) for a dense
// map, kMaxSparseEntries (16 MB) for others: a map keeps them for its lifetime.
struct AffineColumns {
    static constexpr std::int64_t kMaxDenseEntries = std::int64_t{1} << 22;
    static constexpr std::int64_t kMaxSparseEntries = std::int64_t{1} << 20;
    bool available = false;
    bool dense = false;
    std::int64_t entries = 0;  // nonzeros of W (in * out when dense)
    std::vector<std::int64_t> begin, rows;
    std::vector<double> values;
    // Entries of column j.
    std::int64_t count(std::int64_t j, std::int64_t out) const {
        return dense ? out
                     : begin[static_cast<std::size_t>(j) + 1] - begin[static_cast<std::size_t>(j)];
    }
};

// An affine map y = W x + b applied to a batch of points stored as rows: DenseAffine or
// SparseAffine (convolutions and pooling, lowered to CSR), or a new kind of map behind the
// same interface.
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
    // Row r of the map, for the slow path of the certified sign decisions (evaluation in
    // double-double, cpp/src/certify.hpp). A map that builds its rows on the fly writes
    // them to the scratch vectors and points into them.
    virtual AffineRow row(Index r, std::vector<double>& scratch_values,
                          std::vector<Index>& scratch_cols) const = 0;
    // A rigorous upper bound on the operator norm ||W||_2 that the map's structure gives
    // (convolutions, diagonals, sums of parts), or -1 where it gives none: the certified
    // filter then bounds it from the rows (docs/numerics.md §3).
    virtual double norm_bound() const { return -1.0; }
    // The multiply-adds of applying the map to one point (a convolution counts the taps
    // that fall on padding too): the unit of the certified slow path's work budget
    // (docs/numerics.md §9).
    virtual double multiply_adds() const = 0;
    // W's columns, built on first use (thread-safe; from the rows unless the map knows
    // better), or not available where W has too many entries (AffineColumns).
    const AffineColumns& columns() const;
    // Sums of |W| and b that the certified filter's norms come from (filter_layers,
    // docs/numerics.md §3), built on first use (thread-safe) and kept: sum_j
    // row_norms()[j]^2, sum_j abs_bias()[j]^2, the largest row and column sums of |W|.
    struct AbsSums {
        double frob2 = 0.0, bias2 = 0.0, max_row = 0.0, max_column = 0.0;
    };
    const AbsSums& abs_sums() const;
    // y += coef W[:, col] (no bias): verify() updates a point's values from its
    // neighbours' with a few columns (docs/design.md §7). Only where can_add_column():
    // from columns() by default; dense, diagonal, convolution and composite maps read
    // their own entries, whatever their size.
    virtual bool can_add_column() const { return columns().available; }
    virtual void add_column(Index col, double coef, double* y) const;

protected:
    virtual void build_columns(AffineColumns& columns) const;

private:
    mutable std::once_flag columns_once_;
    mutable AffineColumns columns_;
    mutable std::once_flag sums_once_;
    mutable AbsSums sums_;
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
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;
    double multiply_adds() const override {
        return static_cast<double>(out_) * static_cast<double>(in_);
    }
    bool can_add_column() const override { return true; }
    void add_column(Index col, double coef, double* y) const override;
    const std::vector<double>& weight() const { return weight_; }
    const std::vector<double>& bias() const { return bias_; }

private:
    Index out_, in_;
    std::vector<double> weight_, bias_, row_norms_, abs_bias_;
    void build_columns(AffineColumns& columns) const override;
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
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;
    double multiply_adds() const override { return static_cast<double>(indices_.size()); }

private:
    Index out_, in_;
    std::vector<Index> indptr_, indices_;
    std::vector<double> values_, bias_, row_norms_, abs_bias_;
};

// The geometry of a 2-d convolution on C-order (channel, row, column) features; a 1-d
// convolution is one with in_height = out_height = kernel_h = 1. Zero padding: pad_h rows
// before the first row and whatever the output size needs after the last (so torch's
// asymmetric "same" padding fits).
struct ConvShape {
    Index in_channels = 0, in_height = 0, in_width = 0;
    Index out_channels = 0, out_height = 0, out_width = 0;
    Index kernel_h = 1, kernel_w = 1;
    Index stride_h = 1, stride_w = 1;
    Index pad_h = 0, pad_w = 0;
    Index dilation_h = 1, dilation_w = 1;
    Index groups = 1;
};

// A convolution (batch-norm folded into weight and bias by the caller) applied as one: per
// group, the kernel rows times im2col columns of a block of points (one DGEMM), the
// im2col buffer bounded (kIm2colBytes), so no matrix of the whole convolution is formed.
class ConvAffine final : public AffineMap {
public:
    // weight: (out_channels × in_channels / groups × kernel_h × kernel_w), torch's layout;
    // bias: one per output channel.
    ConvAffine(const ConvShape& shape, std::vector<double> weight, std::vector<double> bias);
    Index in_dim() const override { return in_; }
    Index out_dim() const override { return out_; }
    void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const override;
    // Exact per output unit: the kernel taps that fall on padding do not count.
    const std::vector<double>& row_norms() const override { return row_norms_; }
    const std::vector<double>& abs_bias() const override { return abs_bias_; }
    // The taps that fall inside the input (C-order (channel, row, column) columns).
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;
    const ConvShape& shape() const { return shape_; }
    // (out_channels × in_channels / groups × kernel_h × kernel_w) and one per channel.
    const std::vector<double>& weight() const { return weight_; }
    const std::vector<double>& bias() const { return bias_; }
    // ||W||_2 <= ||T||_2, T the convolution on the infinite grid (padding and stride only
    // restrict it); ||T||_2^2 <= the largest absolute row sum of T^T T's kernel.
    // Also <= max over the frequencies of a periodic grid of ||K^(omega)||_2 (the symbol),
    // each bounded through its Gram matrix (docs/numerics.md §3). Computed on the first
    // call (thread-safe): seconds on layers of 512 channels, which only certified calls
    // need.
    double norm_bound() const override;
    // The two bounds separately (the symbol's: -1 where skipped), for tests.
    double spatial_norm_bound() const { return conv_norm_bound(); }
    double frequency_norm_bound() const;
    double multiply_adds() const override {
        return static_cast<double>(out_) * static_cast<double>(shape_.in_channels / shape_.groups *
                                                               shape_.kernel_h * shape_.kernel_w);
    }
    bool can_add_column() const override { return true; }
    // Input unit col = (channel, y, x) reaches the outputs (o, oy, ox) of its group with
    // oy stride + ky dilation - pad = y (likewise x): out channels per group x taps.
    void add_column(Index col, double coef, double* y) const override;

    // Bytes of im2col columns one block of points holds at most (more only when a single
    // point's columns need more).
    static constexpr Index kIm2colBytes = Index{8} << 20;
    // Convolutions with at most this many (position, tap) pairs per group keep a table of
    // the input entry each one reads, and gather a point's im2col rows in one pass.
    static constexpr Index kGatherEntries = Index{1} << 20;

    // Threads one call of apply may split its points over (1 by default). A call of
    // count_1d with fewer tasks than threads (one long path through a CNN) lends its idle
    // threads here for its duration (ConvThreads); each point's values are computed the
    // same way whatever the split, so results do not change.
    static void set_threads(int num_threads);
    static int threads();

private:
    void apply_block(const double* x, Index n, Index ldx, double* y, Index ldy) const;
    void im2col(const double* x, Index group, double* cols, Index ldcols) const;
    // One point's im2col matrix transposed ((position, tap) row-major) for one group.
    void gather(const double* x, Index group, double* rows) const;
    double conv_norm_bound() const;

    ConvShape shape_;
    Index in_, out_;
    std::vector<double> weight_, bias_, row_norms_, abs_bias_;
    // Per (position, tap) of group 0: the input entry read (0 where the tap falls on
    // padding) and the (position, tap) pairs on padding; empty above kGatherEntries.
    std::vector<std::int32_t> gather_, padding_;
    mutable std::once_flag norm_once_;
    mutable double norm_bound_ = -1.0;
};

// While alive, ConvAffine::apply may split its points over `num_threads` threads.
class ConvThreads {
public:
    explicit ConvThreads(int num_threads) : active_(num_threads > 1) {
        if (active_) ConvAffine::set_threads(num_threads);
    }
    ~ConvThreads() {
        if (active_) ConvAffine::set_threads(1);
    }
    ConvThreads(const ConvThreads&) = delete;
    ConvThreads& operator=(const ConvThreads&) = delete;

private:
    bool active_;
};

// y = scale ⊙ x + b: values carried unchanged (linear units, identity shortcuts) or scaled.
class DiagonalAffine final : public AffineMap {
public:
    DiagonalAffine(std::vector<double> scale, std::vector<double> bias);
    Index in_dim() const override { return static_cast<Index>(scale_.size()); }
    Index out_dim() const override { return static_cast<Index>(scale_.size()); }
    void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const override;
    const std::vector<double>& row_norms() const override { return row_norms_; }
    const std::vector<double>& abs_bias() const override { return abs_bias_; }
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;
    double norm_bound() const override { return norm_bound_; }  // max |scale|
    double multiply_adds() const override { return static_cast<double>(scale_.size()); }
    bool can_add_column() const override { return true; }
    void add_column(Index col, double coef, double* y) const override {
        y[col] += coef * scale_[static_cast<std::size_t>(col)];
    }
    const std::vector<double>& scale() const { return scale_; }
    const std::vector<double>& bias() const { return bias_; }

private:
    std::vector<double> scale_, bias_, row_norms_, abs_bias_;
    double norm_bound_ = 0.0;
};

// A layer made of parts: y = b + Σ_t map_t(x[in_offset_t : in_offset_t + in_dim_t]) added
// into y[out_offset_t : out_offset_t + out_dim_t]. A residual layer is [conv(h) + x]
// next to the carried values. Parts whose outputs overlap must read disjoint inputs, so a
// row's norm is the root of the sum of its parts' squared norms (exact).
class CompositeAffine final : public AffineMap {
public:
    struct Part {
        Index in_offset = 0, out_offset = 0;
        std::shared_ptr<const AffineMap> map;
    };
    // bias: out_dim values, added to the parts' own biases.
    CompositeAffine(Index out_dim, Index in_dim, std::vector<Part> parts, std::vector<double> bias);
    Index in_dim() const override { return in_; }
    Index out_dim() const override { return out_; }
    void apply(const double* x, Index n, Index ldx, double* y, Index ldy) const override;
    const std::vector<double>& row_norms() const override { return row_norms_; }
    const std::vector<double>& abs_bias() const override { return abs_bias_; }
    // The parts' rows, their columns shifted to the layer's input; the bias is the total.
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;
    // sqrt(R C) (a Schur test on the parts' norms n_t): R the largest sum of n_t over the
    // parts writing one output, C over the parts reading one input.
    double norm_bound() const override;  // computed on the first call (thread-safe)
    double multiply_adds() const override {
        double sum = 0.0;
        for (const Part& part : parts_) sum += part.map->multiply_adds();
        return sum;
    }
    bool can_add_column() const override;  // every part can
    void add_column(Index col, double coef, double* y) const override;
    const std::vector<Part>& parts() const { return parts_; }
    // b plus the parts' own biases: the layer's bias.
    const std::vector<double>& total_bias() const { return total_bias_; }

private:
    Index out_, in_;
    mutable std::once_flag norm_once_;
    mutable double norm_bound_ = -1.0;
    double schur_bound() const;
    double schur_test(const std::vector<double>& norms) const;
    std::vector<Part> parts_;
    std::vector<bool> adds_;                          // part t adds to rows an earlier part wrote
    std::vector<std::pair<Index, Index>> uncovered_;  // output ranges no part writes
    std::vector<double> bias_, row_norms_, abs_bias_, total_bias_;
};

}  // namespace lrcore
