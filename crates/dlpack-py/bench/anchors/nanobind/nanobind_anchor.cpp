// The nanobind anchor of bench_exchange.py: what a nanobind function taking a tensor adds to the
// call, measured over a no-op function of the same module.
#include <cstddef>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

namespace nb = nanobind;

NB_MODULE(nanobind_anchor, m) {
    // The call floor: one int in, one int out.
    m.def("noop", [](int x) { return x; });
    // Any ndarray: nanobind imports it (__dlpack__(max_version=...), else the buffer protocol).
    m.def("take", [](nb::ndarray<> a) -> std::size_t { return a.ndim(); });
}
