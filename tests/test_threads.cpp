// The default thread count (Note [Default thread count]): this binary starts itself with chosen
// environments and reads the count each child starts with.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "kernels/threads.h"

namespace {

// Runs this binary with `flag` in exactly `env` and returns what it printed: for --print-threads,
// "<weft's thread count> <OpenMP's processor count>".
std::string child_threads(std::vector<std::string> env, std::string flag = "--print-threads") {
  int out[2];
  REQUIRE(pipe(out) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), flag.data(), nullptr};
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  REQUIRE(posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data()) == 0);
  close(out[1]);
  std::string text;
  char buf[64];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return text;
}

std::string expect(int threads) { return std::to_string(threads) + " " + std::to_string(omp_get_num_procs()); }

}  // namespace

TEST_CASE("weft starts with one thread unless the user chose", "[threads]") {
  const int cores = omp_get_num_procs();
  CHECK(child_threads({}) == expect(1));
  CHECK(child_threads({"OMP_NUM_THREADS=3"}) == expect(3));
  CHECK(child_threads({"OMP_WAIT_POLICY=passive"}) == expect(cores));
  CHECK(child_threads({"OMP_WAIT_POLICY=active"}) == expect(cores));
  SECTION("one thread per rank under mpirun, unless OMP_NUM_THREADS says otherwise") {
    CHECK(child_threads({"OMPI_COMM_WORLD_LOCAL_SIZE=2", "OMP_WAIT_POLICY=passive"}) == expect(1));
    CHECK(child_threads({"MPI_LOCALNRANKS=4"}) == expect(1));
    CHECK(child_threads({"OMPI_COMM_WORLD_LOCAL_SIZE=2", "OMP_NUM_THREADS=2"}) == expect(2));
  }
  SECTION("set_num_threads overrides the default") {
    weft::ScopedNumThreads two(2);
    CHECK(weft::get_num_threads() == 2);
  }
}

// OpenMP's thread count belongs to the calling thread; weft applies its default to each thread on
// first use (no load-time code), so a thread the program starts begins from the default too, not
// from OpenMP's core count nor from another thread's set_num_threads.
TEST_CASE("every thread starts from the default", "[threads]") {
  const int cores = omp_get_num_procs();
  CHECK(child_threads({}, "--print-threads-on-thread") == expect(1));
  CHECK(child_threads({"OMP_WAIT_POLICY=passive"}, "--print-threads-on-thread") == expect(cores));
}

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--print-threads") {
    std::printf("%d %d", weft::get_num_threads(), omp_get_num_procs());
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "--print-threads-on-thread") {
    weft::set_num_threads(3);  // this thread's choice, not the other's
    int on_thread = 0;
    std::thread([&] { on_thread = weft::get_num_threads(); }).join();
    std::printf("%d %d", on_thread, omp_get_num_procs());
    return 0;
  }
  return Catch::Session().run(argc, argv);
}
