// test_mpi_collectives: placeholder, being written.
#include <catch2/catch.hpp>
