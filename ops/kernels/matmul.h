// matmul.h: placeholder, being written.
