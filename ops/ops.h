// Every op, for users who include one header.
#pragma once

#include "kernels/threads.h"
#include "ops/attention.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/dropout.h"
#include "ops/embedding.h"
#include "ops/indexing.h"
#include "ops/linalg.h"
#include "ops/logical.h"
#include "ops/losses.h"
#include "ops/normalization.h"
#include "ops/reduce.h"
#include "ops/sampling.h"
#include "ops/shape_ops.h"
#include "ops/softmax.h"
#include "ops/unary.h"
