// test_allocator: placeholder, being written.
#include <catch2/catch.hpp>
