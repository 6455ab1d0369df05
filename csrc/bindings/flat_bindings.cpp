// Thin glue for FlatIndexT (exact search). One Python class holds either store: float rows or
// binary codes (storage="binary").
#include <memory>

#include "bindings/common.hpp"
#include "flat/flat_index.hpp"

namespace bitgraph::bindings {
namespace {

using FlatCore = CoreOf<FlatIndex, FlatCodeIndex>;

std::unique_ptr<FlatCore> make_core(size_t dim, const std::string& metric,
                                    const std::string& storage, size_t planes, bool offsets) {
  const StoreSpec spec = store_spec(dim, metric, storage, planes, offsets);
  auto c = std::make_unique<FlatCore>();
  if (spec.kind == StorageKind::kBinary) c->codes = std::make_unique<FlatCodeIndex>(spec);
  else c->rows = std::make_unique<FlatIndex>(spec);
  return c;
}

}  // namespace

void bind_flat(py::module_& m) {
  auto cls = py::class_<FlatCore>(m, "FlatCore")
      .def(py::init(&make_core), py::arg("dim"), py::arg("metric"),
           py::arg("storage") = "float32", py::arg("planes") = 1, py::arg("offsets") = false)
      .def(
          "add",
          [](FlatCore& self, const py::object& vectors, const py::object& labels, size_t threads,
             const py::object& callback) {
            (void)threads;
            (void)callback;  // an exact index adds in one pass: nothing to report
            return self.visit([&](auto& ix) {
              auto v = add_matrix<std::decay_t<decltype(ix)>>(ix, vectors);
              auto l = as_vector<int64_t>(labels, "labels");
              require(l.shape(0) == v.shape(0), "one label per vector is required");
              py::gil_scoped_release nogil;
              return ix.add(v.data(), l.data(), v.shape(0));
            });
          },
          py::arg("vectors"), py::arg("labels"), py::arg("threads") = 1,
          py::arg("callback") = py::none())
      .def("get_state",
           [](py::object self_obj) {
             const FlatCore& self = self_obj.cast<const FlatCore&>();
             return self.visit([&](const auto& ix) {
               const py::ssize_t n = py::ssize_t(ix.n_slots());
               py::dict d;
               d["vectors"] = view<uint8_t>(ix.store().data(),
                                            {n, py::ssize_t(ix.store().row_bytes())}, self_obj);
               d["labels"] = view<int64_t>(ix.labels().data(), {n}, self_obj);
               d["deleted"] = view<uint8_t>(ix.deleted().data(), {n}, self_obj);
               return d;
             });
           })
      .def_static(
          "from_state",
          [](size_t dim, const std::string& metric, const std::string& storage,
             const py::dict& state, size_t planes, bool offsets) {
            auto c = make_core(dim, metric, storage, planes, offsets);
            c->visit([&](auto& ix) {
              auto labels = as_vector<int64_t>(state["labels"], "labels");
              const size_t n = labels.shape(0);
              auto rows = as_matrix<uint8_t>(state["vectors"], ix.store().row_bytes(), "vectors");
              auto deleted = as_vector<uint8_t>(state["deleted"], "deleted");
              require(size_t(rows.shape(0)) == n && size_t(deleted.shape(0)) == n,
                      "state arrays disagree on the number of slots");
              ix.borrow_state(rows.data(), labels.data(), deleted.data(), n);
              c->keep_alive = {rows, labels, deleted};
            });
            return c;
          },
          py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("state"),
          py::arg("planes") = 1, py::arg("offsets") = false);
  def_slot_methods<FlatCore>(cls);
}

}  // namespace bitgraph::bindings
