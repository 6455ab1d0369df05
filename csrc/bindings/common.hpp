// Helpers shared by the pybind11 glue: array checks, zero-copy views, progress callbacks.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/types.hpp"
#include "hnsw/hnsw_index.hpp"

namespace bitgraph::bindings {

namespace py = pybind11;

template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

inline void require(bool ok, const std::string& message) {
  if (!ok) throw ValueError(message);
}

// A (rows, cols) C-contiguous matrix with the expected number of columns.
template <class T>
CArray<T> as_matrix(const py::handle& obj, size_t cols, const char* what) {
  CArray<T> a = CArray<T>::ensure(obj);
  require(a && a.ndim() == 2 && size_t(a.shape(1)) == cols,
          std::string(what) + " must be a 2-d array with " + std::to_string(cols) + " columns");
  return a;
}

template <class T>
CArray<T> as_vector(const py::handle& obj, const char* what) {
  CArray<T> a = CArray<T>::ensure(obj);
  require(a && a.ndim() == 1, std::string(what) + " must be a 1-d array");
  return a;
}

// A numpy view of `count` elements at `data` that keeps `owner` alive (no copy).
template <class T>
py::array view(const T* data, std::vector<py::ssize_t> shape, const py::object& owner) {
  static T empty{};
  py::array out(py::dtype::of<T>(), shape, data ? data : &empty, owner);
  out.attr("setflags")(py::arg("write") = false);
  return out;
}

// Wraps an optional Python callable(done) -> bool into a ProgressFn that also lets Ctrl-C
// through: it runs on the calling thread with the GIL re-acquired only for the call.
inline ProgressFn progress_fn(const py::object& callback) {
  return [callback](size_t done) -> bool {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (callback.is_none()) return true;
    py::object r = callback(done);
    return r.is_none() || r.cast<bool>();
  };
}

// The optional bitset of allowed slots (uint64 words).
struct FilterArg {
  CArray<uint64_t> words;
  SlotFilter filter;
  const SlotFilter* get() const { return filter.bits ? &filter : nullptr; }
};

inline FilterArg filter_arg(const py::object& allowed) {
  FilterArg f;
  if (allowed.is_none()) return f;
  f.words = as_vector<uint64_t>(allowed, "allowed");
  f.filter.bits = f.words.data();
  f.filter.words = size_t(f.words.shape(0));
  static const uint64_t kNone = 0;
  if (!f.filter.bits) f.filter.bits = &kNone;  // empty bitset: nothing allowed
  return f;
}

// Evaluates a compiled filter program with `index.evaluate_filter` (HnswIndex or FlatIndex):
// returns (bitset uint64 array, number of matches).
template <class Index>
py::tuple evaluate_filter_with(const Index& index, const py::object& ops_obj,
                               const py::object& entries_obj) {
  auto ops = CArray<int64_t>::ensure(ops_obj);
  require(ops && ops.ndim() == 2 && ops.shape(1) == 3, "ops must be an (n, 3) int64 array");
  auto entries = as_vector<int32_t>(entries_obj, "entries");
  py::array_t<uint64_t> bits(py::ssize_t((index.n_slots() + 63) / 64));
  size_t count;
  {
    py::gil_scoped_release nogil;
    count = index.evaluate_filter(ops.data(), size_t(ops.shape(0)), entries.data(),
                                  size_t(entries.shape(0)), bits.mutable_data());
  }
  return py::make_tuple(bits, count);
}

// Output arrays of a filtered search: labels, distances, plan codes, nodes scored.
struct FilteredOut {
  py::array_t<int64_t> labels;
  py::array_t<float> dists;
  py::array_t<int8_t> plans;
  py::array_t<int64_t> scored;
  FilteredOut(size_t nq, size_t k)
      : labels({py::ssize_t(nq), py::ssize_t(k)}),
        dists({py::ssize_t(nq), py::ssize_t(k)}),
        plans(py::ssize_t(nq)),
        scored(py::ssize_t(nq)) {}
  py::tuple tuple() const { return py::make_tuple(labels, dists, plans, scored); }
};

inline SlotFilter slot_filter(const CArray<uint64_t>& words, int64_t count) {
  static const uint64_t kNone = 0;
  SlotFilter f;
  f.bits = words.shape(0) ? words.data() : &kNone;
  f.words = size_t(words.shape(0));
  f.count = count < 0 ? SlotFilter::kUnknownCount : size_t(count);
  return f;
}

void bind_hnsw(py::module_& m);
void bind_flat(py::module_& m);
void bind_kernels(py::module_& m);

}  // namespace bitgraph::bindings
