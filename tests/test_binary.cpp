// test_binary: placeholder, being written.
#include <catch2/catch.hpp>
