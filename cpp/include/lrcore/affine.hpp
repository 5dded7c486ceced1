// Affine maps y = W x + b applied to batches of points: dense (nn.Linear) and sparse
// (convolutions and pooling lowered to CSR matrices).
#pragma once

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
    AffineRow row(Index r, std::vector<double>& scratch_values,
                  std::vector<Index>& scratch_cols) const override;

private:
    Index out_, in_;
    std::vector<Index> indptr_, indices_;
    std::vector<double> values_, bias_, row_norms_, abs_bias_;
};

}  // namespace lrcore
