// test_autograd: placeholder, being written.
#include <catch2/catch.hpp>
