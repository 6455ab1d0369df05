// Helpers shared by the pybind11 glue: array checks, zero-copy views, progress callbacks.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <string>
#include <vector>

#include "core/buffer.hpp"
#include "core/parallel.hpp"
#include "core/query_checks.hpp"
#include "core/types.hpp"
#include "filter/planner.hpp"
#include "binary/rerank.hpp"
#include "filter/search_request.hpp"
#include "storage/store_rows.hpp"

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

// Evaluates a compiled filter program with `index.evaluate_filter` (HnswIndex or FlatIndex)
// over the slots below `limit` into `out` (a 1-d uint64 array of at least
// bitset_words(min(limit, n_slots)) words; a fresh one when None). Returns (bitset, matches).
template <class Index>
py::tuple evaluate_filter_with(const Index& index, const py::object& ops_obj,
                               const py::object& entries_obj, size_t limit,
                               const py::object& out_obj, const py::object& loads_obj) {
  auto ops = CArray<int64_t>::ensure(ops_obj);
  require(ops && ops.ndim() == 2 && ops.shape(1) == 3, "ops must be an (n, 3) int64 array");
  auto entries = as_vector<int32_t>(entries_obj, "entries");
  const size_t words = (std::min(limit, index.n_slots()) + 63) / 64;
  CArray<uint64_t> loads;
  size_t n_loads = 0;
  if (!loads_obj.is_none()) {
    loads = CArray<uint64_t>::ensure(loads_obj);
    require(loads && loads.ndim() == 2 && (loads.shape(0) == 0 || size_t(loads.shape(1)) == words),
            "loads must be an (n, words) uint64 array of the bitset size");
    n_loads = size_t(loads.shape(0));
  }
  py::array_t<uint64_t> bits;
  if (out_obj.is_none()) {
    bits = py::array_t<uint64_t>(py::ssize_t(words));
  } else {
    bits = py::array_t<uint64_t>::ensure(out_obj);
    require(bits && bits.ndim() == 1 && size_t(bits.shape(0)) >= words &&
                (bits.flags() & py::array::c_style) && bits.writeable(),
            "out must be a writeable C-contiguous uint64 array of the bitset size");
  }
  size_t count;
  {
    py::gil_scoped_release nogil;
    count = index.evaluate_filter(ops.data(), size_t(ops.shape(0)), entries.data(),
                                  size_t(entries.shape(0)), n_loads ? loads.data() : nullptr,
                                  n_loads, limit, bits.mutable_data());
  }
  return py::make_tuple(bits, count);
}

// Evaluates a batch of compiled programs (filter i: ops[op_offsets[i]:op_offsets[i+1]], all
// reading the shared entries and loads) into the rows of `out` (n, words) with one call and
// the GIL released once. Returns the match count of each.
template <class Index>
py::array_t<int64_t> evaluate_filters_with(const Index& index, const py::object& ops_obj,
                                           const py::object& offsets_obj,
                                           const py::object& entries_obj, size_t limit,
                                           const py::object& out_obj, const py::object& loads_obj) {
  auto ops = CArray<int64_t>::ensure(ops_obj);
  require(ops && ops.ndim() == 2 && ops.shape(1) == 3, "ops must be an (n, 3) int64 array");
  auto offsets = as_vector<int64_t>(offsets_obj, "op_offsets");
  auto entries = as_vector<int32_t>(entries_obj, "entries");
  const size_t words = (std::min(limit, index.n_slots()) + 63) / 64;
  const size_t n = offsets.shape(0) ? size_t(offsets.shape(0)) - 1 : 0;
  auto out = py::array_t<uint64_t>::ensure(out_obj);
  require(out && out.ndim() == 2 && size_t(out.shape(0)) == n && size_t(out.shape(1)) == words &&
              (out.flags() & py::array::c_style) && out.writeable(),
          "out must be a writeable (n_filters, words) uint64 array");
  auto loads = CArray<uint64_t>::ensure(loads_obj);
  require(loads && loads.ndim() == 2 && (loads.shape(0) == 0 || size_t(loads.shape(1)) == words),
          "loads must be an (n, words) uint64 array of the bitset size");
  const int64_t* off = offsets.data();
  for (size_t i = 0; i < n; ++i)
    require(off[i] >= 0 && off[i] <= off[i + 1] && off[i + 1] <= ops.shape(0),
            "op_offsets must rise within the ops");
  auto counts = py::array_t<int64_t>(py::ssize_t(n));
  {
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < n; ++i)
      counts.mutable_data()[i] = int64_t(index.evaluate_filter(
          ops.data() + 3 * off[i], size_t(off[i + 1] - off[i]), entries.data(),
          size_t(entries.shape(0)), loads.shape(0) ? loads.data() : nullptr,
          size_t(loads.shape(0)), limit, out.mutable_data() + i * words));
  }
  return counts;
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

// The grouped filters of a filtered search: bitsets (n_filters, words), their match counts
// (-1: count them) and group offsets (n_filters + 1, ending at nq).
struct FilterGroups {
  CArray<uint64_t> words;
  std::vector<SlotFilter> filters;
  std::vector<size_t> offsets;
};

inline FilterGroups filter_groups(const py::object& allowed, const py::object& counts_obj,
                                  const py::object& offsets_obj, size_t nq) {
  FilterGroups g;
  g.words = CArray<uint64_t>::ensure(allowed);
  require(g.words && g.words.ndim() == 2, "allowed must be a 2-d uint64 array (one row per filter)");
  auto counts = as_vector<int64_t>(counts_obj, "counts");
  auto offsets = as_vector<int64_t>(offsets_obj, "offsets");
  const size_t n = size_t(g.words.shape(0)), w = size_t(g.words.shape(1));
  require(size_t(counts.shape(0)) == n && size_t(offsets.shape(0)) == n + 1,
          "one count per filter and n_filters + 1 offsets are required");
  static const uint64_t kNone = 0;
  for (size_t i = 0; i < n; ++i) {
    SlotFilter f;
    f.bits = w ? g.words.data() + i * w : &kNone;
    f.words = w;
    f.count = counts.data()[i] < 0 ? SlotFilter::kUnknownCount : size_t(counts.data()[i]);
    g.filters.push_back(f);
  }
  for (size_t i = 0; i <= n; ++i) {
    const int64_t o = offsets.data()[i];
    require(o >= 0 && size_t(o) <= nq && (i == 0 ? o == 0 : o >= offsets.data()[i - 1]) &&
                (i < n || size_t(o) == nq),
            "offsets must rise from 0 to the number of queries");
    g.offsets.push_back(size_t(o));
  }
  return g;
}

// --- the one search call: index.query(queries, k, ef, threads, check, filters, planner) ---

// At most this many result cells per call (python/bitgraph/_validation.py: MAX_RESULT_CELLS).
constexpr size_t kMaxResultCells = size_t(1) << 28;

// What the query values still need (python/bitgraph/_index_base.py passes it).
// kNormalize is cosine's: the distances also come back as 1 - cos (the core's -<q, x> + 1).
enum class QueryCheck : int { kNone = 0, kMagnitude = 1, kNormalize = 2 };

// The compiled filters of a call, kept alive while the index reads them.
struct FilterProgramsArg {
  CArray<int64_t> ops, op_offsets;
  CArray<int32_t> entries, filter_of;
  CArray<uint64_t> loads;
  FilterPrograms programs;
};

// filters = (ops (n, 3) int64, op_offsets (n_filters + 1) int64, entries int32,
//            loads (n_loads, words) uint64, limit, filter_of (nq) int32 or None)
inline void parse_filters(const py::tuple& t, size_t nq, size_t n_slots, FilterProgramsArg& f) {
  require(t.size() == 6, "filters must be (ops, op_offsets, entries, loads, limit, filter_of)");
  f.ops = CArray<int64_t>::ensure(t[0]);
  require(f.ops && f.ops.ndim() == 2 && f.ops.shape(1) == 3, "ops must be an (n, 3) int64 array");
  f.op_offsets = as_vector<int64_t>(t[1], "op_offsets");
  f.entries = as_vector<int32_t>(t[2], "entries");
  f.loads = CArray<uint64_t>::ensure(t[3]);
  const size_t limit = t[4].cast<size_t>();
  const size_t words = bitset_words(std::min(limit, n_slots));
  require(f.loads && f.loads.ndim() == 2 &&
              (f.loads.shape(0) == 0 || size_t(f.loads.shape(1)) == words),
          "loads must be an (n, words) uint64 array of the bitset size");
  const size_t n_filters = f.op_offsets.shape(0) ? size_t(f.op_offsets.shape(0)) - 1 : 0;
  const int64_t* off = f.op_offsets.data();
  for (size_t i = 0; i < n_filters; ++i)
    require(off[i] >= 0 && off[i] <= off[i + 1] && off[i + 1] <= f.ops.shape(0),
            "op_offsets must rise within the ops");
  FilterPrograms& p = f.programs;
  if (!t[5].is_none()) {
    f.filter_of = as_vector<int32_t>(t[5], "filter_of");
    require(size_t(f.filter_of.shape(0)) == nq, "filter_of needs one entry per query");
    for (size_t i = 0; i < nq; ++i)
      require(f.filter_of.data()[i] >= -1 && f.filter_of.data()[i] < int64_t(n_filters),
              "filter_of entries must be -1 or a filter number");
    p.filter_of = f.filter_of.data();
  }
  p.ops = f.ops.data();
  p.n_ops = size_t(f.ops.shape(0));
  p.op_offsets = off;
  p.n_filters = n_filters;
  p.entries = f.entries.data();
  p.n_entries = size_t(f.entries.shape(0));
  p.loads = f.loads.shape(0) ? f.loads.data() : nullptr;
  p.n_loads = size_t(f.loads.shape(0));
  p.limit = limit;
}

inline PlannerParams parse_planner(const py::object& obj) {
  PlannerParams p;
  if (obj.is_none()) return p;
  py::tuple t = obj.cast<py::tuple>();
  require(t.size() == 4, "planner must be (exact_ratio, exact_ratio_batched, acorn_below, seeds)");
  p.exact_ratio = t[0].cast<double>();
  p.exact_ratio_batched = t[1].cast<double>();
  p.acorn_below = t[2].cast<double>();
  p.seeds = t[3].cast<size_t>();
  return p;
}

// One search call on `index`: checks (or normalises) the queries, evaluates the filters,
// plans, walks or scans and pads, with the GIL released once. Returns (labels, distances)
// or, with filters, (labels, distances, plans, scored); None when a query value needs the
// Python layer's careful path (NaN, infinity, beyond the magnitude limit, a zero row...).
// The re-rank stage of a code search: the float queries and vectors, the final k, the metric.
struct RerankArg {
  CArray<float> queries, vectors;
  size_t k = 0;
  Metric metric = Metric::kL2;
};

// rerank = (queries f32 (nq, d), vectors f32 (n, d) C-contiguous (never copied: may be a
// memory map), k, metric "l2" | "ip")
inline bool parse_rerank(const py::object& obj, size_t nq, RerankArg& r) {
  if (obj.is_none()) return false;
  py::tuple t = obj.cast<py::tuple>();
  require(t.size() == 4, "rerank must be (queries, vectors, k, metric)");
  r.vectors = py::array_t<float, py::array::c_style>::ensure(t[1]);
  require(r.vectors && r.vectors.ndim() == 2,
          "rerank vectors must be a C-contiguous float32 (n, d) array");
  r.queries = as_matrix<float>(t[0], size_t(r.vectors.shape(1)), "rerank queries");
  require(size_t(r.queries.shape(0)) == nq, "rerank queries must match the code queries");
  r.k = t[2].cast<size_t>();
  require(r.k >= 1, "rerank k must be >= 1");
  r.metric = parse_metric(t[3].cast<std::string>());
  require(r.metric == Metric::kL2 || r.metric == Metric::kInnerProduct,
          "rerank metric must be 'l2' or 'ip'");
  return true;
}

template <class Index>
py::object query_with(const Index& index, const py::handle& queries, size_t k, size_t ef,
                      size_t threads, int check, const py::object& filters,
                      const py::object& planner, const py::object& rerank_obj) {
  const size_t width = index.query_width();
  // The common case costs no conversion: a C-contiguous float32 array of the right width.
  // Anything else (a list, float64, a wrong shape, too many results) returns None with
  // check != 0: the Python layer's careful path converts it or explains what is wrong.
  using Q = typename Index::Query;
  // Only an array that already is C-contiguous Q: nothing is converted here (numpy would
  // turn numeric strings or objects into floats; the careful path refuses them).
  using QArray = py::array_t<Q, py::array::c_style>;
  QArray q;
  if (QArray::check_(queries)) q = py::reinterpret_borrow<QArray>(queries);
  const bool shaped = q && (q.ndim() == 2 ? size_t(q.shape(1)) == width
                                          : (q.ndim() == 1 && size_t(q.shape(0)) == width));
  const size_t nq = !shaped ? 0 : q.ndim() == 2 ? size_t(q.shape(0)) : 1;
  if (check != int(QueryCheck::kNone) && (!shaped || nq == 0 || nq * k > kMaxResultCells))
    return py::none();  // (no queries at all is an error there too)
  require(shaped, std::string("queries must be a C-contiguous ") +
                      (std::is_same_v<Q, float> ? "float32" : "uint8") + " (nq, " +
                      std::to_string(width) + ") array");
  require(check == int(QueryCheck::kNone) || std::is_same_v<Q, float>,
          "query checks apply to float queries only");
  require(k >= 1, "k must be >= 1");
  SearchRequestOf<Q> req;
  req.queries = q.data();
  req.nq = nq;
  req.k = k;
  req.ef = ef;
  req.threads = std::max<size_t>(threads, 1);
  req.planner = parse_planner(planner);
  FilterProgramsArg programs;
  if (!filters.is_none()) {
    parse_filters(filters.cast<py::tuple>(), nq, index.n_slots(), programs);
    req.filters = &programs.programs;
  }
  // With a re-rank stage the walk's k candidates stay here and k re-ranked rows go out.
  RerankArg rr;
  const bool reranked = parse_rerank(rerank_obj, nq, rr);
  const size_t k_out = reranked ? rr.k : k;
  py::array_t<int64_t> labels({py::ssize_t(nq), py::ssize_t(k_out)});
  py::array_t<float> dists({py::ssize_t(nq), py::ssize_t(k_out)});
  std::vector<int64_t> cand_labels(reranked ? nq * k : 0), cand_slots(reranked ? nq * k : 0);
  std::vector<float> cand_dists(reranked ? nq * k : 0);
  py::array_t<int8_t> plans;
  py::array_t<int64_t> scored;
  SearchOutput out{reranked ? cand_labels.data() : labels.mutable_data(),
                   reranked ? cand_dists.data() : dists.mutable_data()};
  if (req.filters) {
    plans = py::array_t<int8_t>(py::ssize_t(nq));
    scored = py::array_t<int64_t>(py::ssize_t(nq));
    out.plans = plans.mutable_data();
    out.scored = scored.mutable_data();
  }
  bool values_ok = true;
  {
    py::gil_scoped_release nogil;
    static thread_local std::vector<float> normalized;
    if constexpr (std::is_same_v<Q, float>) {
      if (check == int(QueryCheck::kMagnitude)) {
        values_ok = values_within(req.queries, nq * width, magnitude_limit(width));
      } else if (check == int(QueryCheck::kNormalize)) {
        normalized.resize(nq * width);
        values_ok = normalize_rows(req.queries, nq, width, normalized.data());
        req.queries = normalized.data();
      }
    }
    if (values_ok) {
      index.search(req, out);
      if (reranked) {
        // The candidates' slots, then the k closest of them by exact float distance.
        index.slots_of(cand_labels.data(), cand_labels.size(), cand_slots.data());
        for (size_t i = 0; i < cand_slots.size(); ++i)
          if (cand_labels[i] < 0) cand_slots[i] = -1;
        rerank(rr.queries.data(), nq, size_t(rr.vectors.shape(1)), rr.metric, rr.vectors.data(),
               size_t(rr.vectors.shape(0)), cand_slots.data(), cand_labels.data(), k, rr.k,
               req.threads, labels.mutable_data(), dists.mutable_data());
      }
      // Cosine: the core ranks by -<q, x> on unit vectors; the user's distance is 1 - cos.
      if (check == int(QueryCheck::kNormalize))
        for (size_t i = 0; i < nq * k_out; ++i) dists.mutable_data()[i] += 1.0f;
    }
    if (normalized.size() > (size_t(1) << 20)) std::vector<float>().swap(normalized);
  }
  if (!values_ok) return py::none();
  if (req.filters) return py::make_tuple(labels, dists, plans, scored);
  return py::make_tuple(labels, dists);
}

// A core class holds one index of either store kind (float rows or binary codes).
template <class RowIndex, class CodeIndex>
struct CoreOf {
  std::unique_ptr<RowIndex> rows;
  std::unique_ptr<CodeIndex> codes;
  std::vector<py::object> keep_alive;  // arrays borrowed by the index (e.g. np.memmap)
  template <class F>
  decltype(auto) visit(F&& f) {
    return rows ? f(*rows) : f(*codes);
  }
  template <class F>
  decltype(auto) visit(F&& f) const {
    return rows ? f(static_cast<const RowIndex&>(*rows))
                : f(static_cast<const CodeIndex&>(*codes));
  }
};

// The store of a core: for storage "binary", `dim` is the code's bits per plane (rows of
// planes * ceil(dim / 64) uint64 words, then a uint32 offset when `offsets`).
inline StoreSpec store_spec(size_t dim, const std::string& metric, const std::string& storage,
                            size_t planes, bool offsets) {
  require(dim >= 1, "dim must be >= 1");
  StoreSpec s;
  s.dim = dim;
  s.metric = parse_metric(metric);
  s.kind = parse_storage(storage);
  if (s.kind == StorageKind::kBinary) s.layout = CodeLayout{planes, (dim + 63) / 64, offsets};
  return s;
}

// Rows of an index's query type (float32 values, or uint8 code bytes) and query width.
template <class Index>
CArray<typename Index::Query> query_matrix(const Index& ix, const py::handle& obj,
                                           const char* what = "queries") {
  return as_matrix<typename Index::Query>(obj, ix.query_width(), what);
}

// Rows to add (float32 vectors, or code rows: narrower than asymmetric queries).
template <class Index>
CArray<typename Index::Query> add_matrix(const Index& ix, const py::handle& obj) {
  return as_matrix<typename Index::Query>(obj, ix.add_width(), "vectors");
}

template <class Index>
py::tuple search(const Index& ix, const py::object& queries, size_t k, size_t ef,
                 size_t threads, const py::object& allowed) {
  auto q = query_matrix<Index>(ix, queries);
  require(k >= 1, "k must be >= 1");
  const size_t nq = q.shape(0);
  py::array_t<int64_t> labels({py::ssize_t(nq), py::ssize_t(k)});
  py::array_t<float> dists({py::ssize_t(nq), py::ssize_t(k)});
  FilterArg f = filter_arg(allowed);
  {
    py::gil_scoped_release nogil;
    ix.search(q.data(), nq, k, ef, threads, f.get(), labels.mutable_data(),
              dists.mutable_data());
  }
  return py::make_tuple(labels, dists);
}

template <class Index>
py::tuple search_filtered(const Index& ix, const py::object& queries, size_t k, size_t ef,
                          size_t threads, const py::object& allowed, const py::object& counts,
                          const py::object& offsets, const PlannerParams& planner) {
  auto q = query_matrix<Index>(ix, queries);
  require(k >= 1, "k must be >= 1");
  const size_t nq = q.shape(0);
  FilterGroups groups = filter_groups(allowed, counts, offsets, nq);
  FilteredOut out(nq, k);
  {
    py::gil_scoped_release nogil;
    ix.search_filtered(q.data(), nq, k, ef, threads, groups.filters.data(),
                       groups.offsets.data(), groups.filters.size(), planner,
                       out.labels.mutable_data(), out.dists.mutable_data(),
                       out.plans.mutable_data(), out.scored.mutable_data());
  }
  return out.tuple();
}

// What every core class shares (Core holds its index as `index`; both index kinds derive
// from SlotIndex): the one search call, filter evaluation, ids, capacity and memory.
template <class Core, class Class>
void def_slot_methods(Class& cls) {
  cls.def(
         "query",
         [](const Core& self, const py::handle& queries, size_t k, size_t ef, size_t threads,
            int check, const py::object& filters, const py::object& planner,
            const py::object& rerank) {
           return self.visit([&](const auto& ix) {
             return query_with(ix, queries, k, ef, threads, check, filters, planner, rerank);
           });
         },
         py::arg("queries"), py::arg("k"), py::arg("ef"), py::arg("threads"),
         py::arg("check") = 0, py::arg("filters") = py::none(),
         py::arg("planner") = py::none(), py::arg("rerank") = py::none())
      .def(
          "search",
          [](const Core& self, const py::object& queries, size_t k, size_t ef, size_t threads,
             const py::object& allowed) {
            return self.visit(
                [&](const auto& ix) { return search(ix, queries, k, ef, threads, allowed); });
          },
          py::arg("queries"), py::arg("k"), py::arg("ef") = 0, py::arg("threads") = 1,
          py::arg("allowed") = py::none())
      .def(
          "search_filtered",
          [](const Core& self, const py::object& queries, size_t k, size_t ef, size_t threads,
             const py::object& allowed, const py::object& counts, const py::object& offsets,
             double exact_ratio, double exact_ratio_batched, double acorn_below, size_t seeds) {
            const PlannerParams planner{exact_ratio, exact_ratio_batched, acorn_below, seeds};
            return self.visit([&](const auto& ix) {
              return search_filtered(ix, queries, k, ef, threads, allowed, counts, offsets,
                                     planner);
            });
          },
          py::arg("queries"), py::arg("k"), py::arg("ef"), py::arg("threads"),
          py::arg("allowed"), py::arg("counts"), py::arg("offsets"),
          py::arg("exact_ratio") = 7.0, py::arg("exact_ratio_batched") = 1000.0,
          py::arg("acorn_below") = 0.05, py::arg("seeds") = 8)
      .def(
          "evaluate_filter",
          [](const Core& self, const py::object& ops, const py::object& entries, size_t limit,
             const py::object& out, const py::object& loads) {
            return self.visit([&](const auto& ix) {
              return evaluate_filter_with(ix, ops, entries, limit, out, loads);
            });
          },
          py::arg("ops"), py::arg("entries"), py::arg("limit"), py::arg("out") = py::none(),
          py::arg("loads") = py::none())
      .def("evaluate_filters",
           [](const Core& self, const py::object& ops, const py::object& op_offsets,
              const py::object& entries, size_t limit, const py::object& out,
              const py::object& loads) {
             return self.visit([&](const auto& ix) {
               return evaluate_filters_with(ix, ops, op_offsets, entries, limit, out, loads);
             });
           })
      .def(
          "remove",
          [](Core& self, const py::object& labels) {
            auto l = as_vector<int64_t>(labels, "labels");
            self.visit([&](auto& ix) { ix.remove(l.data(), l.shape(0)); });
          },
          py::arg("labels"))
      .def("slots_of",
           [](const Core& self, const py::object& labels) {
             auto l = as_vector<int64_t>(labels, "labels");
             py::array_t<int64_t> out(l.shape(0));
             self.visit([&](const auto& ix) { ix.slots_of(l.data(), l.shape(0), out.mutable_data()); });
             return out;
           })
      .def("contains",
           [](const Core& self, const py::object& labels) {
             auto l = as_vector<int64_t>(labels, "labels");
             std::vector<int64_t> slots(l.shape(0));
             self.visit([&](const auto& ix) { ix.slots_of(l.data(), l.shape(0), slots.data()); });
             py::array_t<uint8_t> out(l.shape(0));
             for (size_t i = 0; i < slots.size(); ++i) out.mutable_data()[i] = slots[i] >= 0;
             return out;
           })
      .def_property_readonly(
          "size", [](const Core& s) { return s.visit([](const auto& ix) { return ix.size(); }); })
      .def_property_readonly(
          "n_slots",
          [](const Core& s) { return s.visit([](const auto& ix) { return ix.n_slots(); }); })
      .def_property_readonly(
          "nbytes",
          [](const Core& s) { return s.visit([](const auto& ix) { return ix.nbytes(); }); })
      .def_property_readonly("borrowed_nbytes",
                             [](const Core& s) {
                               return s.visit([](const auto& ix) { return ix.borrowed_nbytes(); });
                             })
      .def(
          "reserve",
          [](Core& self, size_t n_slots) {
            py::gil_scoped_release nogil;
            self.visit([&](auto& ix) { ix.reserve(n_slots); });
          },
          py::arg("n_slots"))
      .def("shrink_to_fit",
           [](Core& self) {
             py::gil_scoped_release nogil;
             self.visit([](auto& ix) { ix.shrink_to_fit(); });
           })
      // What shrink_to_fit gives back without copying: everything where large buffers are
      // mappings (mremap), nothing elsewhere. Called after a save.
      .def("release_free_slack", [](Core& self) {
        if (!BITGRAPH_HAVE_MREMAP) return;
        py::gil_scoped_release nogil;
        self.visit([](auto& ix) { ix.shrink_to_fit(); });
      });
}

void bind_hnsw(py::module_& m);
void bind_flat(py::module_& m);
void bind_kernels(py::module_& m);
void bind_binary(py::module_& m);
void bind_fastscan(py::module_& m);
void bind_ivf(py::module_& m);

}  // namespace bitgraph::bindings
