// unary.cpp: placeholder, being written.
