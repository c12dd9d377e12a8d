#include <pybind11/pybind11.h>

#include <stdexcept>

#include "core/cpu_features.h"
#include "nnfast/cuda.h"
#include "nnfast/gemm.h"
#include "nnfast/parallel.h"

#ifndef NNFAST_VERSION
#define NNFAST_VERSION "0.0.0"
#endif

namespace py = pybind11;

void init_info(py::module_& m) {
  m.attr("__version__") = NNFAST_VERSION;
  m.def("get_num_threads", &nnfast::get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("[set_num_threads] expected a positive thread count, got " + std::to_string(n));
    nnfast::set_num_threads(n);
  });
  m.def("openmp_enabled", &nnfast::openmp_enabled);
  m.def("cpu_isa", &nnfast::cpu_isa);
  m.def("set_cpu_isa", [](const std::string& name) {
    if (!nnfast::set_cpu_isa(name.c_str()))
      throw py::value_error("[set_cpu_isa] expected one of generic/avx2/avx512 supported by this CPU, got '" + name + "'");
  });
  m.def("cpu_isa_supported", [](const std::string& name) {
    nnfast::Isa isa;
    return nnfast::parse_isa(name.c_str(), &isa) && nnfast::isa_supported(isa);
  });
  m.def("fma_peak_gflops", [](bool f64, double seconds) {
    py::gil_scoped_release nogil;
    return nnfast::fma_peak_gflops(f64, seconds);
  }, py::arg("f64") = false, py::arg("seconds") = 0.2,
     "Measured single-core FMA peak (GFLOP/s) with the SIMD level in use.");
  // bf16 GEMM level (core/cpu_features.h): portable / avx512_bf16 / amx_bf16.
  m.def("bf16_level", [] { return std::string(nnfast::bf16_level_name(nnfast::active_bf16_level())); },
        "The bf16 level of this CPU in use (lowered by NNFAST_BF16 or set_bf16_level).");
  m.def("bf16_kernel", [] { return std::string(nnfast::bf16_level_name(nnfast::bf16_kernel_level())); },
        "The bf16 GEMM path that runs now (portable, avx512_bf16 or amx_bf16).");
  m.def("set_bf16_level", [](const std::string& name) {
    nnfast::Bf16Level level;
    if (!nnfast::parse_bf16_level(name.c_str(), &level) || !nnfast::bf16_level_supported(level))
      throw py::value_error("[set_bf16_level] expected one of portable/avx512_bf16/amx_bf16 supported by this CPU, got '" +
                            name + "'");
    nnfast::force_bf16_level(level);
  });
  m.def("bf16_level_supported", [](const std::string& name) {
    nnfast::Bf16Level level;
    return nnfast::parse_bf16_level(name.c_str(), &level) && nnfast::bf16_level_supported(level);
  });
  m.def("bf16_peak_gflops", [](double seconds) {
    py::gil_scoped_release nogil;
    return nnfast::cpu::bf16_peak_gflops(seconds);
  }, py::arg("seconds") = 0.2, "Measured single-core peak (GFLOP/s) of the bf16 kernel in use (tdpbf16ps on AMX, else vdpbf16ps); 0 without AVX512-BF16.");
  m.def("cuda_compiled", &nnfast::cuda_compiled);
  m.def("cuda_emulated", &nnfast::cuda_emulated);
  m.def("cuda_device_count", &nnfast::cuda_device_count);
  m.def("cuda_device_name", [](int d) { return std::string(nnfast::cuda_device_name(d)); });
#ifdef NNFAST_SANITIZE_BUILD
  // Test-only: a deliberate heap out-of-bounds write that AddressSanitizer must
  // report. Exists only in sanitizer builds, to prove the sanitizer is wired in.
  m.def("_sanitizer_selftest", [](int n) {
    char* p = new char[16];
    char* volatile laundered = p;  // hide the allocation size from UBSan's object-size check
    static_cast<volatile char*>(laundered)[16 + n] = 1;  // volatile: the store cannot be elided
    delete[] p;
  });
  m.attr("sanitized") = true;
#else
  m.attr("sanitized") = false;
#endif
#ifdef __VERSION__
  m.attr("compiler") = __VERSION__;
#endif
}
