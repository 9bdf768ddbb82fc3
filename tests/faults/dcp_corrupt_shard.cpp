// Rank 1's shard file of a distributed checkpoint is corrupted; only rank 1 reads it on load, and
// every rank must raise rank 1's message (nn::load_distributed's agreement), ending the job with it.
#include <dirent.h>

#include <cstring>
#include <fstream>
#include <string>

#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  const std::string dir = "build/faults/dcp_corrupt_shard.ckpt";  // scripts/test-faults runs from the root
  nn::StateDict state;
  state.insert("w", distribute_tensor(arange(4000).to(kFloat64), mesh, {Shard(0)}));
  nn::save_distributed(dir, state);
  if (world_rank() == 1) {  // flip a byte in the middle of its own file: inside its piece of 'w'
    DIR* d = ::opendir(dir.c_str());
    std::string name;
    while (const dirent* e = ::readdir(d))
      if (std::string(e->d_name).find("-1.weft") != std::string::npos) name = dir + "/" + e->d_name;
    ::closedir(d);
    std::fstream f(name, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto middle = f.tellg() / 2;
    char c = 0;
    f.seekg(middle).read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(middle).write(&c, 1);
  }
  funcol::all_reduce(ones({1}), ReduceOp::Sum, mesh);  // the file is corrupted before anyone loads
  nn::StateDict target;
  target.insert("w", distribute_tensor(zeros({4000}, dtype(kFloat64)), mesh, {Shard(0)}));
  nn::load_distributed(dir, target);
  check_value(DTensor(target["w"]).full_tensor(), 4000.0 * 3999.0 / 2);
}
