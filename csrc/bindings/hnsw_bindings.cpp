// Thin glue for HnswIndexT: convert arrays, release the GIL, expose state as zero-copy views.
// One Python class holds either store: float rows or binary codes (storage="binary").
#include <memory>

#include "bindings/common.hpp"
#include "hnsw/hnsw_index.hpp"

namespace bitgraph::bindings {
namespace {

using HnswCore = CoreOf<HnswIndex, HnswCodeIndex>;

std::unique_ptr<HnswCore> make_core(size_t dim, const std::string& metric,
                                    const std::string& storage, size_t M,
                                    size_t ef_construction, uint64_t seed, size_t planes,
                                    bool offsets) {
  const StoreSpec spec = store_spec(dim, metric, storage, planes, offsets);
  HnswParams p{dim, spec.metric, spec.kind, M, ef_construction, seed, spec.layout};
  auto c = std::make_unique<HnswCore>();
  if (spec.kind == StorageKind::kBinary) c->codes = std::make_unique<HnswCodeIndex>(p);
  else c->rows = std::make_unique<HnswIndex>(p);
  return c;
}

}  // namespace

void bind_hnsw(py::module_& m) {
  auto cls = py::class_<HnswCore>(m, "HNSWCore")
      .def(py::init(&make_core), py::arg("dim"), py::arg("metric"), py::arg("storage"),
           py::arg("M"), py::arg("ef_construction"), py::arg("seed"), py::arg("planes") = 1,
           py::arg("offsets") = false)
      .def(
          "add",
          [](HnswCore& self, const py::object& vectors, const py::object& labels, size_t threads,
             const py::object& callback) {
            return self.visit([&](auto& ix) {
              auto v = add_matrix<std::decay_t<decltype(ix)>>(ix, vectors);
              auto l = as_vector<int64_t>(labels, "labels");
              require(l.shape(0) == v.shape(0), "one label per vector is required");
              ProgressFn progress = progress_fn(callback);
              py::gil_scoped_release nogil;
              return ix.add(v.data(), l.data(), v.shape(0), threads, progress);
            });
          },
          py::arg("vectors"), py::arg("labels"), py::arg("threads") = 1,
          py::arg("callback") = py::none())
      .def("get_state",
           [](py::object self_obj) {
             const HnswCore& self = self_obj.cast<const HnswCore&>();
             return self.visit([&](const auto& ix) {
               const py::ssize_t n = py::ssize_t(ix.n_slots());
               const py::ssize_t m0 = py::ssize_t(1 + ix.graph().M0());
               py::dict d;
               d["vectors"] = view<uint8_t>(ix.store().data(),
                                            {n, py::ssize_t(ix.store().row_bytes())}, self_obj);
               d["links0"] = view<int32_t>(ix.graph().links0().data(), {n, m0}, self_obj);
               d["levels"] = view<int32_t>(ix.graph().levels().data(), {n}, self_obj);
               d["upper"] = view<int32_t>(ix.graph().upper().data(),
                                          {py::ssize_t(ix.graph().upper().size())}, self_obj);
               d["labels"] = view<int64_t>(ix.labels().data(), {n}, self_obj);
               d["deleted"] = view<uint8_t>(ix.deleted().data(), {n}, self_obj);
               d["entry_point"] = ix.entry_point();
               d["max_level"] = ix.max_level();
               return d;
             });
           })
      .def_static(
          "from_state",
          [](size_t dim, const std::string& metric, const std::string& storage, size_t M,
             size_t ef_construction, uint64_t seed, const py::dict& state, size_t planes,
             bool offsets) {
            auto c = make_core(dim, metric, storage, M, ef_construction, seed, planes, offsets);
            c->visit([&](auto& ix) {
              auto labels = as_vector<int64_t>(state["labels"], "labels");
              const size_t n = labels.shape(0);
              auto rows = as_matrix<uint8_t>(state["vectors"], ix.store().row_bytes(), "vectors");
              auto links0 = as_matrix<int32_t>(state["links0"], 1 + 2 * M, "links0");
              auto levels = as_vector<int32_t>(state["levels"], "levels");
              auto upper = as_vector<int32_t>(state["upper"], "upper");
              auto deleted = as_vector<uint8_t>(state["deleted"], "deleted");
              require(size_t(rows.shape(0)) == n && size_t(links0.shape(0)) == n &&
                          size_t(levels.shape(0)) == n && size_t(deleted.shape(0)) == n,
                      "state arrays disagree on the number of slots");
              ix.borrow_state(rows.data(), links0.data(), levels.data(), upper.data(),
                              upper.shape(0), labels.data(), deleted.data(), n,
                              state["entry_point"].cast<int64_t>(),
                              state["max_level"].cast<int>());
              c->keep_alive = {rows, links0, levels, upper, labels, deleted};
            });
            return c;
          },
          py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("M"),
          py::arg("ef_construction"), py::arg("seed"), py::arg("state"), py::arg("planes") = 1,
          py::arg("offsets") = false);
  def_slot_methods<HnswCore>(cls);
}

}  // namespace bitgraph::bindings
