// test_shape_ops: placeholder, being written.
#include <catch2/catch.hpp>
