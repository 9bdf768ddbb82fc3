// test_mpi_local_map: placeholder, being written.
#include <catch2/catch.hpp>
