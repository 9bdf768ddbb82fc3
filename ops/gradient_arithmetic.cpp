// gradient_arithmetic.cpp: placeholder, being written.
