// test_placement: placeholder, being written.
#include <catch2/catch.hpp>
