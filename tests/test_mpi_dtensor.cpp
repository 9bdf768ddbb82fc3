// test_mpi_dtensor: placeholder, being written.
#include <catch2/catch.hpp>
