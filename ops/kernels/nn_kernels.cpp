// nn_kernels.cpp: placeholder, being written.
