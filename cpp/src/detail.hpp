// Helpers shared by the 1D and 2D subdivisions (internal to the core).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
// AVX2 code paths chosen at run time (the build itself targets baseline x86-64).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LRCORE_AVX2_DISPATCH 1
#include <immintrin.h>
#endif

#include "lrcore/network.hpp"

namespace lrcore::detail {

using Word = std::uint64_t;
constexpr Index kWordBits = 64;

inline std::size_t sz(Index value) { return static_cast<std::size_t>(value); }

inline Index words_for(Index bits) { return (bits + kWordBits - 1) / kWordBits; }

// "1.5 GB", "20.0 MB": a byte count for messages.
inline std::string format_bytes(double bytes) {
    const char* unit = bytes >= 1e9 ? "GB" : "MB";
    const double value = bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6;
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, unit);
    return text;
}

// Leaves new elements uninitialised on resize: the buffers that use it are written in
// full before they are read, and zero-filling them cost more than the crossings search.
template <typename T>
struct UninitAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <typename U>
    UninitAllocator(const UninitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* ptr) noexcept {
        ::new (static_cast<void*>(ptr)) U;
    }
    template <typename U, typename... Args>
    void construct(U* ptr, Args&&... args) {
        ::new (static_cast<void*>(ptr)) U(std::forward<Args>(args)...);
    }
};

template <typename T>
using Buffer = std::vector<T, UninitAllocator<T>>;

// UninitAllocator whose allocations of 2 MiB or more start on a 2 MiB boundary and are
// marked for transparent huge pages (Linux, where enabled): a slice reads vertex rows all
// over its blocks, and with 4 KiB pages nearly every row costs a TLB miss, and its first
// touch a page fault.
template <typename T>
struct HugePageAllocator : UninitAllocator<T> {
    using value_type = T;
    template <typename U>
    struct rebind {
        using other = HugePageAllocator<U>;
    };
    static constexpr std::size_t kHuge = std::size_t{1} << 21;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        void* ptr = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes >= kHuge) {
            const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
            ptr = std::aligned_alloc(kHuge, rounded);
            if (ptr != nullptr) madvise(ptr, rounded, MADV_HUGEPAGE);  // a hint: may fail
        }
#endif
        if (ptr == nullptr) ptr = std::malloc(bytes > 0 ? bytes : 1);
        if (ptr == nullptr) throw std::bad_alloc();
        return static_cast<T*>(ptr);
    }
    void deallocate(T* ptr, std::size_t) noexcept { std::free(ptr); }
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept {
        return true;
    }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept {
        return false;
    }
};

template <typename T>
using HugeBuffer = std::vector<T, HugePageAllocator<T>>;

// Packs the first num_bytes bytes of a bit row little-endian (numpy's bitorder="little").
inline void pack_pattern(const Word* row, Index num_bytes, std::uint8_t* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // The words' bytes are in that order already (no bytes: out may be null).
    if (num_bytes > 0) std::memcpy(out, row, sz(num_bytes));
#else
    for (Index b = 0; b < num_bytes; ++b)
        out[b] = static_cast<std::uint8_t>(row[b / 8] >> (8 * (b % 8)));
#endif
}

// Sets neuron values within rounding error of zero to exactly zero: |z_j| <= rtol *
// (||W_j|| s + |b_j|), s bounding the norm of the layer's input at the vertex. Rows hold
// `width` values, of which the first `neurons` are neurons (the rest are linear units).
inline void snap_zeros(double* z, Index n, Index width, Index neurons, const double* scale,
                       const AffineMap& map, double rtol) {
    const std::vector<double>& row_norms = map.row_norms();
    const std::vector<double>& abs_bias = map.abs_bias();
    for (Index v = 0; v < n; ++v) {
        double* row = z + v * width;
        const double s = scale[v];
        for (Index j = 0; j < neurons; ++j) {
            if (std::abs(row[j]) <= rtol * (row_norms[sz(j)] * s + abs_bias[sz(j)])) row[j] = 0.0;
        }
    }
}

// ||(1 - tau) a + tau b||_2 from ||a|| = na, ||b|| = nb and <a, b> = dot (a sum of `width`
// products), rounded up: the norm of an affine vector function between two points (the
// input of a layer inside a cell), which the interpolation na + tau (nb - na) can
// overestimate by far (a path from x to -x passes the origin).
inline double norm_between(double na, double nb, double dot, double tau, Index width) {
    const double u = 1.0 - tau;
    const double square = u * u * na * na + 2.0 * u * tau * dot + tau * tau * nb * nb;
    // Rounding of the sum and of the dot product, added back.
    const double error = static_cast<double>(width + 8) * std::numeric_limits<double>::epsilon() *
                         (u * na + tau * nb) * (u * na + tau * nb);
    return std::min(std::sqrt(std::max(square, 0.0) + error), u * na + tau * nb);
}

#if defined(LRCORE_AVX2_DISPATCH)
inline bool cpu_has_avx2() {
    static const bool has = __builtin_cpu_supports("avx2") != 0;
    return has;
}

// snap_and_sign's loop over the n (<= 64) values of one mask word, four at a time (the
// same operations as its SSE2 loop); returns how many values it did.
__attribute__((target("avx2"))) inline Index snap_and_sign_avx2(double* z, Index n,
                                                                const double* norms,
                                                                const double* bias, double rtol,
                                                                double scale, Word& pos,
                                                                Word& neg) {
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d r = _mm256_set1_pd(rtol);
    const __m256d sc = _mm256_set1_pd(scale);
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
        __m256d x = _mm256_loadu_pd(z + k);
        const __m256d tol =
            _mm256_mul_pd(r, _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(norms + k), sc),
                                           _mm256_loadu_pd(bias + k)));
        const __m256d small = _mm256_cmp_pd(_mm256_andnot_pd(sign_bit, x), tol, _CMP_LE_OQ);
        x = _mm256_andnot_pd(small, x);
        _mm256_storeu_pd(z + k, x);
        pos |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_GT_OQ))) << k;
        neg |= static_cast<Word>(_mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_LT_OQ))) << k;
    }
    return k;
}
#endif

// snap_zeros for one row of `neurons` values with input norm `scale`, and their signs as
// bit masks: bit j of positive (negative) is set where the snapped value is > 0 (< 0).
// The masks hold words_for(neurons) words, written whole.
inline void snap_and_sign(double* row, Index neurons, double scale, const AffineMap& map,
                          double rtol, Word* positive, Word* negative) {
    const double* row_norms = map.row_norms().data();
    const double* abs_bias = map.abs_bias().data();
    for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
        const Index n = std::min(kWordBits, neurons - j0);
        double* z = row + j0;
        const double* norms = row_norms + j0;
        const double* bias = abs_bias + j0;
        Word pos = 0, neg = 0;
        Index k = 0;
#if defined(LRCORE_AVX2_DISPATCH)
        if (cpu_has_avx2()) k = snap_and_sign_avx2(z, n, norms, bias, rtol, scale, pos, neg);
#endif
#if defined(__SSE2__)
        // Two values at a time: the comparisons' sign bits give two mask bits at once.
        const __m128d sign_bit = _mm_set1_pd(-0.0);
        const __m128d zero = _mm_setzero_pd();
        const __m128d r = _mm_set1_pd(rtol);
        const __m128d sc = _mm_set1_pd(scale);
        for (; k + 2 <= n; k += 2) {
            __m128d x = _mm_loadu_pd(z + k);
            const __m128d tol = _mm_mul_pd(
                r, _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(norms + k), sc), _mm_loadu_pd(bias + k)));
            const __m128d small = _mm_cmple_pd(_mm_andnot_pd(sign_bit, x), tol);
            x = _mm_andnot_pd(small, x);
            _mm_storeu_pd(z + k, x);
            pos |= static_cast<Word>(_mm_movemask_pd(_mm_cmpgt_pd(x, zero))) << k;
            neg |= static_cast<Word>(_mm_movemask_pd(_mm_cmplt_pd(x, zero))) << k;
        }
#endif
        for (; k < n; ++k) {
            if (std::abs(z[k]) <= rtol * (norms[k] * scale + bias[k])) z[k] = 0.0;
            pos |= static_cast<Word>(z[k] > 0.0) << k;
            neg |= static_cast<Word>(z[k] < 0.0) << k;
        }
        positive[j0 / kWordBits] = pos;
        negative[j0 / kWordBits] = neg;
    }
}

// The values of a point a fraction tau from row x to row y (`width` values, the first
// `neurons` of them neurons), written to `out`. A neuron's value is set to zero
// - within the zero tolerance: |value| <= rtol * (row_norms[j] * scale + abs_bias[j]);
// - within rounding of zero: |value| <= max(8 eps (|x_j| + |y_j|), near |y_j - x_j|),
//   near being the plane's resolution as a fraction of the segment from x to y.
// Returns the number of neurons zeroed by the second rule only.
struct InterpolationRule {
    const double* row_norms;
    const double* abs_bias;
    double rtol, scale, near;
    static constexpr double kRound = 8.0 * std::numeric_limits<double>::epsilon();

    // 0: kept; 1: within the tolerance; 2: within rounding only.
    int classify(double x, double y, double tau, Index j, double& value) const {
        const double d = y - x;
        value = x + tau * d;
        const double size = std::abs(value);
        if (size <= rtol * (row_norms[j] * scale + abs_bias[j])) return 1;
        return size <= std::max(kRound * (std::abs(x) + std::abs(y)), near * std::abs(d)) ? 2 : 0;
    }
};

#if defined(LRCORE_AVX2_DISPATCH)
// interpolate_row's SSE2 loop four values at a time (the same operations, so the same
// results); returns the neurons zeroed by rounding only, and in `done` how many it did.
__attribute__((target("avx2"))) inline Index interpolate_row_avx2(
    const double* __restrict x, const double* __restrict y, double tau, Index neurons,
    const InterpolationRule& rule, double* __restrict out, Index& done) {
    static constexpr Index kBits[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    const __m256d t = _mm256_set1_pd(tau);
    const __m256d rtol = _mm256_set1_pd(rule.rtol);
    const __m256d scale = _mm256_set1_pd(rule.scale);
    const __m256d round = _mm256_set1_pd(InterpolationRule::kRound);
    const __m256d near = _mm256_set1_pd(rule.near);
    Index merged = 0;
    Index j = 0;
    for (; j + 4 <= neurons; j += 4) {
        const __m256d xj = _mm256_loadu_pd(x + j);
        const __m256d yj = _mm256_loadu_pd(y + j);
        const __m256d d = _mm256_sub_pd(yj, xj);
        const __m256d value = _mm256_add_pd(xj, _mm256_mul_pd(t, d));
        const __m256d size = _mm256_andnot_pd(sign_bit, value);
        const __m256d tol = _mm256_mul_pd(
            rtol, _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(rule.row_norms + j), scale),
                                _mm256_loadu_pd(rule.abs_bias + j)));
        const __m256d within = _mm256_cmp_pd(size, tol, _CMP_LE_OQ);
        const __m256d rounding = _mm256_mul_pd(
            round, _mm256_add_pd(_mm256_andnot_pd(sign_bit, xj), _mm256_andnot_pd(sign_bit, yj)));
        const __m256d resolution = _mm256_mul_pd(near, _mm256_andnot_pd(sign_bit, d));
        const __m256d unresolved =
            _mm256_cmp_pd(size, _mm256_max_pd(rounding, resolution), _CMP_LE_OQ);
        _mm256_storeu_pd(out + j, _mm256_andnot_pd(_mm256_or_pd(within, unresolved), value));
        merged += kBits[_mm256_movemask_pd(_mm256_andnot_pd(within, unresolved))];
    }
    done = j;
    return merged;
}
#endif

inline Index interpolate_row(const double* __restrict x, const double* __restrict y, double tau,
                             Index neurons, Index width, const InterpolationRule& rule,
                             double* __restrict out) {
    Index merged = 0;
    Index j = 0;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) merged = interpolate_row_avx2(x, y, tau, neurons, rule, out, j);
#endif
#if defined(__SSE2__)
    // Two values at a time, the same operations as the scalar rule (so the same results).
    const __m128d sign_bit = _mm_set1_pd(-0.0);
    const __m128d t = _mm_set1_pd(tau);
    const __m128d rtol = _mm_set1_pd(rule.rtol);
    const __m128d scale = _mm_set1_pd(rule.scale);
    const __m128d round = _mm_set1_pd(InterpolationRule::kRound);
    const __m128d near = _mm_set1_pd(rule.near);
    for (; j + 2 <= neurons; j += 2) {
        const __m128d xj = _mm_loadu_pd(x + j);
        const __m128d yj = _mm_loadu_pd(y + j);
        const __m128d d = _mm_sub_pd(yj, xj);
        const __m128d value = _mm_add_pd(xj, _mm_mul_pd(t, d));
        const __m128d size = _mm_andnot_pd(sign_bit, value);
        const __m128d tol =
            _mm_mul_pd(rtol, _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(rule.row_norms + j), scale),
                                        _mm_loadu_pd(rule.abs_bias + j)));
        const __m128d within = _mm_cmple_pd(size, tol);
        const __m128d rounding =
            _mm_mul_pd(round, _mm_add_pd(_mm_andnot_pd(sign_bit, xj), _mm_andnot_pd(sign_bit, yj)));
        const __m128d resolution = _mm_mul_pd(near, _mm_andnot_pd(sign_bit, d));
        const __m128d unresolved = _mm_cmple_pd(size, _mm_max_pd(rounding, resolution));
        _mm_storeu_pd(out + j, _mm_andnot_pd(_mm_or_pd(within, unresolved), value));
        const int mask = _mm_movemask_pd(_mm_andnot_pd(within, unresolved));
        merged += (mask & 1) + (mask >> 1);
    }
#endif
    for (; j < neurons; ++j) {
        double value;
        const int kind = rule.classify(x[j], y[j], tau, j, value);
        merged += kind == 2;
        out[j] = kind == 0 ? value : 0.0;
    }
    for (j = neurons; j < width; ++j) out[j] = x[j] + tau * (y[j] - x[j]);
    return merged;
}

// Rows of per-vertex values (one row of `width` doubles per vertex), stored in blocks of
// kBlockRows rows: appending a row never moves the others, and a layer is evaluated block
// by block, so the only extra memory is one block. reset() keeps the blocks: a store used
// for one tile after another writes into memory it has already touched (the page faults
// of fresh memory cost a slice about a sixth of its time).
class RowStore {
public:
    // 512 rows: the dense product runs as fast as on larger blocks, and a slice's rows
    // waste at most one block (2048 cost small slices about 200 B a region).
    static constexpr Index kBlockRows = 512;

    Index width() const { return width_; }
    Index size() const { return size_; }

    // No rows, of `width` values each from now on; the blocks stay allocated.
    void reset(Index width) {
        width_ = width;
        size_ = 0;
    }

    double* row(Index v) { return blocks_[sz(v / kBlockRows)].data() + (v % kBlockRows) * width_; }
    const double* row(Index v) const {
        return blocks_[sz(v / kBlockRows)].data() + (v % kBlockRows) * width_;
    }

    // No rows, and no memory held.
    void release() {
        reset(0);
        std::vector<HugeBuffer<double>>().swap(blocks_);
        HugeBuffer<double>().swap(activated_);
    }

    // A new row at the end (uninitialised); pointers to other rows stay valid.
    double* append() {
        if (size_ % kBlockRows == 0) {
            const std::size_t b = sz(size_ / kBlockRows);
            if (b == blocks_.size()) blocks_.emplace_back();
            blocks_[b].resize(sz(kBlockRows * width_));  // within capacity: no writes
        }
        return row(size_++);
    }

    // Sets scale[v] = ||act(row v)||_2 for every row, then replaces the rows by the next
    // layer's pre-activations layer(act(row)).
    void next_layer(const AffineMap& map, const Activation& act, Index neurons, double* scale) {
        const Index in_width = width_;
        const Index out_width = map.out_dim();
        for (Index first = 0; first < size_; first += kBlockRows) {
            const Index rows = std::min(kBlockRows, size_ - first);
            HugeBuffer<double>& block = blocks_[sz(first / kBlockRows)];
            activate(block.data(), rows, act, neurons, scale + first);
            if (out_width > in_width) block.resize(sz(kBlockRows * out_width));
            map.apply(activated_.data(), rows, in_width, block.data(), out_width);
        }
        width_ = out_width;
    }

    // out[v, :] = layer(act(row v)) for every row, `out` holding rows of map.out_dim()
    // values; the rows stay as they are.
    void evaluate(const AffineMap& map, const Activation& act, Index neurons, double* out) {
        std::vector<double> scale(sz(std::min(kBlockRows, size_)));
        for (Index first = 0; first < size_; first += kBlockRows) {
            const Index rows = std::min(kBlockRows, size_ - first);
            activate(blocks_[sz(first / kBlockRows)].data(), rows, act, neurons, scale.data());
            map.apply(activated_.data(), rows, width_, out + first * map.out_dim(), map.out_dim());
        }
    }

private:
    std::vector<HugeBuffer<double>> blocks_;  // the first ceil(size / kBlockRows) are in use
    HugeBuffer<double> activated_;
    Index width_ = 0;
    Index size_ = 0;

    // activated_ = act(rows of `block`); scale[v] = ||act(row v)||_2.
    void activate(const double* block, Index rows, const Activation& act, Index neurons,
                  double* scale) {
        activated_.resize(sz(rows * width_));
        for (Index v = 0; v < rows; ++v)
            scale[v] =
                act.apply_row(block + v * width_, activated_.data() + v * width_, width_, neurons);
    }
};

}  // namespace lrcore::detail
