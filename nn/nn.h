// The nn umbrella: modules, layers, the transformer, optimizers and schedules, file I/O.
#pragma once

#include "nn/batch_norm.h"
#include "nn/checkpoint.h"
#include "nn/containers.h"
#include "nn/conv.h"
#include "nn/data/dataloader.h"
#include "nn/init.h"
#include "nn/io/io.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/parallel.h"
#include "nn/pooling.h"
#include "nn/progress.h"
#include "nn/rnn.h"
#include "nn/schedule.h"
#include "nn/transformer.h"
