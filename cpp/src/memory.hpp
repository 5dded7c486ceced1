// Memory of the core's buffers (internal): vectors that skip zero-filling, huge-page
// blocks for vertex rows, freed memory handed back to the system, byte counts in messages.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lrcore::detail {

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

// Hands memory freed in the middle of malloc's heaps back to the system (glibc keeps it
// otherwise, and a slice frees its tiles' partitions while it builds the merged one).
inline void release_free_memory() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

// Hands `from`'s elements to `to` in an exactly sized array: moved (`from` is left
// empty) with `move`, copied otherwise (`from` keeps its memory for reuse).
template <typename From, typename To>
void take_exact(From& from, To& to, bool move) {
    if (move) {
        from.shrink_to_fit();
        to.swap(from);
    } else {
        to.assign(from.begin(), from.end());
    }
}

}  // namespace lrcore::detail
