// test_tensor: placeholder, being written.
#include <catch2/catch.hpp>
