// matmul.cpp: placeholder, being written.
