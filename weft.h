// The umbrella header: everything a weft user programs against.
#pragma once

#include "framework/allocator.h"
#include "framework/dtype.h"
#include "framework/error.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "framework/tensor.h"
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "ops/ops.h"
