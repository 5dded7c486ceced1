// Certified sign decisions: the fast filter's per-layer constants and the slow path's
// evaluation in double-double (docs/numerics.md has the error bounds and the argument).
#include "certify.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>

#include "simd.hpp"

namespace lrcore::detail {

std::vector<FilterLayer> filter_layers(const Network& net) {
    std::vector<FilterLayer> out(sz(net.num_hidden_layers()));
    for (Index l = 0; l < net.num_hidden_layers(); ++l) {
        const AffineMap& map = net.layer(l);
        FilterLayer& f = out[sz(l)];
        // n products and the bias: n + 1 terms; one more covers the rounding of the
        // input's float norm s (computed as fl(sqrt(fl(sum h^2)))).
        f.gamma = gamma_of(static_cast<double>(map.in_dim()) + 2.0) * kSafety;
        // The map's sums of |W| and b (computed once per map, kept).
        const AffineMap::AbsSums& sums = map.abs_sums();
        const double frob = sums.frob2, bias2 = sums.bias2, max_row = sums.max_row;
        const double max_column = sums.max_column;
        // The sums' rounding (relative (n + m) u at most) is far inside kSafety^2.
        f.frob = std::sqrt(frob) * kSafety;
        f.absnorm = std::min(f.frob, std::sqrt(max_column * max_row) * kSafety * kSafety);
        f.opnorm = f.absnorm;
        // The map's structure may bound it better (a convolution: its kernel's T^T T).
        if (map.norm_bound() >= 0.0) f.opnorm = std::min(f.opnorm, map.norm_bound() * kSafety);
        f.bias2 = std::sqrt(bias2) * kSafety;
        const Activation& act = net.activation(l);
        f.slope =
            act.kind == ActivationKind::relu ? 1.0 : std::max(1.0, std::abs(act.negative_slope));
    }
    return out;
}

namespace {

constexpr double u = kUnitRoundoff;

bool pattern_bit(const Word* pattern, Index bit) {
    return ((pattern[bit / kWordBits] >> (bit % kWordBits)) & Word{1}) != 0;
}

// |x| as a double-double's magnitude, rounded up.
double magnitude(double hi, double lo) { return (std::abs(hi) + std::abs(lo)) * (1.0 + 2.0 * u); }

// (a.hi + a.lo) * (b.hi + b.lo) as a double-double, with a bound on its error (operands
// normalised, |lo| <= u |hi|: the neglected and rounded terms are below 6 u^2 |a b|).
DD mul(const DD& a, const DD& b, double& err) {
    DD p = two_prod(a.hi, b.hi);
    p.lo += a.hi * b.lo + a.lo * b.hi;
    const DD r = two_sum(p.hi, p.lo);
    err = 8.0 * u * u * magnitude(a.hi, a.lo) * magnitude(b.hi, b.lo);
    return r;
}

// The lower bound of |hi + lo|, rounded down.
double lower_magnitude(double hi, double lo) {
    return (std::abs(hi) - std::abs(lo)) * (1.0 - 4.0 * u);
}

// --- The structured forced-pattern pass: a layer's Dot2 sums accumulated through the
// map's own structure (a convolution tap by tap over whole rows of output positions, a
// diagonal, a sum of parts) instead of gathering each output's row. Each output keeps
// one TwoSum chain, its terms added in the order its row lists them (channel, kernel
// row, kernel column for a convolution); the Dot2 bound does not depend on the order of
// the terms (forward's comment), and a term with w = 0 adds exact zeros (skipped).

// One layer's input: hi, lo and the error bound per value.
struct DotInput {
    const double *hi, *lo, *err;
    DotInput at(Index offset) const { return {hi + offset, lo + offset, err + offset}; }
};

// One layer's accumulators per output: the TwoSum chain s, the float sum c of the error
// terms, sum |w_i x_i| (a), sum |w_i lo_i| (l) and sum |w_i| err_i (e).
struct DotSums {
    double *s, *c, *a, *l, *e;
    DotSums at(Index offset) const {
        return {s + offset, c + offset, a + offset, l + offset, e + offset};
    }
};

inline void dot2_step(double w, double x_hi, double x_lo, double x_err, double& s, double& c,
                      double& a, double& l, double& e) {
    const DD p = two_prod(w, x_hi);
    const DD q = two_sum(s, p.hi);
    s = q.hi;
    const double wl = w * x_lo;
    c += (q.lo + p.lo) + wl;
    a += std::abs(p.hi);
    l += std::abs(wl);
    e += std::abs(w) * x_err;
}

#if defined(LRCORE_AVX2_DISPATCH)
bool cpu_has_avx2_fma() {
    static const bool has = cpu_has_avx2() && __builtin_cpu_supports("fma") != 0;
    return has;
}

// dot2_step for outputs r < len reading x[r], four at a time: the same operations
// (TwoProd by a fused multiply-subtract, TwoSum), each IEEE-rounded as in the scalar code.
__attribute__((target("avx2,fma"))) void dot2_axpy_avx2(double w, DotInput x, DotSums out,
                                                        Index len) {
    const __m256d vw = _mm256_set1_pd(w);
    const __m256d vabsw = _mm256_set1_pd(std::abs(w));
    const __m256d sign = _mm256_set1_pd(-0.0);
    Index r = 0;
    for (; r + 4 <= len; r += 4) {
        const __m256d h = _mm256_loadu_pd(x.hi + r);
        const __m256d p = _mm256_mul_pd(vw, h);
        const __m256d pl = _mm256_fmsub_pd(vw, h, p);  // w h - p, exactly
        const __m256d s0 = _mm256_loadu_pd(out.s + r);
        const __m256d s = _mm256_add_pd(s0, p);
        const __m256d bb = _mm256_sub_pd(s, s0);
        const __m256d ql =
            _mm256_add_pd(_mm256_sub_pd(s0, _mm256_sub_pd(s, bb)), _mm256_sub_pd(p, bb));
        _mm256_storeu_pd(out.s + r, s);
        const __m256d wl = _mm256_mul_pd(vw, _mm256_loadu_pd(x.lo + r));
        const __m256d c =
            _mm256_add_pd(_mm256_loadu_pd(out.c + r), _mm256_add_pd(_mm256_add_pd(ql, pl), wl));
        _mm256_storeu_pd(out.c + r, c);
        _mm256_storeu_pd(out.a + r,
                         _mm256_add_pd(_mm256_loadu_pd(out.a + r), _mm256_andnot_pd(sign, p)));
        _mm256_storeu_pd(out.l + r,
                         _mm256_add_pd(_mm256_loadu_pd(out.l + r), _mm256_andnot_pd(sign, wl)));
        _mm256_storeu_pd(out.e + r,
                         _mm256_add_pd(_mm256_loadu_pd(out.e + r),
                                       _mm256_mul_pd(vabsw, _mm256_loadu_pd(x.err + r))));
    }
    for (; r < len; ++r)
        dot2_step(w, x.hi[r], x.lo[r], x.err[r], out.s[r], out.c[r], out.a[r], out.l[r], out.e[r]);
}
#endif

// out[r] += w x[r * stride] for r < len, as dot2_step.
void dot2_axpy(double w, DotInput x, Index stride, DotSums out, Index len) {
    if (w == 0.0) return;
#if defined(LRCORE_AVX2_DISPATCH)
    if (stride == 1 && len >= 4 && cpu_has_avx2_fma()) {
        dot2_axpy_avx2(w, x, out, len);
        return;
    }
#endif
    for (Index r = 0; r < len; ++r) {
        const Index i = r * stride;
        dot2_step(w, x.hi[i], x.lo[i], x.err[i], out.s[r], out.c[r], out.a[r], out.l[r], out.e[r]);
    }
}

// Output positions o < out whose input position o * stride - pad + tap * dilation lies in
// [0, size): [first, last) (as ConvAffine's im2col).
std::pair<Index, Index> tap_outputs(Index out, Index size, Index stride, Index pad, Index tap,
                                    Index dilation) {
    const Index shift = tap * dilation - pad;
    Index first = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
    Index last = size - shift <= 0 ? 0 : (size - shift + stride - 1) / stride;
    first = std::min(first, out);
    last = std::clamp(last, first, out);
    return {first, last};
}

// Output channels [o_begin, o_end) of dot2_conv.
void dot2_conv_channels(const ConvAffine& conv, DotInput x, DotSums out, Index o_begin,
                        Index o_end) {
    const ConvShape& sh = conv.shape();
    const Index positions = sh.out_height * sh.out_width;
    const Index cg = sh.in_channels / sh.groups;
    const Index og = sh.out_channels / sh.groups;
    const Index taps = sh.kernel_h * sh.kernel_w;
    const Index plane = sh.in_height * sh.in_width;
    const double* weight = conv.weight().data();
    for (Index o = o_begin; o < o_end; ++o) {
        const Index g = o / og;
        for (Index c = 0; c < cg; ++c) {
            const double* kernel = weight + (o * cg + c) * taps;
            const DotInput channel = x.at((g * cg + c) * plane);
            for (Index ky = 0; ky < sh.kernel_h; ++ky) {
                const auto [y0, y1] = tap_outputs(sh.out_height, sh.in_height, sh.stride_h,
                                                  sh.pad_h, ky, sh.dilation_h);
                for (Index kx = 0; kx < sh.kernel_w; ++kx) {
                    const auto [x0, x1] = tap_outputs(sh.out_width, sh.in_width, sh.stride_w,
                                                      sh.pad_w, kx, sh.dilation_w);
                    const double w = kernel[ky * sh.kernel_w + kx];
                    if (w == 0.0 || x0 >= x1) continue;
                    for (Index oy = y0; oy < y1; ++oy) {
                        const Index iy = oy * sh.stride_h - sh.pad_h + ky * sh.dilation_h;
                        const Index ix = x0 * sh.stride_w - sh.pad_w + kx * sh.dilation_w;
                        dot2_axpy(w, channel.at(iy * sh.in_width + ix), sh.stride_w,
                                  out.at(o * positions + oy * sh.out_width + x0), x1 - x0);
                    }
                }
            }
        }
    }
}

// The output channels split over the threads ConvAffine::apply may use (lent by a call
// with fewer tasks than threads): each output's chain is the same whatever the split.
void dot2_conv(const ConvAffine& conv, DotInput x, DotSums out) {
    const ConvShape& sh = conv.shape();
    const double work = static_cast<double>(sh.out_channels) *
                        static_cast<double>(sh.in_channels / sh.groups) *
                        static_cast<double>(sh.kernel_h * sh.kernel_w) *
                        static_cast<double>(sh.out_height * sh.out_width);
    const Index parts =
        work < 262144.0 ? 1 : std::min<Index>(ConvAffine::threads(), sh.out_channels);
    if (parts <= 1) {
        dot2_conv_channels(conv, x, out, 0, sh.out_channels);
        return;
    }
    std::vector<std::future<void>> helpers;
    const Index share = (sh.out_channels + parts - 1) / parts;
    for (Index first = share; first < sh.out_channels; first += share) {
        const Index last = std::min(first + share, sh.out_channels);
        helpers.push_back(std::async(std::launch::async, [&conv, x, out, first, last] {
            dot2_conv_channels(conv, x, out, first, last);
        }));
    }
    dot2_conv_channels(conv, x, out, 0, share);
    for (auto& helper : helpers) helper.get();
}

// The terms of `map` (no bias) added to out, through its structure where it has one, else
// row by row.
void dot2_terms(const AffineMap& map, DotInput x, DotSums out, std::vector<double>& values,
                std::vector<Index>& cols) {
    if (const auto* conv = dynamic_cast<const ConvAffine*>(&map)) {
        dot2_conv(*conv, x, out);
    } else if (const auto* diagonal = dynamic_cast<const DiagonalAffine*>(&map)) {
        const std::vector<double>& scale = diagonal->scale();
        for (Index r = 0; r < map.out_dim(); ++r)
            if (scale[sz(r)] != 0.0)
                dot2_step(scale[sz(r)], x.hi[r], x.lo[r], x.err[r], out.s[r], out.c[r], out.a[r],
                          out.l[r], out.e[r]);
    } else if (const auto* composite = dynamic_cast<const CompositeAffine*>(&map)) {
        for (const CompositeAffine::Part& part : composite->parts())
            dot2_terms(*part.map, x.at(part.in_offset), out.at(part.out_offset), values, cols);
    } else {
        for (Index r = 0; r < map.out_dim(); ++r) {
            const AffineRow row = map.row(r, values, cols);
            for (Index i = 0; i < row.count; ++i) {
                const Index col = row.cols != nullptr ? row.cols[i] : i;
                dot2_step(row.values[i], x.hi[col], x.lo[col], x.err[col], out.s[r], out.c[r],
                          out.a[r], out.l[r], out.e[r]);
            }
        }
    }
}

// The bias of every output of a structured map (a convolution, a diagonal, a sum of
// parts); false for other maps (their pass gathers rows).
bool structured_bias(const AffineMap& map, std::vector<double>& bias) {
    if (const auto* conv = dynamic_cast<const ConvAffine*>(&map)) {
        const Index positions = conv->shape().out_height * conv->shape().out_width;
        bias.resize(sz(map.out_dim()));
        for (Index r = 0; r < map.out_dim(); ++r) bias[sz(r)] = conv->bias()[sz(r / positions)];
        return true;
    }
    if (const auto* diagonal = dynamic_cast<const DiagonalAffine*>(&map)) {
        bias = diagonal->bias();
        return true;
    }
    if (const auto* composite = dynamic_cast<const CompositeAffine*>(&map)) {
        bias = composite->total_bias();
        return true;
    }
    return false;
}

}  // namespace

// Forced-pattern forward pass in double-double. Each value of layer l is
// sum_i w_i (x_i + lo_i) + b accumulated as in Ogita, Rump and Oishi's Dot2: the products
// w_i x_i split exactly (TwoProd), summed by TwoSum, every error term (the products' and
// sums' low parts, w_i lo_i) summed in float64 into one correction. With n terms, the
// result s + c (an exact double-double) differs from the exact sum by at most
//   K1 * sum |w_i x_i| + K2 * sum |w_i lo_i|,
//   K1 = gamma_{3n+3} (n + 1) u (1 + gamma_{n+2})^2,
//   K2 = (gamma_{3n+3} (1 + u) + u) (1 + gamma_{n+2}),
// (the TwoSum low parts total at most n u (1 + gamma_n) sum |w_i x_i|, the product low
// parts u sum |w_i x_i|, and the float sum of 3n terms errs by gamma_{3n} times their sum),
// plus the input's error: sum_i |w_i| err_i (componentwise) or ||W_j|| times its l2
// norm (Cauchy-Schwarz), the smaller. Cauchy-Schwarz alone grows by about
// ||W_j|| sqrt(width) per layer, far faster than the error itself on deep wide nets.
void PathOracle::forward(const double* x_hi, const double* x_lo, bool with_bias,
                         const Word* pattern, const LayerValues* start, Index from, Index upto,
                         Index keep_layer, Index keep_unit, Value& kept, LayerValues& top,
                         const std::vector<LayerValues*>& snaps) {
    double input_error = 0.0;  // the input is exact
    // The forced activation of layer l's values z: h = z where the pattern's bit is set,
    // else slope * z (0 for ReLU); linear units pass. Sets input_error.
    auto activate = [&](const LayerValues& z, Index l) {
        const Index m = static_cast<Index>(z.hi.size());
        const Activation& act = net_.activation(l);
        const Index neurons = net_.hidden_size(l);
        const Index offset = net_.neuron_offset(l);
        h_hi_.resize(sz(m));
        h_lo_.resize(sz(m));
        h_err_.resize(sz(m));
        double sum = 0.0;
        for (Index j = 0; j < m; ++j) {
            double hi = z.hi[sz(j)], lo = z.lo[sz(j)], err = z.err[sz(j)];
            if (j < neurons && !pattern_bit(pattern, offset + j)) {
                if (act.kind == ActivationKind::relu) {
                    hi = lo = err = 0.0;
                } else {
                    const double a = act.negative_slope;
                    const DD p = two_prod(a, hi);
                    const double al = a * lo;
                    const DD v = two_sum(p.hi, p.lo + al);
                    hi = v.hi;
                    lo = v.lo;
                    err = std::abs(a) * err + 4.0 * u * (std::abs(al) + std::abs(p.lo));
                }
            }
            h_hi_[sz(j)] = hi;
            h_lo_[sz(j)] = lo;
            h_err_[sz(j)] = err * kSafety;
            sum += err * err;
        }
        input_error = std::sqrt(sum) * kSafety * (1.0 + gamma_of(static_cast<double>(m) + 2.0));
    };
    if (from == 0) {
        const Index d = net_.input_dim();
        h_hi_.assign(x_hi, x_hi + d);
        h_err_.assign(sz(d), 0.0);
        if (x_lo != nullptr) {
            h_lo_.assign(x_lo, x_lo + d);
        } else {
            h_lo_.assign(sz(d), 0.0);
        }
    } else {
        activate(*start, from - 1);  // resumes a cached pass at layer from - 1
    }
    // After layer l: its kept value, and either the pass's last layer (true) or the
    // next layer's input.
    auto finish_layer = [&](Index l) {
        if (l == keep_layer && l < upto)
            kept = {z_.hi[sz(keep_unit)], z_.lo[sz(keep_unit)], z_.err[sz(keep_unit)]};
        if (l == upto) {
            std::swap(z_, top);
            return true;
        }
        if (snaps[sz(l)] != nullptr) *snaps[sz(l)] = z_;
        activate(z_, l);
        return false;
    };
    for (Index l = from; l <= upto; ++l) {
        const AffineMap& map = net_.layer(l);
        const Index m = map.out_dim();
        work_ += map.multiply_adds();
        ++layers_computed_;
        // n + 4: the fan-in plus the merges of the four chains (forward's loop).
        const auto n = static_cast<double>(map.in_dim()) + 4.0;
        const double gn = gamma_of(n + 2.0);
        const double k1 = gamma_of(3.0 * n + 3.0) * (n + 1.0) * u * (1.0 + gn) * (1.0 + gn);
        const double k2 = (gamma_of(3.0 * n + 3.0) * (1.0 + u) + u) * (1.0 + gn);
        LayerValues& z = z_;
        z.hi.resize(sz(m));
        z.lo.resize(sz(m));
        z.err.resize(sz(m));
        if (structured_bias(map, bias_)) {
            // One TwoSum chain per output (n + 4 covers it), through the map's structure.
            for (std::vector<double>* v : {&sum_s_, &sum_c_, &sum_a_, &sum_l_, &sum_e_})
                v->assign(sz(m), 0.0);
            if (with_bias) {
                for (Index r = 0; r < m; ++r) {
                    sum_s_[sz(r)] = bias_[sz(r)];
                    sum_a_[sz(r)] = std::abs(bias_[sz(r)]);
                }
            }
            dot2_terms(map, {h_hi_.data(), h_lo_.data(), h_err_.data()},
                       {sum_s_.data(), sum_c_.data(), sum_a_.data(), sum_l_.data(), sum_e_.data()},
                       row_values_, row_cols_);
            for (Index r = 0; r < m; ++r) {
                const DD v = two_sum(sum_s_[sz(r)], sum_c_[sz(r)]);
                z.hi[sz(r)] = v.hi;
                z.lo[sz(r)] = v.lo;
                const double propagated =
                    std::min(sum_e_[sz(r)], map.row_norms()[sz(r)] * input_error);
                z.err[sz(r)] =
                    kSafety * (k1 * sum_a_[sz(r)] + k2 * sum_l_[sz(r)] + (1.0 + gn) * propagated);
            }
            if (finish_layer(l)) break;
            continue;
        }
        for (Index r = 0; r < m; ++r) {
            const AffineRow row = map.row(r, row_values_, row_cols_);
            // Four independent TwoSum chains (the chains' latency, not the arithmetic,
            // bounds a single chain's speed), merged by TwoSum at the end: n + 4 TwoSums
            // of partial sums each at most (1 + gamma_n) sum |w_i x_i|, covered by the
            // bound with n + 4 for n (k1, k2 above).
            double s4[4] = {with_bias ? row.bias : 0.0, 0.0, 0.0, 0.0};
            double c4[4] = {0.0, 0.0, 0.0, 0.0};
            double a4[4] = {0.0, 0.0, 0.0, 0.0};
            double l4[4] = {0.0, 0.0, 0.0, 0.0};
            double e4[4] = {0.0, 0.0, 0.0, 0.0};  // sum |w_i| err_i: the input's error
            const Index count = row.count;
            Index i = 0;
            for (; i + 4 <= count; i += 4) {
                for (int lane = 0; lane < 4; ++lane) {
                    const Index col = row.cols != nullptr ? row.cols[i + lane] : i + lane;
                    const double w = row.values[i + lane];
                    const DD p = two_prod(w, h_hi_[sz(col)]);
                    const DD q = two_sum(s4[lane], p.hi);
                    s4[lane] = q.hi;
                    const double wl = w * h_lo_[sz(col)];
                    c4[lane] += (q.lo + p.lo) + wl;
                    a4[lane] += std::abs(p.hi);
                    l4[lane] += std::abs(wl);
                    e4[lane] += std::abs(w) * h_err_[sz(col)];
                }
            }
            for (; i < count; ++i) {
                const Index col = row.cols != nullptr ? row.cols[i] : i;
                const double w = row.values[i];
                const DD p = two_prod(w, h_hi_[sz(col)]);
                const DD q = two_sum(s4[0], p.hi);
                s4[0] = q.hi;
                const double wl = w * h_lo_[sz(col)];
                c4[0] += (q.lo + p.lo) + wl;
                a4[0] += std::abs(p.hi);
                l4[0] += std::abs(wl);
                e4[0] += std::abs(w) * h_err_[sz(col)];
            }
            double s = s4[0], c = c4[0] + c4[1] + c4[2] + c4[3];
            for (int lane = 1; lane < 4; ++lane) {
                const DD q = two_sum(s, s4[lane]);
                s = q.hi;
                c += q.lo;
            }
            const double absum =
                (with_bias ? std::abs(row.bias) : 0.0) + a4[0] + a4[1] + a4[2] + a4[3];
            const double abslo = l4[0] + l4[1] + l4[2] + l4[3];
            const DD v = two_sum(s, c);
            z.hi[sz(r)] = v.hi;
            z.lo[sz(r)] = v.lo;
            // The input's error: componentwise (sum |w_i| err_i) or by Cauchy-Schwarz
            // (||W_j|| times its l2 norm), the smaller; the float sums of non-negative
            // terms err by at most gamma_n relative.
            const double propagated =
                std::min(e4[0] + e4[1] + e4[2] + e4[3], map.row_norms()[sz(r)] * input_error);
            z.err[sz(r)] = kSafety * (k1 * absum + k2 * abslo + (1.0 + gn) * propagated);
        }
        if (finish_layer(l)) break;
    }
}

namespace {

// Whether a cached evaluation's key matches: the same line, layers and pattern (the
// bits of the layers below `upto` only: the last word is masked).
bool same_key(const Network& net, const double* x0, const double* x1, Index upto,
              const Word* pattern, const double* key_x0, const double* key_x1, Index key_upto,
              const std::vector<Word>& key_pattern) {
    const Index bits = net.neuron_offset(upto);
    const Index words = words_for(bits);
    if (key_x0 != x0 || key_x1 != x1 || key_upto != upto ||
        static_cast<Index>(key_pattern.size()) != words)
        return false;
    for (Index w = 0; w < words; ++w) {
        Word mask = ~Word{0};
        if (w == words - 1 && bits % kWordBits != 0) mask = (Word{1} << (bits % kWordBits)) - 1;
        if (((pattern[w] ^ key_pattern[sz(w)]) & mask) != 0) return false;
    }
    return true;
}

}  // namespace

namespace {

// One step of the pattern's prefix hash (splitmix64's finaliser on the running state).
std::uint64_t hash_step(std::uint64_t h, Word w) {
    std::uint64_t x = h ^ (w + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

// query_hash_[l] = the hash of the pattern's bits of layers < l, for l = 0..upto (the
// last word of a prefix masked): an entry of layer l is a candidate only when its hash
// equals query_hash_[l] (then its bits are compared: same_prefix).
void PathOracle::prefix_hashes(const Word* pattern, Index upto) {
    query_hash_.resize(sz(upto) + 1);
    std::uint64_t h = 0;  // over the whole words before `word`
    Index word = 0;
    for (Index l = 0; l <= upto; ++l) {
        const Index bits = net_.neuron_offset(l);
        for (; word < bits / kWordBits; ++word) h = hash_step(h, pattern[word]);
        const Index rest = bits % kWordBits;
        query_hash_[sz(l)] = rest == 0 ? h : hash_step(h, pattern[word] & ((Word{1} << rest) - 1));
    }
}

namespace {

// Whether two patterns agree on their first `bits` bits.
bool same_bits(const Word* pattern, const std::vector<Word>& key, Index bits) {
    const Index words = words_for(bits);
    for (Index w = 0; w < words; ++w) {
        Word diff = pattern[w] ^ key[sz(w)];
        if (w == words - 1 && bits % kWordBits != 0) diff &= (Word{1} << (bits % kWordBits)) - 1;
        if (diff != 0) return false;
    }
    return true;
}

}  // namespace

// Whether the query's pattern agrees with the entry's on the bits of layers < e.upto.
bool PathOracle::same_prefix(const Word* pattern, const Entry& e) const {
    return same_bits(pattern, e.pattern, net_.neuron_offset(e.upto));
}

PathOracle::PathOracle(const Network& net) : net_(net) {
    // A debugging knob (docs/numerics.md §4): the cache's memory in MB; 0 turns resuming
    // off, every pass starting from the input (tests compare the two).
    if (const char* mb = std::getenv("LRCORE_PASS_CACHE_MB"); mb != nullptr && *mb != '\0')
        cache_limit_ = std::max(0.0, std::atof(mb)) * 1024.0 * 1024.0;
}

// The memory of an entry of layer `upto` (c and, for a line, d; the pattern's words).
double PathOracle::entry_bytes(Index upto, bool line) const {
    return 8.0 * (3.0 * static_cast<double>(net_.layer(upto).out_dim()) * (line ? 2.0 : 1.0) +
                  static_cast<double>(words_for(net_.neuron_offset(upto))));
}

// An entry's priority (GreedyDual-Size, Cao and Irani 1997): the cache's inflation (the
// priority of the last entry evicted) plus the work a resume from it saves (the pass's
// multiply-adds through its layer) per byte; the lowest is replaced first. The
// shallow layers' entries are large and save little, the deep ones small and save much.
double PathOracle::priority_of(const Entry& e) const {
    double saved = 0.0;
    for (Index l = 0; l <= e.upto; ++l) saved += net_.layer(l).multiply_adds();
    return inflation_ + saved / e.bytes;
}

void PathOracle::reset() {
    inflation_ = 0.0;
    for (Entry& e : entries_) e = Entry{};
    cache_bytes_ = 0.0;
    current_ = nullptr;
    same_vertex_ = false;
    exact_x0_ = exact_x1_ = nullptr;
    exact_upto_ = -1;
    for (PlaneEntry& e : plane_entries_) e = PlaneEntry{};
    plane_current_ = nullptr;
    exact_plane_origin_ = nullptr;
    exact_plane_upto_ = -1;
}

PathOracle::Value PathOracle::c_at(Index l, Index k) const {
    if (l == current_->upto) {
        const LayerValues& z = current_->c;
        return {z.hi[sz(k)], z.lo[sz(k)], z.err[sz(k)]};
    }
    return current_->pin_c;  // evaluate() pinned (l, k)
}

PathOracle::Value PathOracle::d_at(Index l, Index k) const {
    if (l == current_->upto) {
        const LayerValues& z = current_->d;
        return {z.hi[sz(k)], z.lo[sz(k)], z.err[sz(k)]};
    }
    return current_->pin_d;
}

// A free entry for a pass's layer `upto` (those of lowest priority replaced until the
// cache's memory has room for it), never `source` or an entry of the current pass
// (stamp > protect); null when every slot holds one of those.
PathOracle::Entry* PathOracle::new_entry(const Entry* source, Index upto, bool line,
                                         Index protect) {
    if (entries_.capacity() == 0) entries_.reserve(kMaxEntries);
    const double bytes = entry_bytes(upto, line);
    Entry* slot = nullptr;
    for (;;) {
        Entry* oldest = nullptr;
        for (Entry& e : entries_) {
            if (e.upto < 0) {
                if (slot == nullptr) slot = &e;
            } else if (&e != source && e.stamp <= protect &&
                       (oldest == nullptr || e.priority < oldest->priority ||
                        (e.priority == oldest->priority && e.stamp < oldest->stamp))) {
                oldest = &e;
            }
        }
        const bool full = cache_bytes_ + bytes > cache_limit_ ||
                          (slot == nullptr && entries_.size() == kMaxEntries);
        if (!full || oldest == nullptr) break;
        cache_bytes_ -= oldest->bytes;
        inflation_ = std::max(inflation_, oldest->priority);
        *oldest = Entry{};
        if (slot == nullptr) slot = oldest;
    }
    if (slot == nullptr) {
        if (entries_.size() == kMaxEntries) return nullptr;  // no reallocation: pointed to
        entries_.emplace_back();
        slot = &entries_.back();
    }
    slot->upto = upto;  // taken
    slot->bytes = bytes;
    cache_bytes_ += bytes;
    return slot;
}

void PathOracle::evaluate(const double* x0, const double* x1, const Word* pattern, Index upto,
                          Index keep_layer, Index keep_unit) {
    const bool same_vertex = same_vertex_;
    same_vertex_ = false;
    const bool line = x1 != nullptr;
    // Whether an entry (whose key agrees with the query below its layer) holds the kept
    // value, or the pass from it computes it.
    auto keeps = [&](const Entry& e) {
        return !line || keep_layer >= e.upto ||
               (e.pin_layer == keep_layer && e.pin_unit == keep_unit);
    };
    if (same_vertex && current_ != nullptr && current_->upto == upto && keeps(*current_)) {
        current_->stamp = ++clock_;
        current_->priority = priority_of(*current_);
        return;
    }
    ++clock_;
    // The entry on the same line of the deepest layer <= upto whose key agrees.
    prefix_hashes(pattern, upto);
    Entry* source = nullptr;
    for (Entry& e : entries_) {
        if (cache_limit_ <= 0.0) break;  // LRCORE_PASS_CACHE_MB=0: every pass from the input
        if (e.upto < 0 || e.x0 != x0 || e.x1 != x1 || e.upto > upto) continue;
        if (source != nullptr && e.upto <= source->upto) continue;
        if (e.hash != query_hash_[sz(e.upto)] || !keeps(e) || !same_prefix(pattern, e)) continue;
        source = &e;
    }
    if (source != nullptr && source->upto == upto) {  // the query's layer is cached
        source->stamp = clock_;
        source->priority = priority_of(*source);
        current_ = source;
        return;
    }
    const Index from = source != nullptr ? source->upto + 1 : 0;
    if (source != nullptr) source->priority = priority_of(*source);
    ++evaluations_;
    // Every layer the pass computes becomes an entry (its key: the pattern's bits below
    // it), so that a query sharing a shorter prefix resumes from it.
    const Index protect = clock_;
    snap_c_.assign(sz(upto) + 1, nullptr);
    snap_d_.assign(sz(upto) + 1, nullptr);
    std::vector<Entry*> made(sz(upto) + 1, nullptr);
    for (Index l = upto; l >= from; --l) {  // the pass's own layer first
        Entry* e = new_entry(source, l, line, protect);
        if (e == nullptr) {
            if (l < upto) break;  // no slot for the shallower layers: not kept
            spare_ = Entry{};     // never a source (not in entries_)
            e = &spare_;
            e->upto = upto;
        }
        e->x0 = x0;
        e->x1 = x1;
        e->pattern.assign(pattern, pattern + words_for(net_.neuron_offset(l)));
        e->hash = query_hash_[sz(l)];
        e->stamp = protect + 1 + (l - from);  // deeper layers more recent
        made[sz(l)] = e;
        if (l < upto) {
            snap_c_[sz(l)] = &e->c;
            snap_d_[sz(l)] = &e->d;
        }
    }
    clock_ = protect + 1 + (upto - from);
    for (Index l = from; l <= upto; ++l)
        if (made[sz(l)] != nullptr) made[sz(l)]->priority = priority_of(*made[sz(l)]);
    Entry& entry = *made[sz(upto)];
    Value pin_c, pin_d;
    if (line && keep_layer < upto && source != nullptr && keep_layer <= source->upto) {
        const LayerValues* c = &source->c;
        const LayerValues* d = &source->d;
        if (keep_layer == source->upto) {
            pin_c = {c->hi[sz(keep_unit)], c->lo[sz(keep_unit)], c->err[sz(keep_unit)]};
            pin_d = {d->hi[sz(keep_unit)], d->lo[sz(keep_unit)], d->err[sz(keep_unit)]};
        } else {
            pin_c = source->pin_c;
            pin_d = source->pin_d;
        }
    }
    forward(x0, nullptr, true, pattern, source != nullptr ? &source->c : nullptr, from, upto,
            keep_layer, keep_unit, pin_c, entry.c, snap_c_);
    if (line) {
        // The direction x1 - x0, exact as a double-double.
        const Index d = net_.input_dim();
        std::vector<double> dir_hi(sz(d)), dir_lo(sz(d));
        for (Index i = 0; i < d; ++i) {
            const DD v = two_sum(x1[i], -x0[i]);
            dir_hi[sz(i)] = v.hi;
            dir_lo[sz(i)] = v.lo;
        }
        forward(dir_hi.data(), dir_lo.data(), false, pattern,
                source != nullptr ? &source->d : nullptr, from, upto, keep_layer, keep_unit, pin_d,
                entry.d, snap_d_);
    }
    // A root's own neuron, pinned in the entries of the layers above it.
    if (line) {
        for (Index l = std::max(from, keep_layer + 1); l <= upto; ++l) {
            if (made[sz(l)] == nullptr) continue;
            Entry& e = *made[sz(l)];
            e.pin_layer = keep_layer;
            e.pin_unit = keep_unit;
            e.pin_c = pin_c;
            e.pin_d = pin_d;
        }
    }
    current_ = &entry;
}

// --- The exact tier: expansion arithmetic (Shewchuk, "Adaptive precision floating-point
// arithmetic and fast robust geometric predicates", 1997). Sums and products of float64
// numbers are exact as expansions while no product underflows (|w x| >= 2^-969 keeps
// the low part of TwoProd a normal number); exact_ok_ records that.

namespace {

// |a| >= |b| (or a == 0): a + b = x + y exactly.
DD fast_two_sum(double a, double b) {
    const double x = a + b;
    return {x, b - (x - a)};
}

// e + b (Grow-Expansion with zero elimination).
void grow(Expansion& e, double b, Expansion& scratch) {
    scratch.clear();
    double q = b;
    for (const double component : e) {
        const DD s = two_sum(q, component);
        if (s.lo != 0.0) scratch.push_back(s.lo);
        q = s.hi;
    }
    if (q != 0.0) scratch.push_back(q);
    e.swap(scratch);
}

// e * b (Scale-Expansion with zero elimination), appended to `out` as its own expansion.
void scale(const Expansion& e, double b, Expansion& out, bool& ok) {
    out.clear();
    if (e.empty() || b == 0.0) return;
    DD p = two_prod(e[0], b);
    if (p.hi != 0.0 && std::abs(p.hi) < 0x1p-969) ok = false;
    if (p.lo != 0.0) out.push_back(p.lo);
    double q = p.hi;
    for (std::size_t i = 1; i < e.size(); ++i) {
        const DD prod = two_prod(e[i], b);
        if (prod.hi != 0.0 && std::abs(prod.hi) < 0x1p-969) ok = false;
        const DD sum = two_sum(q, prod.lo);
        if (sum.lo != 0.0) out.push_back(sum.lo);
        const DD top = fast_two_sum(prod.hi, sum.hi);
        if (top.lo != 0.0) out.push_back(top.lo);
        q = top.hi;
    }
    if (q != 0.0) out.push_back(q);
}

// e + f: f's components grown into e one at a time.
void add(Expansion& e, const Expansion& f, Expansion& scratch) {
    for (const double component : f) grow(e, component, scratch);
}

// Compress (Shewchuk): the same value in fewer, larger components.
void compress(Expansion& e) {
    const std::size_t m = e.size();
    if (m < 2) return;
    Expansion h(m);
    std::size_t bottom = m - 1;
    double q = e[m - 1];
    for (std::size_t i = m - 1; i-- > 0;) {
        const DD s = fast_two_sum(q, e[i]);
        if (s.lo != 0.0) {
            h[bottom--] = s.hi;
            q = s.lo;
        } else {
            q = s.hi;
        }
    }
    std::size_t top = 0;
    for (std::size_t i = bottom + 1; i < m; ++i) {
        const DD s = fast_two_sum(h[i], q);
        if (s.lo != 0.0) h[top++] = s.lo;
        q = s.hi;
    }
    h[top++] = q;
    h.resize(top);
    if (h.size() == 1 && h[0] == 0.0) h.clear();
    e.swap(h);
}

// e * f exactly.
Expansion multiply(const Expansion& e, const Expansion& f, bool& ok) {
    Expansion out, term, scratch;
    for (const double component : f) {
        scale(e, component, term, ok);
        add(out, term, scratch);
    }
    compress(out);
    return out;
}

int sign_of_expansion(const Expansion& e) {
    if (e.empty()) return 0;
    return e.back() > 0.0 ? 1 : -1;
}

}  // namespace

// The forced-pattern forward pass, exactly.
void PathOracle::forward_exact(std::vector<Expansion> h, bool with_bias, const Word* pattern,
                               Index upto, std::vector<std::vector<Expansion>>& out) {
    out.assign(sz(upto) + 1, {});
    Expansion term, scratch;
    for (Index l = 0; l <= upto; ++l) {
        const AffineMap& map = net_.layer(l);
        const Index m = map.out_dim();
        std::vector<Expansion>& z = out[sz(l)];
        z.assign(sz(m), {});
        for (Index r = 0; r < m; ++r) {
            const AffineRow row = map.row(r, row_values_, row_cols_);
            Expansion& sum = z[sz(r)];
            if (with_bias && row.bias != 0.0) sum.push_back(row.bias);
            for (Index i = 0; i < row.count; ++i) {
                const Index col = row.cols != nullptr ? row.cols[i] : i;
                scale(h[sz(col)], row.values[i], term, exact_ok_);
                // Every component operation counts: the scaling's (one per component of
                // h) and the merge's (one per component of the sum and of the term).
                work_ += static_cast<double>(h[sz(col)].size() + term.size() + sum.size());
                add(sum, term, scratch);
                if (sum.size() > 64) compress(sum);
            }
            compress(sum);
            // Past its limit the evaluation stops (row by row: the overshoot is one row's).
            if (exact_stop_at_ >= 0.0 && work_ > exact_stop_at_) {
                exact_stopped_ = true;
                return;
            }
        }
        if (l == upto) break;
        const Activation& act = net_.activation(l);
        const Index neurons = net_.hidden_size(l);
        const Index offset = net_.neuron_offset(l);
        h.assign(sz(m), {});
        for (Index j = 0; j < m; ++j) {
            if (j < neurons && ((pattern[(offset + j) / kWordBits] >> ((offset + j) % kWordBits)) &
                                Word{1}) == 0) {
                if (act.kind != ActivationKind::relu)
                    scale(z[sz(j)], act.negative_slope, h[sz(j)], exact_ok_);
            } else {
                h[sz(j)] = z[sz(j)];
            }
        }
    }
}

bool PathOracle::evaluate_exact(const double* x0, const double* x1, const Word* pattern,
                                Index upto) {
    if (same_key(net_, x0, x1, upto, pattern, exact_x0_, exact_x1_, exact_upto_, exact_pattern_))
        return true;
    if (exact_limit_ >= 0.0) {
        // Not started where its lower estimate (the layers' multiply-adds, twice for a
        // line, each an expansion of at least one component) exceeds the limit.
        double estimate = 0.0;
        for (Index l = 0; l <= upto; ++l) estimate += net_.layer(l).multiply_adds();
        if (x1 != nullptr) estimate *= 2.0;
        if (estimate > exact_limit_) return false;
    }
    ++exact_evaluations_;
    exact_stop_at_ = exact_limit_ < 0.0 ? -1.0 : work_ + exact_limit_;
    exact_stopped_ = false;
    exact_plane_origin_ = nullptr;  // exact_c_ is shared with plane_pass_exact
    exact_x0_ = x0;
    exact_x1_ = x1;
    exact_upto_ = upto;
    exact_pattern_.assign(pattern, pattern + words_for(net_.neuron_offset(upto)));
    exact_ok_ = true;
    const Index d = net_.input_dim();
    std::vector<Expansion> h(sz(d));
    for (Index i = 0; i < d; ++i)
        if (x0[i] != 0.0) h[sz(i)] = {x0[i]};
    forward_exact(h, true, pattern, upto, exact_c_);
    if (x1 != nullptr && !exact_stopped_) {
        for (Index i = 0; i < d; ++i) {
            const DD v = two_sum(x1[i], -x0[i]);
            h[sz(i)].clear();
            if (v.lo != 0.0) h[sz(i)].push_back(v.lo);
            if (v.hi != 0.0) h[sz(i)].push_back(v.hi);
        }
        forward_exact(h, false, pattern, upto, exact_d_);
    }
    if (exact_stopped_) {
        exact_x0_ = nullptr;  // nothing cached: the evaluation did not finish
        exact_upto_ = -1;
        return false;
    }
    return true;
}

SlowDecision PathOracle::sign_at_point(const double* x, const Word* pattern, Index lk, Index k) {
    evaluate(x, nullptr, pattern, lk, lk, k);
    const LayerValues& z = current_->c;
    SlowDecision out;
    const double hi = z.hi[sz(k)], lo = z.lo[sz(k)];
    out.value = hi;
    if (lower_magnitude(hi, lo) > z.err[sz(k)]) {
        out.decided = true;
        out.sign = hi > 0.0 ? 1 : -1;
        return out;
    }
    if (!evaluate_exact(x, nullptr, pattern, lk)) {
        out.skipped = true;
        return out;
    }
    if (!exact_ok_) {  // a product underflowed: the expansions are not exact
        out.skipped = true;
        return out;
    }
    out.sign = sign_of_expansion(exact_c_[sz(lk)][sz(k)]);
    out.decided = out.sign != 0;
    return out;
}

// D = c_k d_j - c_j d_k (layer lk's neuron k, the root's neuron j of layer lj) from the
// current pass, and a bound on its error: g_k(t*) = D / d_j at the root t* of neuron j.
DD PathOracle::root_determinant(Index lj, Index j, Index lk, Index k, double& err) const {
    const Value cj = c_at(lj, j), dj = d_at(lj, j), ck = c_at(lk, k), dk = d_at(lk, k);
    const DD c_j{cj.hi, cj.lo}, d_j{dj.hi, dj.lo};
    const DD c_k{ck.hi, ck.lo}, d_k{dk.hi, dk.lo};
    const double e_cj = cj.err, e_dj = dj.err;
    const double e_ck = ck.err, e_dk = dk.err;
    double err1 = 0.0, err2 = 0.0;
    const DD p1 = mul(c_k, d_j, err1);
    const DD p2 = mul(c_j, d_k, err2);
    const DD top = two_sum(p1.hi, -p2.hi);
    const DD D = two_sum(top.hi, top.lo + (p1.lo - p2.lo));
    const double m_ck = magnitude(c_k.hi, c_k.lo), m_dj = magnitude(d_j.hi, d_j.lo);
    const double m_cj = magnitude(c_j.hi, c_j.lo), m_dk = magnitude(d_k.hi, d_k.lo);
    err = kSafety * (err1 + err2 + 4.0 * u * u * (m_ck * m_dj + m_cj * m_dk) + m_ck * e_dj +
                     m_dj * e_ck + e_ck * e_dj + m_cj * e_dk + m_dk * e_cj + e_cj * e_dk);
    return D;
}

SlowDecision PathOracle::sign_at_root(const double* x0, const double* x1, const Word* pattern,
                                      Index lj, Index j, int d_sign, Index lk, Index k) {
    evaluate(x0, x1, pattern, lk, lj, j);
    const Value dj = d_at(lj, j);
    const DD d_j{dj.hi, dj.lo};
    double err = 0.0;
    const DD D = root_determinant(lj, j, lk, k, err);
    SlowDecision out;
    out.value = d_j.hi != 0.0 ? D.hi / d_j.hi : 0.0;
    if (lower_magnitude(D.hi, D.lo) > err) {
        out.decided = true;
        out.sign = (D.hi > 0.0 ? 1 : -1) * d_sign;
        return out;
    }
    // The exact tier: D = c_k d_j - c_j d_k in expansion arithmetic.
    if (!evaluate_exact(x0, x1, pattern, lk)) {
        out.skipped = true;
        return out;
    }
    Expansion det = multiply(exact_c_[sz(lk)][sz(k)], exact_d_[sz(lj)][sz(j)], exact_ok_);
    Expansion second = multiply(exact_c_[sz(lj)][sz(j)], exact_d_[sz(lk)][sz(k)], exact_ok_);
    for (double& component : second) component = -component;
    Expansion scratch;
    add(det, second, scratch);
    if (!exact_ok_) {  // a product underflowed: the expansions are not exact
        out.skipped = true;
        return out;
    }
    out.sign = sign_of_expansion(det) * d_sign;
    out.decided = out.sign != 0;
    return out;
}

bool PathOracle::vertex_values(Index lj, Index j, Index lk, std::vector<double>& value,
                               std::vector<double>& error) const {
    if (current_ == nullptr) return false;
    if (current_->upto != lk) return false;
    const LayerValues& ck = current_->c;
    const Index m = static_cast<Index>(ck.hi.size());
    value.resize(sz(m));
    error.resize(sz(m));
    if (lj < 0) {
        // A polyline point: |hi - z*| <= |lo| + |hi + lo - z*|.
        for (Index k = 0; k < m; ++k) {
            value[sz(k)] = ck.hi[sz(k)];
            error[sz(k)] = (std::abs(ck.lo[sz(k)]) + ck.err[sz(k)]) * (1.0 + 4.0 * u);
        }
        return true;
    }
    // A root: z*_k = D*_k / d*_j. With D~ = D.hi + D.lo, d~ = d_j.hi + d_j.lo within eD, ed
    // of them, |D~/d~ - D*/d*| = |D~ (d* - d~) + d~ (D~ - D*)| / |d~ d*|
    // <= (|D~| ed + |d~| eD) / (|d~| (|d~| - ed)); fl(D.hi / d_j.hi) is within 4u of D~/d~
    // relative (the low parts at most u each, the division's rounding).
    const Value dj = d_at(lj, j);
    const double d_hi = dj.hi, d_lo = dj.lo, ed = dj.err;
    const double d_up = magnitude(d_hi, d_lo), d_down = lower_magnitude(d_hi, d_lo);
    if (!(d_down - ed > 0.0)) return false;
    const double den = d_down * ((d_down - ed) * (1.0 - 2.0 * u));
    for (Index k = 0; k < m; ++k) {
        double e_d = 0.0;
        const DD D = root_determinant(lj, j, lk, k, e_d);
        const double q = D.hi / d_hi;
        value[sz(k)] = q;
        error[sz(k)] =
            kSafety * ((magnitude(D.hi, D.lo) * ed + d_up * e_d) / den + 4.0 * u * std::abs(q));
    }
    return true;
}

namespace {

bool zero_row(const Network& net, const Word* pattern, Index layer, Index k, Index depth,
              Index& budget, StructuralRows& rows) {
    if (layer == 0 || depth >= StructuralRows::kDepth) return false;  // the input is not zero
    const AffineMap& map = net.layer(layer);
    if (map.abs_bias()[sz(k)] != 0.0) return false;
    if (rows.values.size() <= sz(depth)) {
        rows.values.resize(sz(depth) + 1);
        rows.cols.resize(sz(depth) + 1);
    }
    const AffineRow row = map.row(k, rows.values[sz(depth)], rows.cols[sz(depth)]);
    const Index below = layer - 1;
    const Activation& act = net.activation(below);
    const bool off_is_zero = act.kind == ActivationKind::relu || act.negative_slope == 0.0;
    const Index neurons = net.hidden_size(below);
    const Index offset = net.neuron_offset(below);
    if (row.count > budget) return false;
    budget -= row.count;
    for (Index i = 0; i < row.count; ++i) {
        if (row.values[i] == 0.0) continue;
        const Index col = row.cols != nullptr ? row.cols[i] : i;
        if (col < neurons) {
            if (pattern_bit(pattern, offset + col) || !off_is_zero) return false;
        } else if (!zero_row(net, pattern, below, col, depth + 1, budget, rows)) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool structural_zero_row(const Network& net, const Word* pattern, Index layer, Index k,
                         StructuralRows& rows) {
    Index budget = StructuralRows::kTerms;  // row entries looked at, at most
    return zero_row(net, pattern, layer, k, 0, budget, rows);
}

// --- 2D slices: lines of the plane and the sign of a neuron where two of them meet
// (docs/numerics.md §6).

namespace {

// A double-double with a bound on its distance to an exact real.
struct Bounded {
    DD x;
    double e = 0.0;
};

// a * b: mul's rounding plus the operands' errors, |a b - a* b*| <= |a| eb + |b*| ea with
// |b*| <= |b| + eb.
Bounded times(const Bounded& a, const Bounded& b) {
    double err = 0.0;
    const DD p = mul(a.x, b.x, err);
    const double ma = magnitude(a.x.hi, a.x.lo), mb = magnitude(b.x.hi, b.x.lo);
    return {p, kSafety * (err + ma * b.e + (mb + b.e) * a.e)};
}

// a + b: hi + lo = s.hi + fl(fl(s.lo + a.lo) + b.lo) exactly (TwoSum), the float sum of
// three terms within gamma_2 < 3u of their sum.
Bounded plus(const Bounded& a, const Bounded& b) {
    const DD s = two_sum(a.x.hi, b.x.hi);
    const double t = (s.lo + a.x.lo) + b.x.lo;
    const DD r = two_sum(s.hi, t);
    const double round = 3.0 * u * (std::abs(s.lo) + std::abs(a.x.lo) + std::abs(b.x.lo));
    return {r, kSafety * (a.e + b.e + round)};
}

Bounded negated(const Bounded& a) { return {{-a.x.hi, -a.x.lo}, a.e}; }

// a1 b2 - a2 b1.
Bounded det2(const Bounded& a1, const Bounded& b1, const Bounded& a2, const Bounded& b2) {
    return plus(times(a1, b2), negated(times(a2, b1)));
}

bool away_from_zero(const Bounded& a) { return lower_magnitude(a.x.hi, a.x.lo) > a.e; }

Expansion expansion_of(DD x) {
    Expansion e;
    if (x.lo != 0.0) e.push_back(x.lo);
    if (x.hi != 0.0) e.push_back(x.hi);
    return e;
}

Expansion exact_sum(Expansion a, const Expansion& b) {
    Expansion scratch;
    add(a, b, scratch);
    compress(a);
    return a;
}

Expansion exact_negated(Expansion a) {
    for (double& c : a) c = -c;
    return a;
}

Expansion exact_det2(const Expansion& a1, const Expansion& b1, const Expansion& a2,
                     const Expansion& b2, bool& ok) {
    return exact_sum(multiply(a1, b2, ok), exact_negated(multiply(a2, b1, ok)));
}

}  // namespace

PlaneLine plane_line_through(double sa, double ta, double sb, double tb) {
    const DD du = two_sum(tb, -ta);
    const DD dv = two_sum(sa, -sb);
    double e1 = 0.0, e2 = 0.0;
    const DD p1 = mul({sb, 0.0}, {ta, 0.0}, e1);
    const DD p2 = mul({sa, 0.0}, {tb, 0.0}, e2);
    const Bounded c = plus({p1, e1}, {{-p2.hi, -p2.lo}, e2});
    PlaneLine line;
    line.c = c.x;
    line.ec = c.e;
    line.u = du;
    line.v = dv;
    return line;
}

ExactPlaneLine plane_line_exact_through(double sa, double ta, double sb, double tb) {
    ExactPlaneLine line;
    line.u = expansion_of(two_sum(tb, -ta));
    line.v = expansion_of(two_sum(sa, -sb));
    line.c =
        exact_sum(expansion_of(two_prod(sb, ta)), exact_negated(expansion_of(two_prod(sa, tb))));
    return line;
}

SlowDecision sign_at_intersection(const PlaneLine& a, const PlaneLine& b, const PlaneLine& k,
                                  double* error) {
    const Bounded ca{a.c, a.ec}, ua{a.u, a.eu}, va{a.v, a.ev};
    const Bounded cb{b.c, b.ec}, ub{b.u, b.eu}, vb{b.v, b.ev};
    const Bounded ck{k.c, k.ec}, uk{k.u, k.eu}, vk{k.v, k.ev};
    // g_k(point) = det3 / D: D = ua vb - ub va, det3 = ck D + uk (cb va - ca vb) +
    // vk (ca ub - ua cb) (the 3 x 3 determinant expanded along its last row).
    const Bounded D = det2(ua, va, ub, vb);
    const Bounded det3 =
        plus(plus(times(ck, D), times(uk, det2(cb, ca, vb, va))), times(vk, det2(ca, ua, cb, ub)));
    SlowDecision out;
    if (error != nullptr) *error = -1.0;
    if (!away_from_zero(D)) return out;
    out.value = det3.x.hi / D.x.hi;
    if (error != nullptr) {
        // |det3~/D~ - det3*/D*| <= (|det3~| eD + |D~| e3) / (|D~| (|D~| - eD)), and
        // fl(det3.hi / D.hi) within 4u of det3~/D~ relative (as PathOracle::vertex_values).
        const double d_up = magnitude(D.x.hi, D.x.lo), d_down = lower_magnitude(D.x.hi, D.x.lo);
        const double den = d_down * ((d_down - D.e) * (1.0 - 2.0 * u));
        *error = kSafety * ((magnitude(det3.x.hi, det3.x.lo) * D.e + d_up * det3.e) / den +
                            4.0 * u * std::abs(out.value));
    }
    if (!away_from_zero(det3)) return out;
    out.decided = true;
    out.sign = (det3.x.hi > 0.0) == (D.x.hi > 0.0) ? 1 : -1;
    return out;
}

SlowDecision sign_at_intersection_exact(const ExactPlaneLine& a, const ExactPlaneLine& b,
                                        const ExactPlaneLine& k, bool& ok) {
    const Expansion D = exact_det2(a.u, a.v, b.u, b.v, ok);
    SlowDecision out;
    if (sign_of_expansion(D) == 0) return out;  // parallel: no point
    Expansion det3 = multiply(k.c, D, ok);
    det3 = exact_sum(std::move(det3), multiply(k.u, exact_det2(b.c, a.c, b.v, a.v, ok), ok));
    det3 = exact_sum(std::move(det3), multiply(k.v, exact_det2(a.c, a.u, b.c, b.u, ok), ok));
    out.sign = sign_of_expansion(det3) * sign_of_expansion(D);
    out.decided = ok;
    return out;
}

bool PathOracle::plane_matches(const PlaneEntry& e, const double* origin, const Word* pattern,
                               Index upto) const {
    return e.upto >= upto && e.origin == origin &&
           same_bits(pattern, e.pattern, net_.neuron_offset(upto));
}

void PathOracle::plane_pass(const double* origin, const double* basis, const Word* pattern,
                            Index upto) {
    ++clock_;
    PlaneEntry* slot = nullptr;
    PlaneEntry* source = nullptr;  // the deepest shallower pass with the query's prefix
    for (PlaneEntry& e : plane_entries_) {
        if (plane_matches(e, origin, pattern, upto)) {
            e.stamp = clock_;
            plane_current_ = &e;
            return;
        }
        if (e.upto >= 0 && e.upto < upto && e.origin == origin &&
            (source == nullptr || e.upto > source->upto) &&
            same_bits(pattern, e.pattern, net_.neuron_offset(e.upto)))
            source = &e;
        if (slot == nullptr || e.stamp < slot->stamp) slot = &e;
    }
    // A pass of layers 0..upto' under a pattern that agrees with the query's below upto'
    // holds the query's layers 0..upto' (layer l depends on the bits below l only): it is
    // extended in place (its key becomes the query's, which agrees with the old one
    // wherever the old one was used), and only layers upto' + 1..upto are computed.
    const Index from = source != nullptr ? source->upto + 1 : 0;
    if (source != nullptr) {
        slot = source;
    } else if (plane_entries_.size() < kPlaneEntries) {
        plane_entries_.reserve(kPlaneEntries);  // once: entries are pointed to
        plane_entries_.emplace_back();
        slot = &plane_entries_.back();
    }
    ++evaluations_;
    // Bounded by the cache's memory as the 1D entries (the oldest others freed first; the
    // new one is kept whatever its size).
    double bytes = 0.0;
    for (Index l = 0; l <= upto; ++l)
        bytes += 72.0 * static_cast<double>(net_.layer(l).out_dim());  // 3 passes, 3 doubles
    for (;;) {
        double held = 0.0;
        PlaneEntry* oldest = nullptr;
        for (PlaneEntry& other : plane_entries_) {
            if (&other == slot || other.upto < 0) continue;
            held += other.bytes;
            if (oldest == nullptr || other.stamp < oldest->stamp) oldest = &other;
        }
        if (oldest == nullptr || held + bytes <= cache_limit_) break;
        *oldest = PlaneEntry{};
    }
    PlaneEntry& e = *slot;
    e.bytes = bytes;
    e.origin = origin;
    e.upto = upto;
    e.stamp = clock_;
    e.pattern.assign(pattern, pattern + words_for(net_.neuron_offset(upto)));
    const Index d = net_.input_dim();
    Value unused;
    for (int which = 0; which < 3; ++which) {
        std::vector<LayerValues>& layers = which == 0 ? e.c : which == 1 ? e.u : e.v;
        layers.resize(sz(upto) + 1);
        std::vector<LayerValues*> snaps(sz(upto) + 1, nullptr);
        for (Index l = from; l < upto; ++l) snaps[sz(l)] = &layers[sz(l)];
        const double* x = which == 0 ? origin : basis + (which - 1) * d;
        forward(x, nullptr, which == 0, pattern, from > 0 ? &layers[sz(from) - 1] : nullptr, from,
                upto, -1, -1, unused, layers[sz(upto)], snaps);
    }
    plane_current_ = &e;
}

PlaneLine PathOracle::plane_line(Index l, Index k) const {
    const PlaneEntry& e = *plane_current_;
    const LayerValues& c = e.c[sz(l)];
    const LayerValues& du = e.u[sz(l)];
    const LayerValues& dv = e.v[sz(l)];
    PlaneLine line;
    line.c = {c.hi[sz(k)], c.lo[sz(k)]};
    line.ec = c.err[sz(k)];
    line.u = {du.hi[sz(k)], du.lo[sz(k)]};
    line.eu = du.err[sz(k)];
    line.v = {dv.hi[sz(k)], dv.lo[sz(k)]};
    line.ev = dv.err[sz(k)];
    return line;
}

bool PathOracle::plane_pass_exact(const double* origin, const double* basis, const Word* pattern,
                                  Index upto) {
    if (exact_plane_origin_ == origin && exact_plane_upto_ >= upto &&
        same_bits(pattern, exact_plane_pattern_, net_.neuron_offset(upto)))
        return true;
    if (exact_limit_ >= 0.0) {
        double estimate = 0.0;  // as evaluate_exact's: three passes
        for (Index l = 0; l <= upto; ++l) estimate += net_.layer(l).multiply_adds();
        if (3.0 * estimate > exact_limit_) return false;
    }
    ++exact_evaluations_;
    exact_stop_at_ = exact_limit_ < 0.0 ? -1.0 : work_ + exact_limit_;
    exact_stopped_ = false;
    exact_ok_ = true;
    exact_plane_origin_ = nullptr;
    const Index d = net_.input_dim();
    std::vector<Expansion> h(sz(d));
    for (int which = 0; which < 3 && !exact_stopped_; ++which) {
        const double* x = which == 0 ? origin : basis + (which - 1) * d;
        for (Index i = 0; i < d; ++i) {
            h[sz(i)].clear();
            if (x[i] != 0.0) h[sz(i)].push_back(x[i]);
        }
        forward_exact(h, which == 0, pattern, upto,
                      which == 0   ? exact_c_
                      : which == 1 ? exact_u_
                                   : exact_v_);
    }
    // The 1D evaluation's cache shares exact_c_: forgotten.
    exact_x0_ = exact_x1_ = nullptr;
    exact_upto_ = -1;
    if (exact_stopped_) return false;
    exact_plane_origin_ = origin;
    exact_plane_upto_ = upto;
    exact_plane_pattern_.assign(pattern, pattern + words_for(net_.neuron_offset(upto)));
    return true;
}

ExactPlaneLine PathOracle::plane_line_exact(Index l, Index k) const {
    return {exact_c_[sz(l)][sz(k)], exact_u_[sz(l)][sz(k)], exact_v_[sz(l)][sz(k)]};
}

}  // namespace lrcore::detail
