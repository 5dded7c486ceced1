// The affine maps (dense, sparse, convolution, diagonal, composite): construction (with the
// row norms the zero tolerance uses) and application to a batch of points.
#include "lrcore/affine.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "memory.hpp"

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

const AffineColumns& AffineMap::columns() const {
    std::call_once(columns_once_, [this] { build_columns(columns_); });
    return columns_;
}

const AffineMap::AbsSums& AffineMap::abs_sums() const {
    std::call_once(sums_once_, [this] {
        AbsSums& sums = sums_;
        std::vector<double> columns(to_size(in_dim()), 0.0);
        std::vector<double> scratch_values;
        std::vector<Index> scratch_cols;
        for (Index j = 0; j < out_dim(); ++j) {
            sums.frob2 += row_norms()[to_size(j)] * row_norms()[to_size(j)];
            sums.bias2 += abs_bias()[to_size(j)] * abs_bias()[to_size(j)];
            const AffineRow row = this->row(j, scratch_values, scratch_cols);
            double sum = 0.0;
            for (Index i = 0; i < row.count; ++i) {
                sum += std::abs(row.values[i]);
                columns[to_size(row.cols != nullptr ? row.cols[i] : i)] += std::abs(row.values[i]);
            }
            sums.max_row = std::max(sums.max_row, sum);
        }
        sums.max_column = *std::max_element(columns.begin(), columns.end());
    });
    return sums_;
}

// From the rows: counted first (stopping past the cap), then placed column by column.
void AffineMap::build_columns(AffineColumns& columns) const {
    const Index in = in_dim(), out = out_dim();
    std::vector<double> scratch_values;
    std::vector<Index> scratch_cols;
    std::vector<Index> count(to_size(in) + 1, 0);
    Index entries = 0;
    for (Index r = 0; r < out; ++r) {
        const AffineRow row = this->row(r, scratch_values, scratch_cols);
        for (Index i = 0; i < row.count; ++i) {
            if (row.values[i] == 0.0) continue;
            ++count[to_size(row.cols != nullptr ? row.cols[i] : i) + 1];
            if (++entries > AffineColumns::kMaxSparseEntries) return;
        }
    }
    for (Index j = 0; j < in; ++j) count[to_size(j) + 1] += count[to_size(j)];
    columns.begin = count;
    columns.rows.resize(to_size(entries));
    columns.values.resize(to_size(entries));
    for (Index r = 0; r < out; ++r) {
        const AffineRow row = this->row(r, scratch_values, scratch_cols);
        for (Index i = 0; i < row.count; ++i) {
            if (row.values[i] == 0.0) continue;
            const Index at = count[to_size(row.cols != nullptr ? row.cols[i] : i)]++;
            columns.rows[to_size(at)] = r;
            columns.values[to_size(at)] = row.values[i];
        }
    }
    columns.entries = entries;
    columns.available = true;
}

void AffineMap::add_column(Index col, double coef, double* y) const {
    const AffineColumns& c = columns();
    if (c.dense) {
        const Index out = out_dim();
        for (Index r = 0; r < out; ++r) y[r] += coef * c.values[to_size(col * out + r)];
        return;
    }
    for (Index e = c.begin[to_size(col)]; e < c.begin[to_size(col) + 1]; ++e)
        y[c.rows[to_size(e)]] += coef * c.values[to_size(e)];
}

void DenseAffine::add_column(Index col, double coef, double* y) const {
    for (Index r = 0; r < out_; ++r) y[r] += coef * weight_[to_size(r * in_ + col)];
}

void DenseAffine::build_columns(AffineColumns& columns) const {
    if (in_ * out_ > AffineColumns::kMaxDenseEntries) return;
    columns.values.resize(to_size(in_ * out_));
    for (Index r = 0; r < out_; ++r)
        for (Index c = 0; c < in_; ++c)
            columns.values[to_size(c * out_ + r)] = weight_[to_size(r * in_ + c)];
    columns.dense = true;
    columns.entries = in_ * out_;
    columns.available = true;
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

namespace lrcore {

namespace {

void check_positive(Index value, const char* what) {
    if (value <= 0)
        throw std::invalid_argument(std::string("ConvAffine: ") + what + " must be positive");
}

// Output positions o (0 <= o < out) whose input position o * stride - pad + tap * dilation
// lies inside [0, size): [first, last).
std::pair<Index, Index> valid_outputs(Index out, Index size, Index stride, Index pad, Index tap,
                                      Index dilation) {
    const Index shift = tap * dilation - pad;  // input = o * stride + shift
    Index first = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
    Index last = size - shift <= 0 ? 0 : (size - shift + stride - 1) / stride;
    first = std::min(first, out);
    last = std::clamp(last, first, out);
    return {first, last};
}

}  // namespace

ConvAffine::ConvAffine(const ConvShape& shape, std::vector<double> weight, std::vector<double> bias)
    : shape_(shape), in_(0), out_(0), weight_(std::move(weight)), bias_(std::move(bias)) {
    const ConvShape& s = shape_;
    const std::pair<Index, const char*> positive[] = {{s.in_channels, "in_channels"},
                                                      {s.in_height, "in_height"},
                                                      {s.in_width, "in_width"},
                                                      {s.out_channels, "out_channels"},
                                                      {s.out_height, "out_height"},
                                                      {s.out_width, "out_width"},
                                                      {s.kernel_h, "kernel_h"},
                                                      {s.kernel_w, "kernel_w"},
                                                      {s.stride_h, "stride_h"},
                                                      {s.stride_w, "stride_w"},
                                                      {s.dilation_h, "dilation_h"},
                                                      {s.dilation_w, "dilation_w"},
                                                      {s.groups, "groups"}};
    for (const auto& [value, what] : positive) check_positive(value, what);
    if (s.pad_h < 0 || s.pad_w < 0) throw std::invalid_argument("ConvAffine: padding must be >= 0");
    if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0)
        throw std::invalid_argument("ConvAffine: groups must divide both channel counts");
    const Index taps = s.kernel_h * s.kernel_w;
    if (weight_.size() != to_size(s.out_channels * (s.in_channels / s.groups) * taps) ||
        bias_.size() != to_size(s.out_channels))
        throw std::invalid_argument("ConvAffine: weight/bias sizes do not match the shape");
    in_ = s.in_channels * s.in_height * s.in_width;
    const Index positions = s.out_height * s.out_width;
    out_ = s.out_channels * positions;
    // Squared norms of each (output channel, tap) over the input channels of its group,
    // then per output position the sum over the taps that land inside the input.
    const Index cg = s.in_channels / s.groups;
    std::vector<double> tap_sq(to_size(s.out_channels * taps), 0.0);
    for (Index o = 0; o < s.out_channels; ++o)
        for (Index c = 0; c < cg; ++c)
            for (Index t = 0; t < taps; ++t) {
                const double w = weight_[to_size((o * cg + c) * taps + t)];
                tap_sq[to_size(o * taps + t)] += w * w;
            }
    row_norms_.assign(to_size(out_), 0.0);
    abs_bias_.resize(to_size(out_));
    std::vector<double> sums(to_size(positions));
    for (Index o = 0; o < s.out_channels; ++o) {
        std::fill(sums.begin(), sums.end(), 0.0);
        for (Index ky = 0; ky < s.kernel_h; ++ky) {
            const auto [y0, y1] =
                valid_outputs(s.out_height, s.in_height, s.stride_h, s.pad_h, ky, s.dilation_h);
            for (Index kx = 0; kx < s.kernel_w; ++kx) {
                const auto [x0, x1] =
                    valid_outputs(s.out_width, s.in_width, s.stride_w, s.pad_w, kx, s.dilation_w);
                const double sq = tap_sq[to_size(o * taps + ky * s.kernel_w + kx)];
                for (Index oy = y0; oy < y1; ++oy)
                    for (Index ox = x0; ox < x1; ++ox) sums[to_size(oy * s.out_width + ox)] += sq;
            }
        }
        for (Index p = 0; p < positions; ++p) {
            row_norms_[to_size(o * positions + p)] = std::sqrt(sums[to_size(p)]);
            abs_bias_[to_size(o * positions + p)] = std::abs(bias_[to_size(o)]);
        }
    }
    // The gather table: row p * depth + k of a point's transposed im2col matrix reads
    // input entry gather_[p * depth + k] of its group's channels.
    const Index depth = cg * taps;
    if (positions * depth <= kGatherEntries && in_ <= Index{INT32_MAX}) {
        const Index plane = s.in_height * s.in_width;
        gather_.assign(to_size(positions * depth), 0);
        for (Index oy = 0; oy < s.out_height; ++oy)
            for (Index ox = 0; ox < s.out_width; ++ox) {
                const Index p = oy * s.out_width + ox;
                for (Index c = 0; c < cg; ++c)
                    for (Index ky = 0; ky < s.kernel_h; ++ky)
                        for (Index kx = 0; kx < s.kernel_w; ++kx) {
                            const Index k = (c * s.kernel_h + ky) * s.kernel_w + kx;
                            const Index iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
                            const Index ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
                            const auto entry = static_cast<std::int32_t>(p * depth + k);
                            if (iy < 0 || iy >= s.in_height || ix < 0 || ix >= s.in_width)
                                padding_.push_back(entry);
                            else
                                gather_[to_size(entry)] =
                                    static_cast<std::int32_t>(c * plane + iy * s.in_width + ix);
                        }
            }
    }
}

// The kernel of T^T T (T: the convolution on the infinite grid, per group): A[c, c2, delta]
// = sum_o sum_q K[o, c, q] K[o, c2, q + delta] over tap offsets delta; ||T||_2^2 =
// ||T^T T||_2 <= max_c sum_{c2, delta} |A[c, c2, delta]| (a symmetric operator: its l1
// and l-infinity norms agree). Each A is a float sum of m = (out channels per group) *
// taps products (GEMMs over the tap pairs), off by at most gamma_m * sum |products|,
// added to the bound. Skipped (-1) where it would cost more than 2^30 multiply-adds.
double ConvAffine::conv_norm_bound() const {
    const ConvShape& s = shape_;
    const Index cg = s.in_channels / s.groups, og = s.out_channels / s.groups;
    const Index taps = s.kernel_h * s.kernel_w;
    const Index dh = 2 * s.kernel_h - 1, dw = 2 * s.kernel_w - 1;
    if (static_cast<double>(s.groups) * static_cast<double>(og) * static_cast<double>(taps) *
            static_cast<double>(taps) * static_cast<double>(cg) * static_cast<double>(cg) >
        0x1p30)
        return -1.0;
    const double u = 0x1p-53;
    const double m = static_cast<double>(og * taps) + 2.0;
    const double gamma = m * u / (1.0 - m * u);
    const Index deltas = dh * dw, block = cg * cg;
    double result = 0.0;  // max over groups of the bound on ||G_g||_2
    // The group's kernel by tap, transposed (kt[q]: cg x og), and its magnitudes; A and the
    // sums of |products| b by offset (a[delta]: cg x cg), each a sum of GEMMs
    // K_q1^T K_q2 over the tap pairs with q2 - q1 = delta.
    // The kernel scaled by 2^-k (k = ilogb of its largest weight; exact, and the norm is
    // homogeneous): no value overflows, and underflow is far below every value that
    // matters (each of the fewer than 2^60 operations errs by at most 2^-1074 there, in all
    // less than 2^-1000, added both to the squared bound and, for the scaled weights that
    // underflow, to the norm).
    double w_max = 0.0;
    for (const double w : weight_) w_max = std::max(w_max, std::abs(w));
    if (w_max == 0.0) return 0.0;
    if (!std::isfinite(w_max)) return -1.0;
    const int scale_exp = std::ilogb(w_max);
    if (scale_exp < -900 || scale_exp > 900) return -1.0;
    const double down = std::ldexp(1.0, -scale_exp), up = std::ldexp(1.0, scale_exp);
    constexpr double kUnderflow = 0x1p-1000;
    std::vector<double> kt(to_size(taps * cg * og)), kabs(kt.size()), a(to_size(deltas * block)),
        b(a.size());
    for (Index g = 0; g < s.groups; ++g) {
        for (Index o = 0; o < og; ++o)
            for (Index c = 0; c < cg; ++c)
                for (Index q = 0; q < taps; ++q) {
                    const double w = weight_[to_size(((g * og + o) * cg + c) * taps + q)] * down;
                    kt[to_size((q * cg + c) * og + o)] = w;
                    kabs[to_size((q * cg + c) * og + o)] = std::abs(w);
                }
        std::fill(a.begin(), a.end(), 0.0);
        std::fill(b.begin(), b.end(), 0.0);
        for (Index q1 = 0; q1 < taps; ++q1)
            for (Index q2 = 0; q2 < taps; ++q2) {
                const Index dy = q2 / s.kernel_w - q1 / s.kernel_w + s.kernel_h - 1;
                const Index dx = q2 % s.kernel_w - q1 % s.kernel_w + s.kernel_w - 1;
                const Index delta = dy * dw + dx;
                gemm_nt(cg, cg, og, kt.data() + q1 * cg * og, og, kt.data() + q2 * cg * og, og, 1.0,
                        a.data() + delta * block, cg);
                gemm_nt(cg, cg, og, kabs.data() + q1 * cg * og, og, kabs.data() + q2 * cg * og, og,
                        1.0, b.data() + delta * block, cg);
            }
        // Each A entry is a float sum of at most og * taps products (any order), off by
        // at most gamma times the sum of their magnitudes, which b holds up to a relative
        // gamma of its own (a sum of nonnegative terms): inside the factor on err.
        double a_inf = 0.0, eps = 0.0;  // ||A~||_inf and ||A - A~||_inf (bounds)
        double largest = 0.0;           // ||G_g||_inf >= ||G_g||_2
        for (Index c = 0; c < cg; ++c) {
            double sum = 0.0, err = 0.0;
            for (Index delta = 0; delta < deltas; ++delta) {
                const std::size_t row = to_size(delta * block + c * cg);
                for (Index c2 = 0; c2 < cg; ++c2) {
                    sum += std::abs(a[row + to_size(c2)]);
                    err += b[row + to_size(c2)];
                }
            }
            err *= gamma * (1.0 + 0x1p-20);
            a_inf = std::max(a_inf, sum);
            eps = std::max(eps, err);
            largest = std::max(largest, sum + err);
        }
        // Tighter, where affordable: ||G||_2 = ||G^2||_2^(1/2) <= ||G^2||_inf^(1/2) (G =
        // T^T T symmetric), G = A~ + D with ||D||_inf <= eps, so ||G^2||_inf <= ||A~^2||_inf
        // + 2 ||A~||_inf eps + eps^2; A~^2's kernel B (A~ composed with itself: B[e] = sum
        // of A~[d1] A~[d2] over d1 + d2 = e, by GEMMs) is computed in float, each entry a
        // sum of at most k = cg (2 kh - 1)(2 kw - 1) products, off by gamma_k times their
        // magnitudes, whose row sums are at most ||A~||_inf^2.
        const double d = static_cast<double>(deltas);
        if (static_cast<double>(cg) * static_cast<double>(cg) * static_cast<double>(cg) * d * d >
            0x1p28) {
            result = std::max(result, largest);
            continue;
        }
        const Index eh = 2 * dh - 1, ew = 2 * dw - 1;
        std::vector<double> bb(to_size(eh * ew * block), 0.0);
        for (Index d1 = 0; d1 < deltas; ++d1)
            for (Index d2 = 0; d2 < deltas; ++d2) {
                const Index e = (d1 / dw + d2 / dw) * ew + d1 % dw + d2 % dw;
                gemm_nn(cg, cg, cg, a.data() + d1 * block, cg, a.data() + d2 * block, cg, 1.0,
                        bb.data() + e * block, cg);
            }
        const double k = static_cast<double>(cg * dh * dw) + 2.0;
        const double gamma_k = k * u / (1.0 - k * u);
        double b_inf = 0.0;
        for (Index c = 0; c < cg; ++c) {
            double sum = 0.0;
            for (Index e = 0; e < eh * ew; ++e)
                for (Index c2 = 0; c2 < cg; ++c2)
                    sum += std::abs(bb[to_size(e * block + c * cg + c2)]);
            b_inf = std::max(b_inf, sum);
        }
        const double square =
            (b_inf + gamma_k * a_inf * a_inf + 2.0 * a_inf * eps + eps * eps) * (1.0 + 0x1p-20);
        result = std::max(result, std::min(largest, std::sqrt(square) * (1.0 + 0x1p-20)));
    }
    // The row sums' own rounding (fewer than 2^31 terms) is inside the factor.
    return (std::sqrt(result + kUnderflow) * (1.0 + 0x1p-20) + kUnderflow) * up;
}

double ConvAffine::norm_bound() const {
    std::call_once(norm_once_, [this] {
        const double spatial = conv_norm_bound();
        const double symbol = frequency_norm_bound();
        norm_bound_ = spatial < 0.0 ? symbol : (symbol < 0.0 ? spatial : std::min(spatial, symbol));
    });
    return norm_bound_;
}

// ||W||_2 through the convolution's symbol (docs/numerics.md §3). W = S T E: E embeds the
// H x W input grid into Z^2, T is the stride-1 convolution on Z^2, S selects the outputs
// (stride, output size). T E x is supported on a box of N = H + span - 1 rows (span =
// dilation (k - 1) + 1; likewise columns), and on that box it equals the periodic
// convolution C_N on Z_N^2 of x placed in the grid (no index wraps onto the input), so
// ||W||_2 <= ||C_N||_2 = max over the N_h N_w frequencies of ||K^(omega)||_2, K^(omega) =
// sum_q K_q exp(-i omega . q) (the unitary DFT block-diagonalises C_N; K^(-omega) is the
// conjugate of K^(omega), so half the frequencies suffice; groups are diagonal blocks).
// Each ||K^||_2: the computed M~ differs from K^ entrywise by at most tau sum_q |K_q|
// (the phasors' error delta, generous for libm's cos and sin of a rounded angle, and the
// sum's rounding), so ||K^ - M~||_2 <= that matrix's Frobenius norm; ||M~||_2^2 =
// ||M~^H M~||_2 <= its largest absolute row sum (Hermitian), the Gram matrix's lower
// triangle computed by one complex Hermitian rank-k update (zherk: half the products of
// two real GEMMs for its real and imaginary parts), whose rounding is at most gamma times
// the products' magnitudes, summed per row in O(channels^2) (the entries' moduli, each
// off by at most both parts' errors). -1 where it would cost more than 2^35
// multiply-adds.
double ConvAffine::frequency_norm_bound() const {
    const ConvShape& s = shape_;
    const Index cg = s.in_channels / s.groups, og = s.out_channels / s.groups;
    const Index taps = s.kernel_h * s.kernel_w;
    const Index nh = s.in_height + s.dilation_h * (s.kernel_h - 1);
    const Index nw = s.in_width + s.dilation_w * (s.kernel_w - 1);
    // Gram matrices of the smaller side: M (og x cg) or its transpose, same norm.
    const Index small = std::min(cg, og), inner = std::max(cg, og);
    const bool by_input = cg <= og;  // the Gram matrix's rows: input channels
    const double freqs = static_cast<double>(nh) * static_cast<double>(nw) / 2.0 + 1.0;
    if (static_cast<double>(s.groups) * freqs * 4.0 * static_cast<double>(small) *
            static_cast<double>(small) * static_cast<double>(inner) >
        0x1p35)
        return -1.0;
    const double u = 0x1p-53;
    auto gamma = [u](double n) { return n * u / (1.0 - n * u); };
    constexpr double kPhasorError = 0x1p-40;  // |fl(cos(fl(theta))) - cos(theta)|, sin too
    const double tau = 2.0 * (kPhasorError + gamma(static_cast<double>(taps) + 1.0));
    const double gram_gamma = gamma(2.0 * static_cast<double>(inner) + 2.0);
    constexpr double kTwoPi = 6.283185307179586;
    constexpr double kUnderflow = 0x1p-1000;
    // The frequencies kept (one of each conjugate pair), taken a chunk at a time: the
    // symbols of a chunk are one GEMM, phases (2 per frequency x taps) times the group's
    // kernel (og cg x taps), its rows the real and imaginary parts of M (og x cg).
    std::vector<Index> kept;
    for (Index fy = 0; fy < nh; ++fy)
        for (Index fx = 0; fx < nw; ++fx) {
            const Index neg = ((nh - fy) % nh) * nw + (nw - fx) % nw;
            if (neg >= fy * nw + fx) kept.push_back(fy * nw + fx);  // else its conjugate's
        }
    const Index entries = og * cg, num_kept = static_cast<Index>(kept.size());
    const Index chunk = std::clamp<Index>((Index{1} << 21) / (2 * entries), 1, num_kept);
    // The symbols (16 MB for a 512-channel layer) are written before they are read: not
    // zeroed first.
    const std::unique_ptr<double[]> symbols(new double[to_size(2 * chunk * entries)]);
    // Wide layers take the Gram matrix in single precision (cherk, about twice zherk's
    // rate), its rounding bounded with u32 = 2^-24: ResNet-18's 512-channel layers.
    const bool single =
        static_cast<double>(small) * static_cast<double>(small) * static_cast<double>(inner) >=
            0x1p15 &&
        inner < (Index{1} << 20);
    const double gram_gamma32 = (2.0 * static_cast<double>(inner) + 2.0) * 0x1p-24 /
                                (1.0 - (2.0 * static_cast<double>(inner) + 2.0) * 0x1p-24);
    // The symbol and its Gram matrix in the precision used (the other pair stays empty).
    const std::size_t m_size = to_size(2 * entries), gram_size = to_size(2 * small * small);
    std::vector<double> m(single ? 0 : m_size), gram(single ? 0 : gram_size);
    std::vector<float> m32(single ? m_size : 0), gram32(single ? gram_size : 0);
    std::vector<double> phases(to_size(2 * chunk * taps)), magnitude(to_size(entries)),
        row_sum(to_size(small)), err(to_size(small)), column(to_size(inner)),
        modulus(to_size(small));
    double result = 0.0;
    for (Index g = 0; g < s.groups; ++g) {
        const double* kernel = weight_.data() + g * entries * taps;
        // Everything below is computed for the scaled kernel 2^-k K (k = ilogb of the
        // largest sum_q |K_q|: an exact scaling, ||W||_2 is homogeneous), so no value
        // overflows and underflow (below 2^-1022, or 2^-126 in single precision) is far
        // below every value that matters: each of the fewer than 2^60 operations errs by
        // at most 2^-1074 there, in all less than 2^-1000 (`kUnderflow`, added).
        double abs_max = 0.0;
        for (Index e = 0; e < entries; ++e) {
            double sum = 0.0;
            for (Index q = 0; q < taps; ++q) sum += std::abs(kernel[e * taps + q]);
            abs_max = std::max(abs_max, sum);
        }
        if (abs_max == 0.0) continue;  // a zero kernel: norm 0
        if (!std::isfinite(abs_max)) return -1.0;
        const int k = std::ilogb(abs_max);
        if (k < -900 || k > 900) return -1.0;  // beyond the scaling's range: no bound
        const double down = std::ldexp(1.0, -k), up = std::ldexp(1.0, k);
        // ||E||_F / tau: the Frobenius norm of 2^-k sum_q |K_q| over the group's (o, c).
        double abs_frob = 0.0;
        for (Index e = 0; e < entries; ++e) {
            double sum = 0.0;
            for (Index q = 0; q < taps; ++q) sum += std::abs(kernel[e * taps + q]);
            abs_frob += (sum * down) * (sum * down);
        }
        const double error_norm = tau * std::sqrt(abs_frob + kUnderflow) * (1.0 + 0x1p-20);
        // Wide layers take M' = 2^-k M~ (|M'_ij| <= (1 + 2 tau) 2^-k sum_q |K_q| < 4) in
        // single precision: ||M'||_F <= (1 + 2 tau) ||(2^-k sum_q |K_q|)_oc||_F (|K^_oc| <=
        // sum_q |K_q| by Minkowski, each computed part within tau sum_q |K_q| of it).
        const double conversion =
            single ? (0x1p-24 * std::sqrt(abs_frob + kUnderflow) * (1.0 + 2.0 * tau) +
                      0x1p-126 * std::sqrt(2.0 * static_cast<double>(entries))) *
                         (1.0 + 0x1p-20)
                   : 0.0;
        for (Index first = 0; first < num_kept; first += chunk) {
            const Index count = std::min(chunk, num_kept - first);
            for (Index f = 0; f < count; ++f) {
                const Index fy = kept[to_size(first + f)] / nw, fx = kept[to_size(first + f)] % nw;
                for (Index ky = 0; ky < s.kernel_h; ++ky)
                    for (Index kx = 0; kx < s.kernel_w; ++kx) {
                        const double r = static_cast<double>((fy * ky * s.dilation_h) % nh) /
                                             static_cast<double>(nh) +
                                         static_cast<double>((fx * kx * s.dilation_w) % nw) /
                                             static_cast<double>(nw);
                        const double theta = kTwoPi * r;
                        const Index q = ky * s.kernel_w + kx;
                        // Scaled by 2^-k (exact): the GEMM gives M' = 2^-k M~.
                        phases[to_size(2 * f * taps + q)] = std::cos(theta) * down;
                        phases[to_size((2 * f + 1) * taps + q)] = -std::sin(theta) * down;
                    }
            }
            // Each entry a sum of taps products (any order): within tau of the symbol.
            gemm_nt(2 * count, entries, taps, phases.data(), taps, kernel, taps, 0.0, symbols.get(),
                    entries);
            for (Index f = 0; f < count; ++f) {
                const double* re = symbols.get() + 2 * f * entries;
                const double* im = re + entries;
                if (single) {
                    // M32 = fl32(M'): each part off by at most u32 |part| + 2^-126 (below
                    // FLT_MIN, with or without gradual underflow), so ||M' - M32||_2 <= u32
                    // ||M'||_F + 2^-126 sqrt(2 entries) (`conversion`); the Gram matrix of
                    // M32 by cherk, its rounding bounded as below with u32 and the
                    // magnitudes of M32, plus 2^-126 per operation for underflow (2 inner +
                    // 2 of them per part).
                    for (Index e = 0; e < entries; ++e) {
                        const float x = static_cast<float>(re[e]), y = static_cast<float>(im[e]);
                        m32[to_size(2 * e)] = x;
                        m32[to_size(2 * e + 1)] = y;
                        magnitude[to_size(e)] =
                            std::abs(static_cast<double>(x)) + std::abs(static_cast<double>(y));
                    }
                } else {
                    for (Index e = 0; e < entries; ++e) {
                        m[to_size(2 * e)] = re[e];
                        m[to_size(2 * e + 1)] = im[e];
                        magnitude[to_size(e)] = std::abs(re[e]) + std::abs(im[e]);
                    }
                }
                // The Gram matrix of the small side (Hermitian, its lower triangle): M^H M
                // (by input channels) or M M^H. Each part of an entry is a sum of 2 inner
                // real products, off by at most gamma times their magnitudes, at most
                // gamma sum_i |M_ri|_1 |M_ci|_1 (|x|_1 = |Re x| + |Im x|, i over the inner
                // side); over a row, gamma sum_i |M_ri|_1 column[i], column[i] = sum_c
                // |M_ci|_1.
                std::fill(column.begin(), column.end(), 0.0);
                std::fill(err.begin(), err.end(), 0.0);
                for (Index o = 0; o < og; ++o)
                    for (Index c = 0; c < cg; ++c)
                        column[to_size(by_input ? o : c)] += magnitude[to_size(o * cg + c)];
                for (Index o = 0; o < og; ++o)
                    for (Index c = 0; c < cg; ++c)
                        err[to_size(by_input ? c : o)] +=
                            magnitude[to_size(o * cg + c)] * column[to_size(by_input ? o : c)];
                if (single)
                    herk_lower(by_input, small, inner, m32.data(), cg, gram32.data(), small);
                else
                    herk_lower(by_input, small, inner, m.data(), cg, gram.data(), small);
                std::fill(row_sum.begin(), row_sum.end(), 0.0);
                for (Index r = 0; r < small; ++r) {
                    // The moduli of row r's lower triangle (3 u relative), then summed
                    // along the row and scattered into the columns (|G_cr| = |G_rc|).
                    double* mod = modulus.data();
                    if (single) {
                        const float* entry = gram32.data() + 2 * r * small;
                        for (Index c = 0; c <= r; ++c) {
                            const double x = entry[2 * c], y = entry[2 * c + 1];
                            mod[c] = std::sqrt(x * x + y * y);
                        }
                    } else {
                        const double* entry = gram.data() + 2 * r * small;
                        for (Index c = 0; c <= r; ++c) {
                            const double x = entry[2 * c], y = entry[2 * c + 1];
                            mod[c] = std::sqrt(x * x + y * y);
                        }
                    }
                    // Four partial sums (any order: inside the factors below).
                    double part[4] = {0.0, 0.0, 0.0, 0.0};
                    Index c = 0;
                    for (; c + 4 <= r; c += 4)
                        for (Index i = 0; i < 4; ++i) part[i] += mod[c + i];
                    for (; c < r; ++c) part[0] += mod[c];
                    for (c = 0; c < r; ++c) row_sum[to_size(c)] += mod[c];
                    row_sum[to_size(r)] +=
                        (part[0] + part[1]) + (part[2] + part[3]) + mod[r];  // real diagonal
                }
                double largest = 0.0;
                const double rounding = single ? gram_gamma32 : gram_gamma;
                const double underflow = single ? 4.0 * static_cast<double>(small) *
                                                      (static_cast<double>(inner) + 1.0) * 0x1p-126
                                                : kUnderflow;
                for (Index r = 0; r < small; ++r)
                    largest = std::max(largest, row_sum[to_size(r)] +
                                                    2.0 * rounding * err[to_size(r)] + underflow);
                // The scaled bound, plus the symbols' own underflow, scaled back (exact).
                const double norm =
                    std::sqrt(largest * (1.0 + 0x1p-20)) + conversion + error_norm + kUnderflow;
                result = std::max(result, norm * up);
            }
        }
    }
    // The row sums' own rounding (fewer than 2^31 terms) is inside the factors.
    return result * (1.0 + 0x1p-20);
}

void ConvAffine::add_column(Index col, double coef, double* y) const {
    const ConvShape& s = shape_;
    const Index plane = s.in_height * s.in_width;
    const Index c = col / plane, iy = (col % plane) / s.in_width, ix = col % s.in_width;
    const Index cg = s.in_channels / s.groups, og = s.out_channels / s.groups;
    const Index g = c / cg, taps = s.kernel_h * s.kernel_w;
    const Index positions = s.out_height * s.out_width;
    for (Index ky = 0; ky < s.kernel_h; ++ky) {
        const Index ty = iy + s.pad_h - ky * s.dilation_h;  // oy * stride_h
        if (ty < 0 || ty % s.stride_h != 0 || ty / s.stride_h >= s.out_height) continue;
        for (Index kx = 0; kx < s.kernel_w; ++kx) {
            const Index tx = ix + s.pad_w - kx * s.dilation_w;
            if (tx < 0 || tx % s.stride_w != 0 || tx / s.stride_w >= s.out_width) continue;
            const Index at = (ty / s.stride_h) * s.out_width + tx / s.stride_w;
            const double* w =
                weight_.data() + ((g * og) * cg + c % cg) * taps + ky * s.kernel_w + kx;
            double* target = y + g * og * positions + at;
            for (Index o = 0; o < og; ++o) target[o * positions] += coef * w[o * cg * taps];
        }
    }
}

void ConvAffine::im2col(const double* x, Index group, double* cols, Index ldcols) const {
    // Row k = (c, ky, kx) of the group's kernel, column p = (oy, ox): the input value the
    // tap reads at that output position, or 0 on padding.
    const ConvShape& s = shape_;
    const Index cg = s.in_channels / s.groups;
    const Index plane = s.in_height * s.in_width;
    Index k = 0;
    for (Index c = 0; c < cg; ++c) {
        const double* channel = x + (group * cg + c) * plane;
        for (Index ky = 0; ky < s.kernel_h; ++ky) {
            const auto [y0, y1] =
                valid_outputs(s.out_height, s.in_height, s.stride_h, s.pad_h, ky, s.dilation_h);
            for (Index kx = 0; kx < s.kernel_w; ++kx, ++k) {
                const auto [x0, x1] =
                    valid_outputs(s.out_width, s.in_width, s.stride_w, s.pad_w, kx, s.dilation_w);
                double* row = cols + k * ldcols;
                for (Index oy = 0; oy < s.out_height; ++oy) {
                    double* out = row + oy * s.out_width;
                    if (oy < y0 || oy >= y1 || x0 >= x1) {
                        std::fill(out, out + s.out_width, 0.0);
                        continue;
                    }
                    const double* in =
                        channel + (oy * s.stride_h - s.pad_h + ky * s.dilation_h) * s.in_width +
                        (kx * s.dilation_w - s.pad_w);
                    std::fill(out, out + x0, 0.0);
                    if (s.stride_w == 1) {
                        std::copy(in + x0, in + x1, out + x0);
                    } else {
                        for (Index ox = x0; ox < x1; ++ox) out[ox] = in[ox * s.stride_w];
                    }
                    std::fill(out + x1, out + s.out_width, 0.0);
                }
            }
        }
    }
}

void ConvAffine::gather(const double* x, Index group, double* rows) const {
    const ConvShape& s = shape_;
    const double* channels = x + group * (s.in_channels / s.groups) * s.in_height * s.in_width;
    const std::int32_t* from = gather_.data();
    const std::size_t count = gather_.size();
    for (std::size_t i = 0; i < count; ++i) rows[i] = channels[from[i]];
    for (const std::int32_t entry : padding_) rows[entry] = 0.0;
}

namespace {
std::atomic<int> conv_threads{1};
}  // namespace

void ConvAffine::set_threads(int num_threads) { conv_threads.store(std::max(num_threads, 1)); }

int ConvAffine::threads() { return conv_threads.load(); }

void ConvAffine::apply(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    // Points split over the threads lent (at least 32 points each; results do not depend
    // on the split: each point's values come from the same products).
    const Index parts = std::min<Index>(threads(), n / 32);
    if (parts <= 1) {
        apply_block(x, n, ldx, y, ldy);
        return;
    }
    std::vector<std::future<void>> helpers;
    const Index share = (n + parts - 1) / parts;
    for (Index first = share; first < n; first += share) {
        const Index rows = std::min(share, n - first);
        helpers.push_back(std::async(std::launch::async, [=] {
            apply_block(x + first * ldx, rows, ldx, y + first * ldy, ldy);
        }));
    }
    apply_block(x, share, ldx, y, ldy);
    for (auto& helper : helpers) helper.get();
}

void ConvAffine::apply_block(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    const ConvShape& s = shape_;
    const Index positions = s.out_height * s.out_width;
    const Index cg = s.in_channels / s.groups;
    const Index og = s.out_channels / s.groups;
    const Index depth = cg * s.kernel_h * s.kernel_w;  // K of the product
    // Points per block: enough columns for an efficient product (about 256), the columns
    // within kIm2colBytes.
    const Index per_point = depth * positions * Index{sizeof(double)};
    Index block = std::max<Index>(1, (256 + positions - 1) / positions);
    block = std::min({block, n, std::max<Index>(1, kIm2colBytes / per_point)});
    if (n == 0) return;
    const Index width = block * positions;
    // Every entry is written before it is read: no zero fill.
    detail::Buffer<double> cols(to_size(depth * width));
    detail::Buffer<double> product(block > 1 ? to_size(og * width) : 0);
    for (Index first = 0; first < n; first += block) {
        const Index rows = std::min(block, n - first);
        const Index ldcols = rows * positions;
        for (Index g = 0; g < s.groups; ++g) {
            const double* kernel = weight_.data() + g * og * depth;
            double* out = rows == 1 ? y + first * ldy + g * og * positions : product.data();
            const Index ldout = rows == 1 ? positions : ldcols;
            if (!gather_.empty()) {
                // Kernel rows times the points' transposed im2col matrices, gathered
                // by the table (one pass per point, no per-row bookkeeping).
                for (Index b = 0; b < rows; ++b)
                    gather(x + (first + b) * ldx, g, cols.data() + b * positions * depth);
                gemm_nt(og, ldcols, depth, kernel, depth, cols.data(), depth, 0.0, out, ldout);
            } else {
                for (Index b = 0; b < rows; ++b)
                    im2col(x + (first + b) * ldx, g, cols.data() + b * positions, ldcols);
                gemm_nn(og, ldcols, depth, kernel, depth, cols.data(), ldcols, 0.0, out, ldout);
            }
            if (rows == 1) continue;
            for (Index b = 0; b < rows; ++b) {
                double* target = y + (first + b) * ldy + g * og * positions;
                for (Index o = 0; o < og; ++o)
                    std::copy_n(product.data() + o * ldcols + b * positions, positions,
                                target + o * positions);
            }
        }
        for (Index b = 0; b < rows; ++b) {
            double* row = y + (first + b) * ldy;
            for (Index o = 0; o < s.out_channels; ++o) {
                const double add = bias_[to_size(o)];
                if (add == 0.0) continue;
                for (Index p = 0; p < positions; ++p) row[o * positions + p] += add;
            }
        }
    }
}

AffineRow ConvAffine::row(Index r, std::vector<double>& scratch_values,
                          std::vector<Index>& scratch_cols) const {
    // Output unit r = (channel o, position oy, ox): the taps that land inside the input.
    const ConvShape& s = shape_;
    const Index positions = s.out_height * s.out_width;
    const Index o = r / positions;
    const Index oy = (r % positions) / s.out_width;
    const Index ox = r % s.out_width;
    const Index cg = s.in_channels / s.groups;
    const Index group = o / (s.out_channels / s.groups);
    const Index taps = s.kernel_h * s.kernel_w;
    scratch_values.clear();
    scratch_cols.clear();
    for (Index c = 0; c < cg; ++c) {
        for (Index ky = 0; ky < s.kernel_h; ++ky) {
            const Index iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
            if (iy < 0 || iy >= s.in_height) continue;
            for (Index kx = 0; kx < s.kernel_w; ++kx) {
                const Index ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
                if (ix < 0 || ix >= s.in_width) continue;
                scratch_values.push_back(
                    weight_[to_size((o * cg + c) * taps + ky * s.kernel_w + kx)]);
                scratch_cols.push_back(((group * cg + c) * s.in_height + iy) * s.in_width + ix);
            }
        }
    }
    return {scratch_values.data(), scratch_cols.data(), static_cast<Index>(scratch_values.size()),
            bias_[to_size(o)]};
}

DiagonalAffine::DiagonalAffine(std::vector<double> scale, std::vector<double> bias)
    : scale_(std::move(scale)), bias_(std::move(bias)) {
    if (scale_.empty()) throw std::invalid_argument("DiagonalAffine: dimension must be positive");
    if (bias_.size() != scale_.size())
        throw std::invalid_argument("DiagonalAffine: scale/bias sizes differ");
    row_norms_.resize(scale_.size());
    abs_bias_.resize(scale_.size());
    for (std::size_t j = 0; j < scale_.size(); ++j) {
        row_norms_[j] = std::abs(scale_[j]);
        norm_bound_ = std::max(norm_bound_, std::abs(scale_[j]));
        abs_bias_[j] = std::abs(bias_[j]);
    }
}

void DiagonalAffine::apply(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    const Index d = in_dim();
    for (Index i = 0; i < n; ++i) {
        const double* xi = x + i * ldx;
        double* yi = y + i * ldy;
        for (Index j = 0; j < d; ++j) yi[j] = scale_[to_size(j)] * xi[j] + bias_[to_size(j)];
    }
}

AffineRow DiagonalAffine::row(Index r, std::vector<double>& /*scratch_values*/,
                              std::vector<Index>& scratch_cols) const {
    scratch_cols.assign(1, r);
    return {scale_.data() + r, scratch_cols.data(), 1, bias_[to_size(r)]};
}

CompositeAffine::CompositeAffine(Index out_dim, Index in_dim, std::vector<Part> parts,
                                 std::vector<double> bias)
    : out_(out_dim), in_(in_dim), parts_(std::move(parts)), bias_(std::move(bias)) {
    if (out_ <= 0 || in_ <= 0)
        throw std::invalid_argument("CompositeAffine: dimensions must be positive");
    if (bias_.size() != to_size(out_))
        throw std::invalid_argument("CompositeAffine: bias size does not match out_dim");
    std::vector<double> total(bias_);
    std::vector<double> squares(to_size(out_), 0.0);
    std::vector<bool> covered(to_size(out_), false);
    for (std::size_t t = 0; t < parts_.size(); ++t) {
        const Part& part = parts_[t];
        if (!part.map) throw std::invalid_argument("CompositeAffine: a part has no map");
        const Index pin = part.map->in_dim();
        const Index pout = part.map->out_dim();
        if (part.in_offset < 0 || part.out_offset < 0 || part.in_offset + pin > in_ ||
            part.out_offset + pout > out_)
            throw std::invalid_argument("CompositeAffine: a part does not fit in the layer");
        for (std::size_t u = 0; u < t; ++u) {
            const Part& other = parts_[u];
            const bool out_overlap = part.out_offset < other.out_offset + other.map->out_dim() &&
                                     other.out_offset < part.out_offset + pout;
            const bool in_overlap = part.in_offset < other.in_offset + other.map->in_dim() &&
                                    other.in_offset < part.in_offset + pin;
            if (out_overlap && in_overlap)
                throw std::invalid_argument(
                    "CompositeAffine: parts adding to the same outputs must read disjoint "
                    "inputs");
        }
        bool adds = false;
        for (Index j = 0; j < pout; ++j) adds = adds || covered[to_size(part.out_offset + j)];
        adds_.push_back(adds);
        // The part's own bias: its value at the origin.
        std::vector<double> zero(to_size(pin), 0.0);
        std::vector<double> at_zero(to_size(pout));
        part.map->apply(zero.data(), 1, pin, at_zero.data(), pout);
        const std::vector<double>& norms = part.map->row_norms();
        for (Index j = 0; j < pout; ++j) {
            const std::size_t r = to_size(part.out_offset + j);
            covered[r] = true;
            total[r] += at_zero[to_size(j)];
            squares[r] += norms[to_size(j)] * norms[to_size(j)];
        }
    }
    for (Index j = 0; j < out_;) {
        if (covered[to_size(j)]) {
            ++j;
            continue;
        }
        Index end = j;
        while (end < out_ && !covered[to_size(end)]) ++end;
        uncovered_.emplace_back(j, end);
        j = end;
    }
    row_norms_.resize(to_size(out_));
    abs_bias_.resize(to_size(out_));
    for (Index j = 0; j < out_; ++j) {
        row_norms_[to_size(j)] = std::sqrt(squares[to_size(j)]);
        abs_bias_[to_size(j)] = std::abs(total[to_size(j)]);
    }
    total_bias_ = std::move(total);
}

double CompositeAffine::norm_bound() const {
    std::call_once(norm_once_, [this] { norm_bound_ = schur_bound(); });
    return norm_bound_;
}

// The smaller of two bounds on ||W||_2 from the parts' bounds n_t, both from |x^T W y| <=
// sum_t n_t ||x_{O_t}|| ||y_{I_t}|| for unit x, y:
// - Schur test: <= sqrt(R C), R the largest sum of n_t over the parts writing one output,
//   C over the parts reading one input;
// - block norms: the outputs and inputs cut into intervals at every part's ends (a_i, b_j
//   the norms of x and y on them), ||x_{O_t}|| <= sum_{i in O_t} a_i and likewise for y,
//   so the sum is at most a^T N b <= ||N||_2 with N_ij = n_t for the part t covering
//   cell (i, j) (at most one: parts writing one output read disjoint inputs), 0 where
//   none does. ||N||_2^2 = ||N^T N||_2 <= ||(N^T N)^(2^k)||_inf^(1/2^k) (symmetric, and
//   non-negative entries: every float product and sum errs by a relative gamma, covered
//   by a factor per squaring). A residual layer [T I] or [T; I] gets sqrt(n_T^2 + 1)
//   instead of Schur's sqrt(n_T (n_T + 1)).
double CompositeAffine::schur_bound() const {
    std::vector<double> norms;
    for (const Part& part : parts_) {
        double n = part.map->norm_bound();
        if (n < 0.0) {
            // The Frobenius norm, its squares scaled by a power of two so that none
            // overflows and underflow (at most 2^-1074 a term) is covered by 2^-1000.
            double r_max = 0.0, frob = 0.0;
            for (const double r : part.map->row_norms()) r_max = std::max(r_max, r);
            if (r_max > 0.0 && std::isfinite(r_max)) {
                const int k = std::ilogb(r_max);
                for (const double r : part.map->row_norms())
                    frob += std::ldexp(r, -k) * std::ldexp(r, -k);
                n = std::ldexp((std::sqrt(frob + 0x1p-1000) * (1.0 + 0x1p-20)), k);
            } else {
                n = r_max;  // 0, or not finite
            }
        }
        norms.push_back(n);
    }
    const double schur = schur_test(norms);
    // The block norms below on norms scaled by 2^-k (k = ilogb of the largest: exact, the
    // bound is homogeneous), and each of gram's sums raised by its products' possible
    // underflow (at most 2^-1074 each).
    double n_max = 0.0;
    for (const double n : norms) n_max = std::max(n_max, n);
    if (!(n_max > 0.0) || !std::isfinite(n_max)) return schur;
    const int scale_exp = std::ilogb(n_max);
    for (double& n : norms) n = std::ldexp(n, -scale_exp);
    // Block norms, where the cells are few.
    std::vector<Index> out_cuts{0, out_}, in_cuts{0, in_};
    for (const Part& part : parts_) {
        out_cuts.push_back(part.out_offset);
        out_cuts.push_back(part.out_offset + part.map->out_dim());
        in_cuts.push_back(part.in_offset);
        in_cuts.push_back(part.in_offset + part.map->in_dim());
    }
    for (std::vector<Index>* cuts : {&out_cuts, &in_cuts}) {
        std::sort(cuts->begin(), cuts->end());
        cuts->erase(std::unique(cuts->begin(), cuts->end()), cuts->end());
    }
    const Index rows = static_cast<Index>(out_cuts.size()) - 1;
    const Index cols = static_cast<Index>(in_cuts.size()) - 1;
    if (rows * cols > 4096) return schur;
    std::vector<double> n(to_size(rows * cols), 0.0);
    for (std::size_t t = 0; t < parts_.size(); ++t) {
        const Part& part = parts_[t];
        for (Index i = 0; i < rows; ++i) {
            if (out_cuts[to_size(i)] < part.out_offset ||
                out_cuts[to_size(i) + 1] > part.out_offset + part.map->out_dim())
                continue;
            for (Index j = 0; j < cols; ++j)
                if (in_cuts[to_size(j)] >= part.in_offset &&
                    in_cuts[to_size(j) + 1] <= part.in_offset + part.map->in_dim())
                    n[to_size(i * cols + j)] = norms[t];
        }
    }
    // m^T m (m: r x cols, non-negative) rounded up: symmetric, the same products in the
    // same order on both sides. For a symmetric g, g^T g = g g.
    auto gram = [cols](const std::vector<double>& m, Index r) {
        std::vector<double> out(to_size(cols * cols));
        for (Index a = 0; a < cols; ++a)
            for (Index b = 0; b < cols; ++b) {
                double sum = 0.0;
                for (Index i = 0; i < r; ++i)
                    sum += m[to_size(i * cols + a)] * m[to_size(i * cols + b)];
                out[to_size(a * cols + b)] =
                    (sum + static_cast<double>(r) * 0x1p-1074) * (1.0 + 0x1p-20);
            }
        return out;
    };
    // G = N^T N (cols x cols), then squared k times: ||N||_2 <= ||G^(2^k)||_inf^(1/2^(k+1)).
    std::vector<double> g = gram(n, rows);
    // Invariant: ||N||_2^power <= exp(log_scale) ||g||_2 <= exp(log_scale) ||g||_inf, g
    // symmetric (the same products in the same order on both sides) and entrywise above
    // the exact scaled power of N^T N (every rounding covered by the factors).
    double power = 2.0, log_scale = 0.0;
    for (int k = 0;; ++k) {
        double inf = 0.0;
        for (Index a = 0; a < cols; ++a) {
            double sum = 0.0;
            for (Index b = 0; b < cols; ++b) sum += g[to_size(a * cols + b)];
            inf = std::max(inf, sum);
        }
        inf *= 1.0 + 0x1p-20;
        if (!(inf > 0.0)) return schur;
        const double bound = std::exp((log_scale + std::log(inf)) / power) * (1.0 + 0x1p-20);
        if (k == 5) return std::min(schur, std::ldexp(bound, scale_exp));
        for (double& v : g) v = v / inf * (1.0 + 0x1p-20) + 0x1p-1074;  // ||g||_inf ~ 1
        log_scale = 2.0 * (log_scale + std::log(inf));
        g = gram(g, cols);
        power *= 2.0;
    }
}

double CompositeAffine::schur_test(const std::vector<double>& norms) const {
    std::vector<double> rows(to_size(out_) + 1, 0.0), cols(to_size(in_) + 1, 0.0);
    for (std::size_t t = 0; t < parts_.size(); ++t) {
        const Part& part = parts_[t];
        const double n = norms[t];
        rows[to_size(part.out_offset)] += n;
        rows[to_size(part.out_offset + part.map->out_dim())] -= n;
        cols[to_size(part.in_offset)] += n;
        cols[to_size(part.in_offset + part.map->in_dim())] -= n;
    }
    double r_max = 0.0, c_max = 0.0, run = 0.0;
    for (Index j = 0; j < out_; ++j) r_max = std::max(r_max, run += rows[to_size(j)]);
    run = 0.0;
    for (Index j = 0; j < in_; ++j) c_max = std::max(c_max, run += cols[to_size(j)]);
    // The running sums' rounding: relative (number of parts + 2) u, inside the factor (two
    // square roots: no product to underflow or overflow).
    return std::sqrt(r_max) * std::sqrt(c_max) * (1.0 + 0x1p-20);
}

AffineRow CompositeAffine::row(Index r, std::vector<double>& scratch_values,
                               std::vector<Index>& scratch_cols) const {
    scratch_values.clear();
    scratch_cols.clear();
    thread_local std::vector<double> part_values;
    thread_local std::vector<Index> part_cols;
    for (const Part& part : parts_) {
        const Index j = r - part.out_offset;
        if (j < 0 || j >= part.map->out_dim()) continue;
        const AffineRow pr = part.map->row(j, part_values, part_cols);
        for (Index i = 0; i < pr.count; ++i) {
            scratch_values.push_back(pr.values[i]);
            scratch_cols.push_back(part.in_offset + (pr.cols != nullptr ? pr.cols[i] : i));
        }
    }
    return {scratch_values.data(), scratch_cols.data(), static_cast<Index>(scratch_values.size()),
            total_bias_[to_size(r)]};
}

bool CompositeAffine::can_add_column() const {
    for (const Part& part : parts_)
        if (!part.map->can_add_column()) return false;
    return true;
}

void CompositeAffine::add_column(Index col, double coef, double* y) const {
    for (const Part& part : parts_)
        if (col >= part.in_offset && col < part.in_offset + part.map->in_dim())
            part.map->add_column(col - part.in_offset, coef, y + part.out_offset);
}

void CompositeAffine::apply(const double* x, Index n, Index ldx, double* y, Index ldy) const {
    for (Index i = 0; i < n; ++i)
        for (const auto& [begin, end] : uncovered_)
            std::fill(y + i * ldy + begin, y + i * ldy + end, 0.0);
    std::vector<double> temp;
    for (std::size_t t = 0; t < parts_.size(); ++t) {
        const Part& part = parts_[t];
        const AffineMap& map = *part.map;
        const Index pout = map.out_dim();
        if (!adds_[t]) {
            map.apply(x + part.in_offset, n, ldx, y + part.out_offset, ldy);
            continue;
        }
        // Added in blocks of rows, the temporary within about 8 MiB.
        const Index block = std::clamp<Index>((Index{1} << 20) / pout, 1, n);
        temp.resize(to_size(block * pout));
        for (Index first = 0; first < n; first += block) {
            const Index rows = std::min(block, n - first);
            map.apply(x + first * ldx + part.in_offset, rows, ldx, temp.data(), pout);
            for (Index i = 0; i < rows; ++i) {
                double* target = y + (first + i) * ldy + part.out_offset;
                const double* source = temp.data() + i * pout;
                for (Index j = 0; j < pout; ++j) target[j] += source[j];
            }
        }
    }
    for (Index i = 0; i < n; ++i) {
        double* row = y + i * ldy;
        for (Index j = 0; j < out_; ++j) row[j] += bias_[to_size(j)];
    }
}

}  // namespace lrcore
