// Module-level kernel functions (tests compare them across backends and SIMD levels).
#include "bindings/common.hpp"
#include "binary/binary_kernels.hpp"
#include "simd/kernels.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph::bindings {

void bind_kernels(py::module_& m) {
  m.def("simd_level", [] { return std::string(active_kernels().level); },
        "The instruction set the kernels run with.");
  m.def("simd_level_supported", [](const std::string& level) {
    return simd_level_supported(level.c_str());
  });
  m.def(
      "encode_rows",
      [](const py::object& vectors, const std::string& storage) {
        StorageKind kind = parse_storage(storage);
        auto v = CArray<float>::ensure(vectors);
        require(v && v.ndim() == 2, "vectors must be a 2-d float32 array");
        size_t n = v.shape(0), dim = v.shape(1), rb = row_bytes_for(kind, dim);
        py::array_t<uint8_t> out({py::ssize_t(n), py::ssize_t(rb)});
        {
          py::gil_scoped_release nogil;
          encode_rows(kind, dim, v.data(), n, out.mutable_data());
        }
        return out;
      },
      py::arg("vectors"), py::arg("storage"));
  m.def(
      "decode_rows",
      [](const py::object& rows, size_t dim, const std::string& storage) {
        StorageKind kind = parse_storage(storage);
        auto r = as_matrix<uint8_t>(rows, row_bytes_for(kind, dim), "rows");
        size_t n = r.shape(0);
        py::array_t<float> out({py::ssize_t(n), py::ssize_t(dim)});
        decode_rows(kind, dim, r.data(), n, out.mutable_data());
        return out;
      },
      py::arg("rows"), py::arg("dim"), py::arg("storage"));
  m.def(
      "distances",
      [](const py::object& query, const py::object& rows, size_t dim, const std::string& metric,
         const std::string& storage, const std::string& level) {
        StorageKind kind = parse_storage(storage);
        Metric met = parse_metric(metric);
        require(kind != StorageKind::kBinary && int(met) < 2,
                "distances() compares float rows; use binary_distances() for codes");
        auto q = as_vector<float>(query, "query");
        require(size_t(q.shape(0)) == dim, "query must have dim values");
        size_t rb = row_bytes_for(kind, dim);
        auto r = as_matrix<uint8_t>(rows, rb, "rows");
        size_t n = r.shape(0);
        const KernelTable& table = level.empty() ? active_kernels() : kernels_for_level(level.c_str());
        const DistanceKernels& k = table.kernels[int(kind)][int(met)];
        py::array_t<float> out{py::ssize_t(n)};
        {
          py::gil_scoped_release nogil;
          k.range(q.data(), r.data(), rb, dim, n, out.mutable_data());
        }
        return out;
      },
      py::arg("query"), py::arg("rows"), py::arg("dim"), py::arg("metric"), py::arg("storage"),
      py::arg("level") = "");
  m.def("code_level", [] { return std::string(active_code_kernels().level); },
        "The instruction set the binary-code kernels run with.");
  m.def(
      "binary_distances",
      [](const py::object& query, const py::object& codes, size_t planes,
         const std::string& distance, const std::string& level) {
        auto q = as_vector<uint8_t>(query, "query");
        require(distance == "sdc" || distance == "hamming" || distance == "asymmetric",
                "distance must be 'sdc', 'hamming' or 'asymmetric'");
        // An asymmetric query holds kAsymmetricQueryBits planes per code plane.
        const size_t bits = distance == "asymmetric" ? kAsymmetricQueryBits : 0;
        const size_t rb = size_t(q.shape(0)) / (bits ? bits : 1);
        require(planes >= 1 && planes <= 8 && rb % (8 * planes) == 0 && rb > 0 &&
                    rb * (bits ? bits : 1) == size_t(q.shape(0)),
                "a code row must hold 1 to 8 planes of whole uint64 words");
        auto c = as_matrix<uint8_t>(codes, rb, "codes");
        const size_t n = c.shape(0);
        const CodeKernelTable& table =
            level.empty() ? active_code_kernels() : code_kernels_for_level(level.c_str());
        const CodeLayout layout{planes, rb / (8 * planes), false, bits};
        require(layout.exact_in_float(), "binary code too long for exact float32 distances");
        const CodeKernels k = table.select(
            distance == "sdc" ? CodeDistance::kSdc
                              : bits ? CodeDistance::kAsymmetric : CodeDistance::kHamming,
            layout);
        py::array_t<float> out{py::ssize_t(n)};
        {
          py::gil_scoped_release nogil;
          k.range(q.data(), c.data(), layout, n, out.mutable_data());
        }
        return out;
      },
      py::arg("query"), py::arg("codes"), py::arg("planes"), py::arg("distance") = "sdc",
      py::arg("level") = "");
  m.def("code_level_supported",
        [](const std::string& level) { return code_level_supported(level.c_str()); });
}

}  // namespace bitgraph::bindings
