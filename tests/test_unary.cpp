// test_unary: placeholder, being written.
#include <catch2/catch.hpp>
