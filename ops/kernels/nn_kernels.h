// nn_kernels.h: placeholder, being written.
