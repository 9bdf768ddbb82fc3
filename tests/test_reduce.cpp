// test_reduce: placeholder, being written.
#include <catch2/catch.hpp>
