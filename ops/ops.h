// Every op, for users who include one header.
#pragma once

#include "kernels/threads.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/indexing.h"
#include "ops/linalg.h"
#include "ops/nn_functional.h"
#include "ops/reduce.h"
#include "ops/rnn.h"
#include "ops/sampling.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
