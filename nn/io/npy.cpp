// .npy files and .npz archives of them.
#include "nn/io/bytes.h"
#include "nn/io/io.h"
#include "nn/io/npy_format.h"
#include "nn/io/zip.h"

namespace weft::io {

Tensor load_npy(const std::string& path) {
  return detail::decode_npy(detail::read_file(path, "load_npy"), "load_npy", path);
}

void save_npy(const std::string& path, const Tensor& tensor) {
  detail::write_file(path, detail::encode_npy(tensor, "save_npy"), "save_npy");
}

nn::StateDict load_npz(const std::string& path) {
  nn::StateDict out;
  for (const auto& [member, bytes] : detail::read_zip(path, "load_npz")) {
    const bool npy = member.ends_with(".npy");
    WEFT_CHECK(npy, "load_npz: '", path, "' holds '", member, "', which is not an .npy array");
    std::string name = member.substr(0, member.size() - 4);
    WEFT_CHECK(!out.contains(name), "load_npz: '", path, "' holds '", member, "' twice");
    out.insert(name, detail::decode_npy(bytes, "load_npz", path + ":" + member));
  }
  return out;
}

void save_npz(const std::string& path, const nn::StateDict& tensors) {
  detail::ZipMembers members;
  for (const auto& [name, tensor] : tensors) {
    WEFT_CHECK(tensor.defined(), "save_npz: entry '", name, "' is an undefined tensor");
    members.emplace_back(name + ".npy", detail::encode_npy(tensor, "save_npz"));
  }
  detail::write_zip(path, members, "save_npz");
}

}  // namespace weft::io
