// bitgraph._core: the native backend. Error translation lives here, once.
#include "bindings/common.hpp"
#include "core/thread_pool.hpp"

namespace bitgraph::bindings {
namespace {

[[noreturn]] void raise_python(const char* cls, const char* message) {
  py::object errors = py::module_::import("bitgraph.errors");
  PyErr_SetString(errors.attr(cls).ptr(), message);
  throw py::error_already_set();
}

}  // namespace
}  // namespace bitgraph::bindings

PYBIND11_MODULE(_core, m) {
  using namespace bitgraph;
  using namespace bitgraph::bindings;
  m.doc() = "bitgraph native backend (C++ kernels, HNSW and flat indexes)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const KeyError& e) {
      raise_python("UnknownIdError", e.what());
    } catch (const ValueError& e) {
      raise_python("BitgraphValueError", e.what());
    } catch (const Cancelled& e) {
      raise_python("Cancelled", "the operation was cancelled by its progress callback");
    }
  });
  m.def("thread_pool_size", [] { return ThreadPool::instance().size(); },
        "Worker threads the core's pool keeps (the calling thread works too).");
  m.def(
      "set_thread_pool_size",
      [](size_t workers) {
        py::gil_scoped_release nogil;
        ThreadPool::instance().resize(workers);
      },
      py::arg("workers"), "Resizes the core's worker pool (0: usable cores - 1).");
  // query(..., check=1|2) checks / normalises the query values in the core's own pass.
  m.attr("QUERY_CHECKS") = true;
  bind_kernels(m);
  bind_hnsw(m);
  bind_flat(m);
  bind_binary(m);
  bind_fastscan(m);
  bind_ivf(m);
}
