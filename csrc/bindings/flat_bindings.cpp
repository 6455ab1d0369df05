// Thin glue for FlatIndex.
#include <memory>

#include "bindings/common.hpp"
#include "flat/flat_index.hpp"

namespace bitgraph::bindings {
namespace {

struct FlatCore {
  std::unique_ptr<FlatIndex> index;
  std::vector<py::object> keep_alive;
  size_t dim;
};

}  // namespace

void bind_flat(py::module_& m) {
  auto cls = py::class_<FlatCore>(m, "FlatCore")
      .def(py::init([](size_t dim, const std::string& metric, const std::string& storage,
                       size_t planes) {
             require(dim >= 1, "dim must be >= 1");
             auto c = std::make_unique<FlatCore>();
             c->index = std::make_unique<FlatIndex>(dim, parse_metric(metric), parse_storage(storage),
                                                  planes);
             c->dim = dim;
             return c;
           }),
           py::arg("dim"), py::arg("metric"), py::arg("storage") = "float32",
           py::arg("planes") = 1)
      .def(
          "add",
          [](FlatCore& self, const py::object& vectors, const py::object& labels, size_t threads,
             const py::object& callback) {
            auto v = as_matrix<float>(vectors, self.dim, "vectors");
            auto l = as_vector<int64_t>(labels, "labels");
            require(l.shape(0) == v.shape(0), "one label per vector is required");
            py::gil_scoped_release nogil;
            return self.index->add(v.data(), l.data(), v.shape(0));
          },
          py::arg("vectors"), py::arg("labels"), py::arg("threads") = 1,
          py::arg("callback") = py::none())
      .def(
          "search",
          [](FlatCore& self, const py::object& queries, size_t k, size_t ef, size_t threads,
             const py::object& allowed) {
            auto q = as_matrix<float>(queries, self.dim, "queries");
            require(k >= 1, "k must be >= 1");
            size_t nq = q.shape(0);
            py::array_t<int64_t> labels({py::ssize_t(nq), py::ssize_t(k)});
            py::array_t<float> dists({py::ssize_t(nq), py::ssize_t(k)});
            FilterArg f = filter_arg(allowed);
            {
              py::gil_scoped_release nogil;
              self.index->search(q.data(), nq, k, threads, f.get(), labels.mutable_data(),
                                 dists.mutable_data());
            }
            return py::make_tuple(labels, dists);
          },
          py::arg("queries"), py::arg("k"), py::arg("ef") = 0, py::arg("threads") = 1,
          py::arg("allowed") = py::none())
      .def(
          "search_filtered",
          [](FlatCore& self, const py::object& queries, size_t k, size_t ef, size_t threads,
             const py::object& allowed, const py::object& counts, const py::object& offsets,
             double, double, double, size_t) {
            auto q = as_matrix<float>(queries, self.dim, "queries");
            require(k >= 1, "k must be >= 1");
            const size_t nq = q.shape(0);
            FilterGroups groups = filter_groups(allowed, counts, offsets, nq);
            FilteredOut out(nq, k);
            {
              py::gil_scoped_release nogil;
              self.index->search_filtered(q.data(), nq, k, threads, groups.filters.data(),
                                          groups.offsets.data(), groups.filters.size(),
                                          out.labels.mutable_data(), out.dists.mutable_data(),
                                          out.plans.mutable_data(), out.scored.mutable_data());
            }
            return out.tuple();
          },
          py::arg("queries"), py::arg("k"), py::arg("ef"), py::arg("threads"), py::arg("allowed"),
          py::arg("counts"), py::arg("offsets"), py::arg("exact_ratio") = 7.0,
          py::arg("exact_ratio_batched") = 1000.0, py::arg("acorn_below") = 0.05,
          py::arg("seeds") = 8)
      .def("get_state",
           [](py::object self_obj) {
             FlatCore& self = self_obj.cast<FlatCore&>();
             const FlatIndex& ix = *self.index;
             py::ssize_t n = py::ssize_t(ix.n_slots());
             py::dict d;
             d["vectors"] = view<uint8_t>(ix.store().data(),
                                          {n, py::ssize_t(ix.store().row_bytes())}, self_obj);
             d["labels"] = view<int64_t>(ix.labels().data(), {n}, self_obj);
             d["deleted"] = view<uint8_t>(ix.deleted().data(), {n}, self_obj);
             return d;
           })
      .def_static(
          "from_state",
          [](size_t dim, const std::string& metric, const std::string& storage,
             const py::dict& state, size_t planes) {
            auto c = std::make_unique<FlatCore>();
            StorageKind kind = parse_storage(storage);
            c->index = std::make_unique<FlatIndex>(dim, parse_metric(metric), kind, planes);
            c->dim = dim;
            auto labels = as_vector<int64_t>(state["labels"], "labels");
            size_t n = labels.shape(0);
            auto rows = as_matrix<uint8_t>(state["vectors"], row_bytes_for(kind, dim), "vectors");
            auto deleted = as_vector<uint8_t>(state["deleted"], "deleted");
            require(size_t(rows.shape(0)) == n && size_t(deleted.shape(0)) == n,
                    "state arrays disagree on the number of slots");
            c->index->borrow_state(rows.data(), labels.data(), deleted.data(), n);
            c->keep_alive = {rows, labels, deleted};
            return c;
          },
          py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("state"),
          py::arg("planes") = 1);
  def_slot_methods<FlatCore>(cls);
}

}  // namespace bitgraph::bindings
