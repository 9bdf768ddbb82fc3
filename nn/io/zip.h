// Reading and writing the zip archives .npz files are. Internal.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace weft::io::detail {

using ZipMembers = std::vector<std::pair<std::string, std::string>>;  // name, uncompressed bytes

// Every member of the archive at `path`, in central-directory order. Stored and deflated members,
// zip64 included (NumPy writes zip64 records), CRCs checked.
ZipMembers read_zip(const std::string& path, const char* op);
// An archive of stored members, as np.savez writes.
void write_zip(const std::string& path, const ZipMembers& members, const char* op);

}  // namespace weft::io::detail
