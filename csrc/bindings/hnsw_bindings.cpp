// Thin glue for HnswIndex: convert arrays, release the GIL, expose state as zero-copy views.
#include <memory>

#include "bindings/common.hpp"
#include "hnsw/hnsw_index.hpp"

namespace bitgraph::bindings {
namespace {

struct HnswCore {
  std::unique_ptr<HnswIndex> index;
  std::vector<py::object> keep_alive;  // arrays borrowed by the index (e.g. np.memmap)
};

HnswParams make_params(size_t dim, const std::string& metric, const std::string& storage,
                       size_t M, size_t ef_construction, uint64_t seed, size_t planes) {
  return HnswParams{dim,  parse_metric(metric), parse_storage(storage), M, ef_construction,
                    seed, planes};
}

py::tuple search(HnswCore& self, const py::object& queries, size_t k, size_t ef, size_t threads,
                 const py::object& allowed) {
  const size_t dim = self.index->params().dim;
  auto q = as_matrix<float>(queries, dim, "queries");
  require(k >= 1, "k must be >= 1");
  size_t nq = q.shape(0);
  py::array_t<int64_t> labels({py::ssize_t(nq), py::ssize_t(k)});
  py::array_t<float> dists({py::ssize_t(nq), py::ssize_t(k)});
  FilterArg f = filter_arg(allowed);
  {
    py::gil_scoped_release nogil;
    self.index->search(q.data(), nq, k, ef, threads, f.get(), labels.mutable_data(),
                       dists.mutable_data());
  }
  return py::make_tuple(labels, dists);
}

py::tuple search_filtered(HnswCore& self, const py::object& queries, size_t k, size_t ef,
                          size_t threads, const py::object& allowed, const py::object& counts,
                          const py::object& offsets, double exact_ratio,
                          double exact_ratio_batched, double acorn_below, size_t seeds) {
  auto q = as_matrix<float>(queries, self.index->params().dim, "queries");
  require(k >= 1, "k must be >= 1");
  const size_t nq = q.shape(0);
  FilterGroups groups = filter_groups(allowed, counts, offsets, nq);
  FilteredOut out(nq, k);
  PlannerParams planner{exact_ratio, exact_ratio_batched, acorn_below, seeds};
  {
    py::gil_scoped_release nogil;
    self.index->search_filtered(q.data(), nq, k, ef, threads, groups.filters.data(),
                                groups.offsets.data(), groups.filters.size(), planner,
                                out.labels.mutable_data(), out.dists.mutable_data(),
                                out.plans.mutable_data(), out.scored.mutable_data());
  }
  return out.tuple();
}

}  // namespace

void bind_hnsw(py::module_& m) {
  auto cls = py::class_<HnswCore>(m, "HNSWCore")
      .def(py::init([](size_t dim, const std::string& metric, const std::string& storage,
                       size_t M, size_t ef_construction, uint64_t seed, size_t planes) {
             auto c = std::make_unique<HnswCore>();
             c->index = std::make_unique<HnswIndex>(
                 make_params(dim, metric, storage, M, ef_construction, seed, planes));
             return c;
           }),
           py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("M"),
           py::arg("ef_construction"), py::arg("seed"), py::arg("planes") = 1)
      .def(
          "add",
          [](HnswCore& self, const py::object& vectors, const py::object& labels, size_t threads,
             const py::object& callback) {
            auto v = as_matrix<float>(vectors, self.index->params().dim, "vectors");
            auto l = as_vector<int64_t>(labels, "labels");
            require(l.shape(0) == v.shape(0), "one label per vector is required");
            ProgressFn progress = progress_fn(callback);
            py::gil_scoped_release nogil;
            return self.index->add(v.data(), l.data(), v.shape(0), threads, progress);
          },
          py::arg("vectors"), py::arg("labels"), py::arg("threads") = 1,
          py::arg("callback") = py::none())
      .def("search", &search, py::arg("queries"), py::arg("k"), py::arg("ef"),
           py::arg("threads") = 1, py::arg("allowed") = py::none())
      .def("search_filtered", &search_filtered, py::arg("queries"), py::arg("k"), py::arg("ef"),
           py::arg("threads"), py::arg("allowed"), py::arg("counts"), py::arg("offsets"),
           py::arg("exact_ratio") = 7.0,
           py::arg("exact_ratio_batched") = 1000.0, py::arg("acorn_below") = 0.05, py::arg("seeds") = 8)
      .def("get_state",
           [](py::object self_obj) {
             HnswCore& self = self_obj.cast<HnswCore&>();
             const HnswIndex& ix = *self.index;
             py::ssize_t n = py::ssize_t(ix.n_slots());
             py::ssize_t rb = py::ssize_t(ix.store().row_bytes());
             py::ssize_t m0 = py::ssize_t(1 + ix.graph().M0());
             py::dict d;
             d["vectors"] = view<uint8_t>(ix.store().data(), {n, rb}, self_obj);
             d["links0"] = view<int32_t>(ix.graph().links0().data(), {n, m0}, self_obj);
             d["levels"] = view<int32_t>(ix.graph().levels().data(), {n}, self_obj);
             d["upper"] = view<int32_t>(ix.graph().upper().data(),
                                        {py::ssize_t(ix.graph().upper().size())}, self_obj);
             d["labels"] = view<int64_t>(ix.labels().data(), {n}, self_obj);
             d["deleted"] = view<uint8_t>(ix.deleted().data(), {n}, self_obj);
             d["entry_point"] = ix.entry_point();
             d["max_level"] = ix.max_level();
             return d;
           })
      .def_static(
          "from_state",
          [](size_t dim, const std::string& metric, const std::string& storage, size_t M,
             size_t ef_construction, uint64_t seed, const py::dict& state, size_t planes) {
            auto c = std::make_unique<HnswCore>();
            c->index = std::make_unique<HnswIndex>(
                make_params(dim, metric, storage, M, ef_construction, seed, planes));
            const HnswParams& p = c->index->params();
            auto labels = as_vector<int64_t>(state["labels"], "labels");
            size_t n = labels.shape(0);
            auto rows = as_matrix<uint8_t>(state["vectors"], row_bytes_for(p.storage, dim), "vectors");
            auto links0 = as_matrix<int32_t>(state["links0"], 1 + 2 * M, "links0");
            auto levels = as_vector<int32_t>(state["levels"], "levels");
            auto upper = as_vector<int32_t>(state["upper"], "upper");
            auto deleted = as_vector<uint8_t>(state["deleted"], "deleted");
            require(size_t(rows.shape(0)) == n && size_t(links0.shape(0)) == n &&
                        size_t(levels.shape(0)) == n && size_t(deleted.shape(0)) == n,
                    "state arrays disagree on the number of slots");
            c->index->borrow_state(rows.data(), links0.data(), levels.data(), upper.data(),
                                   upper.shape(0), labels.data(), deleted.data(), n,
                                   state["entry_point"].cast<int64_t>(),
                                   state["max_level"].cast<int>());
            c->keep_alive = {rows, links0, levels, upper, labels, deleted};
            return c;
          },
          py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("M"),
          py::arg("ef_construction"), py::arg("seed"), py::arg("state"), py::arg("planes") = 1);
  def_slot_methods<HnswCore>(cls);
}

}  // namespace bitgraph::bindings
