// test_nn_functional: placeholder, being written.
#include <catch2/catch.hpp>
